"""Train a dgnet_plugin config for a wall-clock budget (shared by the accuracy benchmarks).

Not a benchmark itself: ``bench_ide_vs_torchreid.py`` and ``bench_accuracy.py`` import it.

How a run is fitted to a budget of ``seconds``:

1. :func:`probe_seconds_per_iter` builds the config's engine in this process (seeded like
   ``tools/train_net.py``, with no hooks: no logging, checkpoints, grids or evaluation) and
   times ``warmup + iters`` iterations of its training loop: the median of the last ``iters``
   is the seconds per iteration, and what the first iteration took beyond that the start-up
   (data-loader workers). The probe's engine writes nothing but its ``OUTPUT_DIR`` (a
   ``probe/`` folder next to the run).
2. :func:`iterations_for` and :func:`scaled_schedule`: ``SOLVER.MAX_ITER = max(2,
   floor((seconds - start-up) / s_per_iter))``,
   and every iteration-valued key given (``SOLVER.STEPS`` and, for DG-Net, ``LOSS.WARM_ITER``
   and ``LOSS.WARM_TEACHER_ITER``) scaled by the same factor ``MAX_ITER_new / MAX_ITER_config``
   (rounded, kept inside ``[1, MAX_ITER_new - 1]``), so that LR decays and warm-ups fall at the
   same *fraction* of the run as in the config. Keys whose value is a rate per iteration (e.g.
   DG-Net's ``LOSS.WARM_SCALE``) are not touched: a ramp takes as many iterations as in the
   config, i.e. a smaller fraction of a longer run.
3. :func:`train_for_budget` runs the config like ``launch_training`` (same checks, setup,
   ``before_training`` step, seeding and hooks) plus one :class:`TimeBudget` hook, which ends
   the loop early if the training loop's wall time reaches ``seconds`` (the probe can
   underestimate on a shared machine); the final checkpoint, evaluation and the method's end
   hooks then run as after a complete run. The time counted is the training loop (first
   iteration to last, with the config's periodic hooks: logging, checkpoints, grids), not the
   engine's construction and not the final evaluation.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dgnet_plugin  # noqa: E402,F401 (registers engines, datasets)
from dgnet_plugin.config import load_cfg_file, method_of_engine  # noqa: E402
from dgnet_plugin.engine import HookBase  # noqa: E402
from dgnet_plugin.engine.run import (  # noqa: E402
    build_seeded_engine,
    default_setup,
    open_run,
    scan_datasets,
)


def enter_repo() -> None:
    """Work from the repository root, where the configs' relative paths
    (``../shared/data/...``, ``output/...``) point from. Resolve the user's paths first."""
    os.chdir(REPO)


