"""Stages of a method's pipeline (DG-Net's teacher; the offline generate-then-train methods:
train the translator(s), generate a labelled image set, train re-ID on real + generated
images).

A method declares ``Method.stages``: ``f(cfg) -> [Stage, ...]``, the stages that come
*before* its own engine's training (the config's ``ENGINE.NAME``), which is always the last
stage, named :data:`MAIN_STAGE`. ``tools/train_net.py --config-file X`` runs them all in
order (:func:`~.run.launch_training`: the one pipeline runner); ``--stage NAME`` runs one.

A training stage is a *derived config* (``Stage.config``: ``cfg.clone()`` plus the stage's
merges, :func:`derive_config`), trained by :func:`~.run.run_training` in a folder of its
own; no option strings, no reload of the config file. Each stage knows when it is finished
(``done``): a finished stage is reused (logged, not rerun), an interrupted one continues
where it stopped (a training stage resumes from its newest checkpoint, a generation stage
skips the images it wrote). What each stage ran with is recorded in
``OUTPUT_DIR/stages.json`` (its config, flattened, without the keys that do not change its
result: :data:`RUN_ONLY_KEYS` and the stage's ``ignore``): when the config of a finished
stage changed, a line names the changed keys, its outputs are moved aside
(``<folder>.stale``) and it runs again, and so does every stage after it.

Several processes (``--num-gpus N`` or torchrun; on CPU, gloo processes: the CPU demos' way
to use every core): a training stage (``every_process``) is a distributed run of its own
that every process joins; any other stage (generation, domain split, pose clustering) is
done by rank 0 alone while the others wait at a barrier (the process group's timeout, 30
min by default, bounds that wait; the wait does not spin, so rank 0 takes the CPU threads of
its machine's waiting processes for the stage). Rank 0 decides whether a stage is finished
and tells the others, so every process takes the same path.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..config import CfgNode, ConfigError
from ..config.validate import flatten, key_under
from ..utils import comm
from ..utils.events import setup_logger

logger = logging.getLogger("dgnet_plugin")

#: the name of the last stage: the training of the config's own engine
MAIN_STAGE = "train"

#: keys whose change never invalidates a finished stage: where and how a run is done, not
#: what it computes
RUN_ONLY_KEYS = (
    "OUTPUT_DIR",
    "MODEL.DEVICE",
    "MODEL.COMPILE",
    "DATALOADER.NUM_WORKERS",
    "DATASETS.SCAN",
    "SOLVER.CHECKPOINT_PERIOD",
    "SOLVER.CHECKPOINT_KEEP",
    "TEST",
    "VIS",
)

RECORD_NAME = "stages.json"


def derive_config(cfg, merges: dict) -> CfgNode:
    """A stage's config: ``cfg.clone()`` with ``merges`` (``{"FULL.KEY": value}``, values
    of the key's type; a value that is a string for a non-string key is decoded as in a
    YAML file) merged in, frozen.

    Raises:
        ConfigError: a key ``cfg`` does not have, or a value of the wrong type.
    """
    out = cfg.clone()
    out.defrost()
    opts = []
    for k, v in merges.items():
        opts += [k, v]
    out.merge_from_list(opts)
    out.freeze()
    return out


@dataclass
class StageContext:
    """What a stage gets: the main run's frozen ``cfg`` (a training stage derives its own
    from it), for the log the config file and ``KEY VALUE`` ``opts`` it came from, and the
    run's ``device``, resolved once from ``MODEL.DEVICE`` (:func:`~.device.resolve_device`)
    when not given: every generation stage, generator and provider runs on it."""

    cfg: object
    config_file: str = ""
    opts: list = field(default_factory=list)
    device: torch.device | None = None

    def __post_init__(self):
        if self.device is None:
            from .device import resolve_device

            self.device = resolve_device(self.cfg.MODEL.DEVICE)


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Attributes:
        name: short name (``--stage NAME``), e.g. ``gan_c1_c2``, ``generate``.
        run: ``f(ctx)``: does the work, continuing an interrupted run (resumable).
        done: ``f(ctx) -> bool``: the stage's output is complete (then it is reused).
        description: one line for the log and ``--stage`` errors.
        every_process: with several processes, every one runs it (a distributed training
            run); ``False``: rank 0 alone runs it, the others wait (file writing stages).
        config: ``f(cfg) -> CfgNode``: the stage's own config (a training stage's derived
            config); ``None``: the main config. What :data:`RECORD_NAME` records.
        ignore: key prefixes of that config the stage does not read (their change does not
            invalidate it; e.g. a translator's stage ignores the re-ID recipe).
        keys: when given, only these key prefixes count (e.g. ``DOMAINS.SPLIT`` for the
            stage that cuts the domains); ``ignore`` still applies.
        outputs: ``f(cfg) -> [paths]``: what the stage writes (moved aside to
            ``<path>.stale`` when its config changed).
    """

    name: str
    run: Callable[[StageContext], None]
    done: Callable[[StageContext], bool]
    description: str = ""
    every_process: bool = False
    config: Callable[[object], CfgNode] | None = None
    ignore: tuple[str, ...] = ()
    outputs: Callable[[object], list] | None = None
    keys: tuple[str, ...] | None = None

    def fingerprint(self, cfg) -> dict:
        """The flattened config the stage computes with (see the module doc)."""
        node = self.config(cfg) if self.config is not None else cfg
        skip = RUN_ONLY_KEYS + tuple(self.ignore)
        return {
            k: _jsonable(v)
            for k, v in flatten(node).items()
            if not key_under(k, skip) and (self.keys is None or key_under(k, self.keys))
        }


