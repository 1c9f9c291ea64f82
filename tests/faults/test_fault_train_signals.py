"""Faults on a real training run of tools/train_net.py (the IDE engine on the real CUHK03
subset, tiny images): SIGTERM / SIGINT / SIGKILL at several points (one while checkpoints are
being written), then --resume compared with an uninterrupted run; two runs into one folder;
a diverging run; a changed learning rate on --resume; a fresh start over checkpoints; a disk
that fills up after the first checkpoint (simulated without root: ENOSPC from the writes)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import train_net
from conftest import REPO, cli_opts

from dgnet_plugin.utils.events import read_json_lines

IDE = str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml")
ITERS = 8


def opts(root, out, *extra) -> list[str]:
    return [
        *cli_opts(root, out),
        "SOLVER.MAX_ITER",
        str(ITERS),
        "SOLVER.IMS_PER_BATCH",
        "8",
        "INPUT.SIZE_TRAIN",
        "(32, 16)",
        "INPUT.SIZE_TEST",
        "(32, 16)",
        *extra,
    ]


def losses(out: Path) -> dict[int, float]:
    return {
        r["iteration"]: r["id"] for r in read_json_lines(str(out / "metrics.json")) if "id" in r
    }


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "tools" / "train_net.py"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_iteration(proc: subprocess.Popen, out: Path, it: int, timeout: float = 240) -> None:
    """Until ``metrics.json`` records iteration ``it`` (the run is inside its loop)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            if any(r.get("iteration", 0) >= it for r in read_json_lines(str(out / "metrics.json"))):
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"iteration {it} not reached in {timeout} s")


@pytest.fixture(scope="module")
def straight(tiny_market, tmp_path_factory) -> dict[int, float]:
    out = tmp_path_factory.mktemp("straight")
    assert train_net.cli(["--config-file", IDE, *opts(tiny_market, out)]) == 0
    return losses(out)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "sig, period", [(signal.SIGTERM, "100"), (signal.SIGINT, "100"), (signal.SIGTERM, "1")]
)
def test_a_signal_saves_the_iteration_and_resume_continues_exactly(
    sig, period, straight, tiny_market, tmp_path
):
    """period 1: a checkpoint every iteration, so the signal most likely lands in a save."""
    out = tmp_path / "run"
    proc = start(
        ["--config-file", IDE, *opts(tiny_market, out, "SOLVER.CHECKPOINT_PERIOD", period)]
    )
    wait_for_iteration(proc, out, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, err[-2000:]
    log = (out / "log.txt").read_text()
    assert f"interrupted by {signal.Signals(sig).name} at iteration" in log and "saved" in log
    stopped = max(losses(out))
    assert stopped < ITERS and (out / f"model_{stopped:07d}.pth").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]  # no orphan temp file
    assert train_net.cli(["--config-file", IDE, "--resume", *opts(tiny_market, out)]) == 0
    resumed = losses(out)
    assert sorted(resumed) == list(range(1, ITERS + 1))  # no iteration twice
    for it in range(stopped + 1, ITERS + 1):  # (another process: float order may differ)
        assert resumed[it] == pytest.approx(straight[it], rel=1e-5), it


@pytest.mark.e2e
def test_sigkill_then_resume_from_the_newest_complete_checkpoint(straight, tiny_market, tmp_path):
    out = tmp_path / "killed"
    proc = start(["--config-file", IDE, *opts(tiny_market, out, "SOLVER.CHECKPOINT_PERIOD", "1")])
    wait_for_iteration(proc, out, 3)
    proc.kill()
    proc.communicate(timeout=60)
    assert train_net.cli(["--config-file", IDE, "--resume", *opts(tiny_market, out)]) == 0
    resumed = losses(out)
    assert sorted(resumed) == list(range(1, ITERS + 1))
    for it in range(4, ITERS + 1):
        assert resumed[it] == pytest.approx(straight[it], rel=1e-5), it


@pytest.mark.e2e
def test_a_second_run_into_the_same_folder_exits_2_naming_the_holder(tiny_market, tmp_path):
    out = tmp_path / "shared"
    first = start(["--config-file", IDE, *opts(tiny_market, out, "SOLVER.MAX_ITER", "400")])
    try:
        wait_for_iteration(first, out, 1)
        second = start(["--config-file", IDE, "--resume", *opts(tiny_market, out)])
        _, err = second.communicate(timeout=240)
        assert second.returncode == 2, err[-2000:]
        assert f"PID {first.pid}" in err or f"pid {first.pid}" in err.lower()
    finally:
        first.kill()
        first.communicate(timeout=60)


