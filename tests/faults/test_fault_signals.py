"""Graceful stop: a real SIGTERM/SIGINT to a training-like loop, the exit status 128+signal,
a second Ctrl-C, and the stop iteration agreed by two gloo processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgnet_plugin.engine.launch import distributed_session, launch
from dgnet_plugin.engine.signals import GracefulStop, TrainingInterrupted
from dgnet_plugin.utils.cli import run_cli

REPO = Path(__file__).resolve().parents[2]

LOOP = """
import sys, time, torch
from dgnet_plugin.engine.signals import GracefulStop, TrainingInterrupted
from dgnet_plugin.utils.checkpoint import Checkpointer
from dgnet_plugin.utils.cli import run_cli
from dgnet_plugin.utils.events import setup_logger

out = sys.argv[1]
setup_logger(None)

def main(_):
    ck = Checkpointer(torch.nn.Linear(2, 2), out)
    it = 0
    with GracefulStop() as stop:
        while it < 1000:
            print(f"iter {it}", flush=True)
            time.sleep(0.3)  # the iteration in progress
            it += 1
            if stop.should_stop():
                path = ck.save(f"model_{it:07d}", iteration=it)
                raise TrainingInterrupted(stop.signum, it, path)

sys.exit(run_cli(main, None))
"""


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOOP, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _wait_for_iteration(p: subprocess.Popen, n: int) -> None:
    for line in p.stdout:
        if line.strip() == f"iter {n}":
            return
    raise AssertionError(f"the loop ended before iteration {n}: {p.stderr.read()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_finishes_the_iteration_saves_and_exits_128_plus_signal(tmp_path, sig):
    p = _start(tmp_path)
    _wait_for_iteration(p, 2)  # iteration 2 is running
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    path = tmp_path / "model_0000003.pth"
    assert f"interrupted by {signal.Signals(sig).name} at iteration 3, saved {path}" in out + err
    assert "continue with --resume" in err
    assert torch.load(path, weights_only=True)["iteration"] == 3
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"


def test_a_second_ctrl_c_aborts_at_once_without_saving(tmp_path):
    p = _start(tmp_path)
    _wait_for_iteration(p, 1)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two signals sent at once merge into one (POSIX does not queue them)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode in (-signal.SIGINT, 128 + signal.SIGINT, 1), err
    assert "KeyboardInterrupt" in err and "SIGINT received" in err
    # no checkpoint: on a loaded machine the second signal may land during the save, which it
    # aborts (the atomic writer leaves no model file and no last_checkpoint then)
    assert not list(tmp_path.glob("model_*.pth")) and not (tmp_path / "last_checkpoint").exists()


def test_handlers_are_installed_and_restored_in_process():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    with GracefulStop() as stop:
        assert not stop.should_stop()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.signum == signal.SIGUSR1 and stop.requested
        os.kill(os.getpid(), signal.SIGTERM)  # a later signal of another kind is ignored
        assert stop.signum == signal.SIGUSR1 and stop.should_stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before


def test_training_interrupted_message_and_exit_code(capsys):
    e = TrainingInterrupted(signal.SIGTERM, 120, "/o/model_0000120.pth")
    assert e.exit_code == 143
    assert str(e) == (
        "interrupted by SIGTERM at iteration 120, saved /o/model_0000120.pth; "
        "continue with --resume"
    )
    assert str(TrainingInterrupted(signal.SIGINT)) == "interrupted by SIGINT"

    def main(_):
        raise e

    assert run_cli(main, None) == 143
    assert "interrupted by SIGTERM" in capsys.readouterr().err
    with pytest.raises(ValueError, match="check_period"):
        GracefulStop(check_period=0)


def test_a_signal_during_the_final_evaluation_still_ends_the_command():
    """Ctrl-C while a finished run evaluates (or writes its final checkpoint): the evaluation
    completes, then TrainingInterrupted ends the command, so a pipeline does not go on to
    its next stage (it was swallowed before); without a signal nothing is raised."""
    from dgnet_plugin.engine.hooks import StopOnSignal
    from dgnet_plugin.engine.train_loop import HookBase, TrainerBase

    class FinalEvaluation(HookBase):
        def __init__(self, signum):
            self.signum, self.evaluated = signum, False

        def after_train(self):
            if self.signum:
                os.kill(os.getpid(), self.signum)  # arrives during the evaluation
            self.evaluated = True

    class Loop(TrainerBase):
        def run_step(self, iteration):
            return {}

    before = signal.getsignal(signal.SIGINT)
    for signum in (None, signal.SIGINT):
        loop, evaluation = Loop(), FinalEvaluation(signum)
        loop.register_hooks([evaluation, StopOnSignal()])
        if signum is None:
            loop.train(0, 3)
        else:
            with pytest.raises(TrainingInterrupted, match="SIGINT at iteration 3") as e:
                loop.train(0, 3)
            assert e.value.exit_code == 130
        assert loop.completed and evaluation.evaluated
        assert signal.getsignal(signal.SIGINT) is before


# ------------------------------------------------------------------ two processes
def _agree_worker(out_dir: str) -> None:
    from dgnet_plugin.utils import comm
    from dgnet_plugin.utils.run_lock import RunLock, RunLockedError

    with distributed_session("cpu"):
        rank = comm.get_rank()
        result = {}
        for period in (1, 2):
            stop = GracefulStop(check_period=period)  # flags only: no handlers needed
            it = 0
            while it < 20:
                it += 1
                if rank == 1 and it == 3:
                    stop.request(signal.SIGUSR1)  # only rank 1 "received" the signal
                if stop.should_stop():
                    break
            result[period] = (it, stop.signum)
        # the lock: rank 0 holds it; a second acquisition fails on every rank
        lock = RunLock(os.path.join(out_dir, "run")).acquire()
        try:
            RunLock(os.path.join(out_dir, "run")).acquire()
            result["second"] = "acquired"
        except RunLockedError as e:
            result["second"] = str(e)
        result["held"] = lock.held
        lock.release()
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")


def test_all_ranks_stop_at_the_same_iteration_and_share_the_lock_outcome(tmp_path):
    launch(_agree_worker, 2, args=(str(tmp_path),))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert r0[1] == r1[1] == (3, signal.SIGUSR1)  # rank 0 adopts rank 1's signal
    assert r0[2] == r1[2] == (4, signal.SIGUSR1)  # checked at calls 2, 4, ...: stop at 4
    assert r0["second"] == r1["second"]
    assert f"PID {os.getpid()}" not in r0["second"] and "is in use by a running job" in r0["second"]
    assert r0["held"] and not r1["held"]  # only rank 0 locks
