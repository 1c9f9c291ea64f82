"""Graceful stop on SIGTERM / SIGINT / SIGUSR1: finish the iteration, save, exit 128+signal.

A scheduler's preemption (SIGTERM, SLURM's ``--signal=USR1``) or a Ctrl-C sets a flag; the
training loop asks :meth:`GracefulStop.should_stop` after each iteration, saves a checkpoint
and raises :class:`TrainingInterrupted`, which the command line turns into exit status
``128 + signal`` (the shell's convention for "killed by that signal"). A second Ctrl-C
aborts at once with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import torch

from ..errors import TrainingInterrupted, signal_name
from ..utils import comm

__all__ = ["GracefulStop", "STOP_SIGNALS", "TrainingInterrupted", "signal_name"]

logger = logging.getLogger("dgnet_plugin")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class GracefulStop:
    """While active (a context manager), SIGTERM, SIGINT and SIGUSR1 only set a flag.

    Usage in a training loop::

        with GracefulStop() as stop:
            while it < max_iter:
                run_step(it); it += 1
                if stop.should_stop():  # same answer on every rank
                    path = save_checkpoint(f"model_{it:07d}")
                    raise TrainingInterrupted(stop.signum, it, path)

    The first signal is recorded in :attr:`signum` (later ones of another kind are ignored);
    a second SIGINT raises ``KeyboardInterrupt`` at once (the "abort now" Ctrl-C; two
    signals that arrive before Python runs the handler count as one, POSIX does not queue
    them). Forked DataLoader workers inherit the handler and ignore the signals, so they keep
    serving the iteration in progress. On exit
    the previous handlers are restored. Outside the main thread (where Python cannot install
    handlers) it logs a warning and does nothing.

    Args:
        signals: the signals to catch (default SIGTERM, SIGINT, SIGUSR1).
        check_period: in a distributed run, :meth:`should_stop` all-reduces the flag only at
            every ``check_period``-th call (one small collective, which waits for the
            device); the run then stops within ``check_period`` iterations of the signal, at
            the same iteration on every rank. Every rank must call it equally often.
    """

    def __init__(self, signals=STOP_SIGNALS, check_period: int = 1):
        if check_period < 1:
            raise ValueError(f"check_period must be >= 1, got {check_period}")
        self.signals = tuple(signals)
        self.check_period = check_period
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._calls = 0
        self._announced = False
        self._pid = os.getpid()

    # ------------------------------------------------------------------ handlers
    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # a forked DataLoader worker inherited the handler: ignore the signal, so the
            # worker keeps serving batches until the main process finishes its iteration
            return
        if self.signum is None:
            self.signum = signum
            # no logging here (its locks are not re-entrant across a handler); a raw write
            os.write(
                2,
                f"\n{signal_name(signum)} received: stopping after the current iteration "
                "(Ctrl-C again to abort without saving)\n".encode(),
            )
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is not threading.main_thread():
            logger.warning("GracefulStop outside the main thread: signals are not handled")
            return self
        self._pid = os.getpid()
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    # ------------------------------------------------------------------ queries
    @property
    def requested(self) -> bool:
        """Whether this process received a stop signal (no communication)."""
        return self.signum is not None

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask to stop as if ``signum`` had arrived (tests, or a watchdog)."""
        if self.signum is None:
            self.signum = signum

    def agree(self) -> int | None:
        """Every rank's flag, all-reduced with MAX when ``torch.distributed`` is initialised
        (a collective: every rank must call it): a rank that learns of a stop from another
        adopts that rank's signal number. Returns :attr:`signum`."""
        if comm.is_distributed():
            flag = torch.tensor([self.signum or 0], dtype=torch.int64)
            agreed = int(comm.all_reduce_max(flag).item())
            if agreed and self.signum is None:
                self.signum = agreed
        return self.signum

    def should_stop(self) -> bool:
        """Whether the loop must stop now: this process's flag, or, when ``torch.distributed``
        is initialised, any rank's flag (all-reduced with MAX at every ``check_period``-th
        call, so all ranks answer the same at the same call). A rank that learns of the stop
        from another adopts that rank's signal number. Logs the decision once."""
        self._calls += 1
        if comm.is_distributed():
            if self._calls % self.check_period:
                return False
            self.agree()
        stop = self.signum is not None
        if stop and not self._announced:
            self._announced = True
            logger.warning("%s: stopping and saving a checkpoint", signal_name(self.signum))
        return stop