def _jsonable(v):
    return list(map(_jsonable, v)) if isinstance(v, (list, tuple)) else v


def read_records(output_dir: str) -> dict:
    path = os.path.join(output_dir, RECORD_NAME)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_records(output_dir: str, records: dict) -> None:
    path = os.path.join(output_dir, RECORD_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def changed_keys(old: dict, new: dict) -> list[str]:
    """``KEY: old -> new`` for every key whose value differs (added or removed keys too)."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in keys if old.get(k) != new.get(k)]


def move_aside(paths) -> None:
    """Each existing ``path`` to ``<path>.stale`` (an older ``.stale`` copy is deleted)."""
    for p in paths:
        p = os.path.normpath(p)
        if os.path.lexists(p):
            stale = p + ".stale"
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale)
            elif os.path.lexists(stale):
                os.remove(stale)
            os.replace(p, stale)
            logger.info("Moved %s aside to %s", p, stale)


def stage_names(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages] + [MAIN_STAGE]


def check_stage_name(stages: list[Stage], name: str) -> None:
    """Raises :class:`ConfigError` naming the choices when ``name`` is not a stage."""
    names = stage_names(stages)
    if name not in names:
        raise ConfigError(f"--stage '{name}' is not a stage of this config; choose one of: "
                          f"{', '.join(names)}")  # fmt: skip


@contextmanager
def threads_of_waiting_processes() -> Iterator[int]:
    """Within the block, this process uses the CPU threads of its machine's other processes
    (``torch.set_num_threads``: its own count times ``LOCAL_WORLD_SIZE``, at most
    ``os.cpu_count()``), restored after: for a stage rank 0 runs alone while the others wait
    at a barrier (a gloo barrier sleeps; on CPU the launcher gives each of N processes 1/N of
    the cores). Yields the thread count; one process: unchanged."""
    before = torch.get_num_threads()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if comm.is_distributed() else 1
    n = max(before, min(os.cpu_count() or 1, before * local))
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def run_stages(stages: list[Stage], ctx: StageContext, only: str | None = None) -> bool:
    """Run ``stages`` in order (``only``: just the stage of that name, even when done),
    reusing finished ones whose config is unchanged; a finished stage whose config changed
    is run again, and so is every finished stage after it. The log returns to the
    main run's ``OUTPUT_DIR`` after each. With several processes, rank 0 decides what is
    finished and runs the stages that are not ``every_process`` while the others wait (see
    the module docstring). Returns whether any stage ran.

    Raises:
        ConfigError: ``only`` names no stage.
    """
    if only is not None:
        check_stage_name(stages, only)
    out = ctx.cfg.OUTPUT_DIR
    records = read_records(out) if comm.is_main_process() else {}
    ran = stale = False
    for k, stage in enumerate(stages, 1):
        if only is not None and stage.name != only:
            continue
        tag = f"stage {k}/{len(stages) + 1} '{stage.name}'"
        decision = None
        if comm.is_main_process():
            decision = _decide(stage, ctx, records.get(stage.name), stale, only, tag)
        decision = comm.broadcast_object(decision)
        if decision == "reuse":
            logger.info("%s (%s) is complete: reusing it", tag, stage.description)
            if comm.is_main_process() and stage.name not in records:
                records[stage.name] = stage.fingerprint(ctx.cfg)
                write_records(out, records)
            continue
        stale = stale or decision == "rerun"
        logger.info("%s: %s", tag, stage.description)
        t0 = time.perf_counter()
        if stage.every_process:
            stage.run(ctx)
        elif comm.is_main_process():
            with threads_of_waiting_processes():
                stage.run(ctx)
        comm.synchronize()
        setup_logger(ctx.cfg.OUTPUT_DIR)
        ran = True
        if comm.is_main_process():
            records[stage.name] = stage.fingerprint(ctx.cfg)
            write_records(out, records)
        logger.info("%s finished in %.1f s", tag, time.perf_counter() - t0)
    return ran


def _decide(stage: Stage, ctx: StageContext, record, after_stale: bool, only, tag) -> str:
    """``"reuse"``, ``"run"`` (not finished) or ``"rerun"`` (finished, but its config or an
    earlier stage's changed: its outputs are moved aside first), decided on rank 0."""
    if only is not None or not stage.done(ctx):
        return "run"
    if after_stale:
        why = ["an earlier stage's config changed"]
    elif record is None:
        return "reuse"
    else:
        why = changed_keys(record, stage.fingerprint(ctx.cfg))
        if not why:
            return "reuse"
    logger.warning("%s: its config changed since it ran (%s): running it again, and every "
                   "stage after it", tag, "; ".join(why))  # fmt: skip
    if stage.outputs is not None:
        move_aside(stage.outputs(ctx.cfg))
    return "rerun"
