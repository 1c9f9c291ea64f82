"""The periodic actions of training, as hooks (fastreid's ``engine/hooks.py`` shape).

:meth:`~dgnet_plugin.engine.defaults.IterationTrainer.build_hooks` assembles them from the
config, in this order: :class:`LRScheduler`, :class:`MetricsWriter` (which also stops on a
non-finite or diverging loss), :class:`PeriodicCheckpointer`, :class:`SampleGrids` (engines
that draw samples), :class:`ReIDEvaluation` (engines whose model has a re-ID network),
:class:`StopOnSignal` (SIGTERM / SIGINT / SIGUSR1: save and stop). The last
iteration's periodic actions are left to ``after_train`` (final checkpoint, grid and
evaluation), so nothing is done twice.
"""

from __future__ import annotations

import logging
import time

import torch

from ..errors import TrainingInterrupted, UserError
from ..utils import comm
from ..utils.events import progress_bar
from .divergence import DivergenceGuard
from .signals import GracefulStop
from .train_loop import HookBase

logger = logging.getLogger("dgnet_plugin")


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss became NaN or Inf; training stopped before writing any checkpoint."""


def _due(period: int, it: int) -> bool:
    return period > 0 and it % period == 0


class LRScheduler(HookBase):
    """Steps every scheduler of ``trainer.schedulers`` once per iteration (per-iteration
    milestones)."""

    def after_step(self) -> None:
        for sched in self.trainer.schedulers.values():
            if sched is not None:
                sched.step()


class MetricsWriter(HookBase):
    """Loss means every ``period`` iterations (and at the last one) to the console,
    ``log.txt``, ``metrics.json``, TensorBoard (``train/<name>``) and the progress bar, with
    the seconds per iteration, the learning rate of each optimiser and the fp16 loss scales.

    The losses of the iterations since the last write are summed on the device and reduced
    once per period (one ``all_reduce`` of the stacked sums and one ``tolist``: the loop's
    only host synchronisation). Every rank checks the same global means, so a NaN/Inf stops
    all ranks together with :class:`NonFiniteLossError`; the check also runs before every
    checkpoint (:meth:`before_checkpoint`), so no checkpoint is written after a non-finite
    loss.
    """

    def __init__(self, period: int, guard: DivergenceGuard | None = None):
        self.period = period
        self.guard = guard
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0

    def before_train(self) -> None:
        t = self.trainer
        self._t0, self._start = time.perf_counter(), t.iter
        self.bar = progress_bar(
            total=t.max_iter,
            initial=t.iter,
            dynamic_ncols=True,
            desc="train",
            disable=not comm.is_main_process(),
        )

    def after_step(self) -> None:
        t = self.trainer
        self.bar.update(1)
        for k, v in t.step_outputs.items():
            v = v.detach().float()
            self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += 1
        if _due(self.period, t.iter) or t.iter == t.max_iter:
            self.write((time.perf_counter() - self._t0) / max(1, t.iter - self._start))

    def before_checkpoint(self) -> None:
        self.write(None)

    def after_train(self) -> None:
        self.bar.close()

    def write(self, sec_per_iter: float | None) -> None:
        """Check the accumulated losses; write them unless ``sec_per_iter`` is None.

        Raises:
            NonFiniteLossError: a mean is NaN/Inf (no checkpoint is written after it).
            LossDivergedError: the :class:`~.divergence.DivergenceGuard` stops the run (a
                term above ``SOLVER.DIVERGENCE.MAX_LOSS`` or grown too fast).
        """
        if not self._sums:
            return
        t = self.trainer
        names = list(self._sums)
        values = comm.all_reduce_mean(torch.stack([self._sums[k] for k in names])).tolist()
        means = {k: v / self._count for k, v in zip(names, values)}
        bad = [k for k, v in means.items() if v != v or v in (float("inf"), float("-inf"))]
        self._sums, self._count = {}, 0
        if bad:
            last = t.checkpointer.get_checkpoint_file() or "none written yet"
            raise NonFiniteLossError(
                f"loss {', '.join(repr(b) for b in bad)} became NaN/Inf by iteration {t.iter}; "
                f"stopped without saving. Last good checkpoint: {last}. Lower the learning rates "
                "or check the data, then --resume."
            )
        if self.guard is not None:
            self.guard.raise_if_diverged(means, t.iter)  # the same means on every rank
        if sec_per_iter is None or not comm.is_main_process():
            return
        record = {"iteration": t.iter, "time": sec_per_iter, **means, **t.amp.scales()}
        for name, opt in t.optimizers.items():
            record[f"lr_{name}"] = opt.param_groups[-1]["lr"]
        t.metrics.write(record)
        for k, v in record.items():
            if k != "iteration":
                t.writer.add_scalar(f"train/{k}", v, t.iter)
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:6]}, refresh=False)
        logger.info(
            "iter %d/%d  %s  %.3f s/it",
            t.iter,
            t.max_iter,
            "  ".join(f"{k}={v:.4f}" for k, v in means.items()),
            sec_per_iter,
        )


class PeriodicCheckpointer(HookBase):
    """``model_<iter>.pth`` every ``period`` iterations and ``model_final.pth`` at the end
    (atomic; every rank calls, rank 0 writes; see ``IterationTrainer.save_checkpoint``)."""

    def __init__(self, period: int):
        self.period = period

    def after_step(self) -> None:
        t = self.trainer
        if _due(self.period, t.iter) and t.iter < t.max_iter:
            t.save_checkpoint(f"model_{t.iter:07d}")

    def after_train(self) -> None:
        if self.trainer.completed:
            self.trainer.save_checkpoint("model_final")


class SampleGrids(HookBase):
    """``trainer.draw_samples(iteration)`` (sample grids to ``OUTPUT_DIR/images`` and
    TensorBoard) every ``period`` iterations and at the end, on rank 0."""

    def __init__(self, period: int):
        self.period = period

    def after_step(self) -> None:
        t = self.trainer
        if _due(self.period, t.iter) and t.iter < t.max_iter and comm.is_main_process():
            t.draw_samples(t.iter)

    def after_train(self) -> None:
        if self.trainer.completed and comm.is_main_process():
            self.trainer.draw_samples(self.trainer.iter)


class ReIDEvaluation(HookBase):
    """The leaderboard evaluation of the model's re-ID network (``trainer.test()``) every
    ``period`` iterations and at the end; the final results are kept in
    ``trainer.results``."""

    def __init__(self, period: int):
        self.period = period

    def after_step(self) -> None:
        t = self.trainer
        if _due(self.period, t.iter) and t.iter < t.max_iter:
            t.test()
            t.model.train()

    def after_train(self) -> None:
        if self.trainer.completed:
            self.trainer.results = self.trainer.test()


class StopOnSignal(HookBase):
    """Preemption: while training, SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 (SLURM requeue) only
    ask to stop (:class:`~.signals.GracefulStop`); after the current iteration every rank
    agrees on the stop, a checkpoint of that iteration is written atomically, and
    :class:`~dgnet_plugin.errors.TrainingInterrupted` ends the run ("interrupted at iteration
    N, saved ..."; the tools exit with 128 + signal). A second Ctrl-C aborts at once.

    ``check_period``: with several processes the ranks agree by one small collective every
    ``check_period`` iterations (the build uses ``LOG_PERIOD``, when the loop synchronises
    anyway), so a distributed run stops within that many iterations of the signal; one
    process checks its flag every iteration at no cost."""

    def __init__(self, check_period: int = 1):
        self.check_period = max(1, int(check_period))

    def before_train(self) -> None:
        self.stop = GracefulStop(check_period=self.check_period)
        self.stop.__enter__()

    def after_step(self) -> None:
        t = self.trainer
        if self.stop.should_stop():
            path = t.save_checkpoint(f"model_{t.iter:07d}")
            raise TrainingInterrupted(self.stop.signum, t.iter, path)

    def after_train(self) -> None:
        """Restore the handlers. A signal that came after the last iteration (during the final
        checkpoint, grids or evaluation, which all finish) still ends the command: the run
        is complete, and :class:`~dgnet_plugin.errors.TrainingInterrupted` stops a pipeline
        from starting its next stage (``--resume`` reuses this one)."""
        t = self.trainer
        signum = self.stop.agree() if t.completed else None  # every rank completed: agree
        self.stop.__exit__(None, None, None)
        if t.completed and signum:
            raise TrainingInterrupted(signum, t.iter)