class TimeBudget(HookBase):
    """Ends the training loop once its wall time reaches ``seconds`` (``0`` = never): it sets
    ``trainer.max_iter`` to the iterations done, so the loop ends as a completed run (final
    checkpoint, evaluation). Register it first, so that the hooks after it see the new end.

    Attributes after training: ``seconds_used`` (first iteration to the end of the loop),
    ``iterations`` (done in this run), ``cut`` (whether the budget ended the run before
    ``SOLVER.MAX_ITER``)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.seconds_used = 0.0
        self.iterations = 0
        self.cut = False

    def before_train(self) -> None:
        self._t0 = time.perf_counter()
        self._start = self.trainer.iter

    def after_step(self) -> None:
        t = self.trainer
        if self.seconds > 0 and t.iter < t.max_iter:
            if time.perf_counter() - self._t0 >= self.seconds:
                t.max_iter = t.iter
                self.cut = True

    def after_train(self) -> None:
        self.seconds_used = time.perf_counter() - self._t0
        self.iterations = self.trainer.iter - self._start


class _StepTimer(HookBase):
    def before_train(self) -> None:
        self.times: list[float] = []

    def before_step(self) -> None:
        self._t = time.perf_counter()

    def after_step(self) -> None:
        self.times.append(time.perf_counter() - self._t)


def probe_seconds_per_iter(
    config_file: str, opts: list, output_dir: str, warmup: int = 2, iters: int = 5
) -> tuple[float, float]:
    """Time the training loop of ``config_file`` + ``opts`` with no hooks: ``warmup`` untimed
    iterations (the first starts the data-loader workers), then ``iters`` timed ones. Returns
    ``(seconds per iteration, start-up seconds)``: the median of the timed iterations, and how
    much longer than that the first iteration took. The engine is built in this process
    (``OUTPUT_DIR`` = ``output_dir``) and released afterwards.

    Raises:
        ConfigError / UserError: as ``tools/train_net.py`` would for the config.
    """
    n = max(1, warmup) + iters
    cfg = load_cfg_file(
        config_file, [*opts, "SOLVER.MAX_ITER", n, "OUTPUT_DIR", output_dir], freeze=True
    )
    os.makedirs(output_dir, exist_ok=True)
    engine = build_seeded_engine(cfg)
    timer = _StepTimer()
    engine.register_hooks([timer])
    engine.train()
    del engine
    gc.collect()  # stops the probe's data-loader workers
    per_iter = statistics.median(timer.times[n - iters :])
    return per_iter, max(0.0, timer.times[0] - per_iter)


def scaled_schedule(
    config_file: str, opts: list, max_iter: int, iteration_keys=("SOLVER.STEPS",)
) -> list:
    """``KEY VALUE`` overrides that set ``SOLVER.MAX_ITER`` to ``max_iter`` and scale every key
    of ``iteration_keys`` present in the config (an int or a tuple of ints) by
    ``max_iter / SOLVER.MAX_ITER`` of ``config_file`` + ``opts`` (see the module doc)."""
    cfg = load_cfg_file(config_file, opts, freeze=True)
    factor = max_iter / cfg.SOLVER.MAX_ITER

    def scale(v: int) -> int:
        return min(max(1, round(v * factor)), max(1, max_iter - 1))

    out = ["SOLVER.MAX_ITER", max_iter]
    for key in iteration_keys:
        node, *path = key.split(".")
        value = cfg[node]
        try:
            for p in path:
                value = value[p]
        except KeyError:
            continue  # not a key of this method
        if isinstance(value, (tuple, list)):
            out += [key, tuple(scale(int(v)) for v in value)]
        else:
            out += [key, scale(int(value))]
    return out


def iterations_for(seconds: float, sec_per_iter: float, startup: float = 0.0, min_iter: int = 2):
    """Iterations that fit in ``seconds``: ``max(min_iter, floor((seconds - startup) /
    sec_per_iter))``."""
    return max(min_iter, math.floor((seconds - startup) / sec_per_iter))


def train_for_budget(config_file: str, opts: list, seconds: float) -> dict:
    """Train ``config_file`` + ``opts`` as ``tools/train_net.py`` does (fresh start: the
    checkpoints and ``metrics.json`` of an earlier run in ``OUTPUT_DIR`` are deleted), with a
    :class:`TimeBudget` of ``seconds`` (0 = none). Returns ``{results, iterations, max_iter,
    seconds, cut, output_dir, batch}``: ``results`` is the final evaluation ``{dataset:
    {Rank-1, ..., mINP}}``."""
    cfg = load_cfg_file(config_file, opts, freeze=False)
    method = method_of_engine(cfg.ENGINE.NAME)
    budget = TimeBudget(seconds)
    with open_run(cfg, resume=False, overwrite=True, extra_rules=method.config_rules):
        stale = os.path.join(cfg.OUTPUT_DIR, "metrics.json")  # an earlier run's records
        if os.path.isfile(stale):
            os.remove(stale)
        default_setup(cfg, config_file, opts)
        scan_datasets(cfg)
        if method.before_training is not None:
            method.before_training(cfg)
        engine = build_seeded_engine(cfg)
        engine.resume_or_load(resume=False)
        engine.register_hooks([budget, *engine.build_hooks()])
        results = engine.train()
    out = {
        "results": results,
        "iterations": budget.iterations,
        "max_iter": int(cfg.SOLVER.MAX_ITER),
        "seconds": budget.seconds_used,
        "cut": budget.cut,
        "output_dir": str(cfg.OUTPUT_DIR),
        "batch": int(cfg.SOLVER.IMS_PER_BATCH),
    }
    del engine
    gc.collect()
    return out


def last_metrics_record(output_dir: str, key: str) -> dict:
    """The last record of ``output_dir/metrics.json`` (one JSON object a line) that holds
    ``key``; ``{}`` when none does."""
    path = os.path.join(output_dir, "metrics.json")
    found = {}
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    record = json.loads(line)
                    if key in record:
                        found = record
    return found


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` when ``threads > 0``."""
    if threads > 0:
        torch.set_num_threads(threads)
