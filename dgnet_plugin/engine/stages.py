"""Stages of a method's pipeline (the offline generate-then-train methods: train the
translator(s), generate a labelled image set, train re-ID on real + generated images).

A method declares ``Method.stages``: ``f(cfg) -> [Stage, ...]``, the stages that come
*before* its own engine's training (the config's ``ENGINE.NAME``), which is always the last
stage, named :data:`MAIN_STAGE`. ``tools/train_net.py --config-file X`` runs them all in
order; ``--stage NAME`` runs one. Each stage knows when it is finished (``done``): a finished
stage is reused (logged, not rerun), an interrupted one continues where it stopped (a
training stage resumes from its newest checkpoint, a generation stage skips the images it
wrote). Stage outputs live under the main run's ``OUTPUT_DIR``.

Several processes (``--num-gpus N`` or torchrun; on CPU, gloo processes: the CPU demos' way
to use every core): a training stage (``every_process``) is a distributed run of its own
that every process joins; any other stage (generation, domain split, pose clustering) is
done by rank 0 alone while the others wait at a barrier (the process group's timeout, 30
min by default, bounds that wait; the wait does not spin, so rank 0 takes the CPU threads of
its machine's waiting processes for the stage). Rank 0 decides whether a stage is finished
and tells the others, so every process takes the same path.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..config import ConfigError
from ..utils import comm
from ..utils.events import setup_logger

logger = logging.getLogger("dgnet_plugin")

#: the name of the last stage: the training of the config's own engine
MAIN_STAGE = "train"


@dataclass
class StageContext:
    """What a stage gets: the main run's frozen ``cfg``, its config file and ``KEY VALUE``
    ``opts`` (a training stage launches the same file with overrides of its own), and the
    run's ``device``, resolved once from ``MODEL.DEVICE`` (:func:`~.device.resolve_device`)
    when not given: every generation stage, generator and provider runs on it."""

    cfg: object
    config_file: str
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
    """

    name: str
    run: Callable[[StageContext], None]
    done: Callable[[StageContext], bool]
    description: str = ""
    every_process: bool = False


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


def run_stages(stages: list[Stage], ctx: StageContext, only: str | None = None) -> None:
    """Run ``stages`` in order (``only``: just the stage of that name, even when done),
    reusing finished ones; the log returns to the main run's ``OUTPUT_DIR`` after each.
    With several processes, rank 0 decides what is finished and runs the stages that are not
    ``every_process`` while the others wait (see the module docstring).

    Raises:
        ConfigError: ``only`` names no stage.
    """
    if only is not None:
        check_stage_name(stages, only)
    for k, stage in enumerate(stages, 1):
        if only is not None and stage.name != only:
            continue
        tag = f"stage {k}/{len(stages) + 1} '{stage.name}'"
        done = only is None and comm.broadcast_object(
            stage.done(ctx) if comm.is_main_process() else None
        )
        if done:
            logger.info("%s (%s) is complete: reusing it", tag, stage.description)
            continue
        logger.info("%s: %s", tag, stage.description)
        t0 = time.perf_counter()
        if stage.every_process:
            stage.run(ctx)
        elif comm.is_main_process():
            with threads_of_waiting_processes():
                stage.run(ctx)
        comm.synchronize()
        setup_logger(ctx.cfg.OUTPUT_DIR)
        logger.info("%s finished in %.1f s", tag, time.perf_counter() - t0)