@pytest.mark.e2e
def test_a_diverging_run_stops_with_status_2(tiny_market, tmp_path, capsys):
    out = tmp_path / "diverge"
    extra = ["SOLVER.REID.BASE_LR", "10000.0", "SOLVER.DIVERGENCE.MAX_LOSS", "50.0"]
    assert train_net.cli(["--config-file", IDE, *opts(tiny_market, out, *extra)]) == 2
    err = capsys.readouterr().err
    assert "SOLVER.DIVERGENCE.MAX_LOSS" in err or "NaN" in err, err


@pytest.mark.e2e
def test_resume_with_a_changed_learning_rate_is_refused_and_a_fresh_start_needs_overwrite(
    tiny_market, tmp_path, capsys
):
    out = tmp_path / "lr"
    assert (
        train_net.cli(["--config-file", IDE, *opts(tiny_market, out, "SOLVER.MAX_ITER", "2")]) == 0
    )
    changed = opts(tiny_market, out, "SOLVER.REID.BASE_LR", "0.1")
    assert train_net.cli(["--config-file", IDE, "--resume", *changed]) == 2
    err = capsys.readouterr().err
    assert "SOLVER.REID.BASE_LR: 0.00035 -> 0.1" in err
    # a longer run is fine: MAX_ITER may change on --resume; so is a run written before the
    # SOLVER keys added since (its config.yaml lacks them: they take their defaults)
    saved = (out / "config.yaml").read_text()
    old = re.sub(r"  DIVERGENCE:\n(    .*\n)+", "", saved.replace("  CHECKPOINT_KEEP: 0\n", ""))
    assert "DIVERGENCE" not in old and "CHECKPOINT_KEEP" not in old
    (out / "config.yaml").write_text(old)
    assert train_net.cli(["--config-file", IDE, "--resume", *opts(tiny_market, out)]) == 0
    assert train_net.cli(["--config-file", IDE, *opts(tiny_market, out)]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert train_net.cli(["--config-file", IDE, "--overwrite", *opts(tiny_market, out)]) == 0


class _FullDiskFile:
    """A file opened for writing on :func:`full_disk_after_one_checkpoint`'s disk: its
    writes use up the free space, and one that does not fit raises ``ENOSPC`` as a full
    disk's ``write(2)`` does (nothing of that chunk is written)."""

    def __init__(self, f, disk: dict):
        self._f, self._disk, self._written = f, disk, 0

    def write(self, data) -> int:
        n = len(data.encode() if isinstance(data, str) else memoryview(data).cast("B"))
        if self._disk["free"] is not None and n > self._disk["free"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self._disk["free"] is not None:
            self._disk["free"] -= n
        self._written += n
        return self._f.write(data)

    def close(self) -> None:
        if self._disk["free"] is None and self._written > 1 << 20:  # the first checkpoint
            self._disk["free"] = self._written // 2
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.fixture
def full_disk_after_one_checkpoint(tmp_path, monkeypatch):
    """A folder whose disk has room for one checkpoint and a half, root-free: the files that
    ``os.fdopen`` opens for writing below it (the checkpointer's temp files, written by
    ``torch.save`` and renamed when complete) share the free space, which is unlimited
    until the first file over 1 MiB (a checkpoint) is closed and half its size after."""
    folder = tmp_path / "disk"
    disk: dict = {"free": None}
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        if "w" in mode and os.readlink(f"/proc/self/fd/{fd}").startswith(f"{folder}/"):
            return _FullDiskFile(f, disk)
        return f

    monkeypatch.setattr(os, "fdopen", fdopen)
    return folder


@pytest.mark.e2e
def test_a_full_disk_is_one_line_naming_the_path_and_the_intact_checkpoint(
    tiny_market, full_disk_after_one_checkpoint, monkeypatch, capsys
):
    out = full_disk_after_one_checkpoint / "run"
    args = opts(tiny_market, out, "SOLVER.CHECKPOINT_PERIOD", "1")
    assert train_net.cli(["--config-file", IDE, *args]) == 2
    err = capsys.readouterr().err
    first = out / "model_0000001.pth"
    assert f"cannot write {out / 'model_0000002.pth'}: No space left on device" in err, err
    assert f"{first} is intact; free space or fix permissions, then --resume" in err, err
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert not (out / "model_0000002.pth").exists()
    assert (out / "last_checkpoint").read_text().strip() == first.name
    assert torch.load(first, weights_only=True)["iteration"] == 1
    monkeypatch.undo()  # space freed: the run resumes from the intact checkpoint (one step)
    short = opts(tiny_market, out, "SOLVER.MAX_ITER", "2")
    assert train_net.cli(["--config-file", IDE, "--resume", *short]) == 0
    assert sorted(losses(out)) == [1, 2]
    assert "Resumed from " + str(first) in (out / "log.txt").read_text()
