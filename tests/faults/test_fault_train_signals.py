"""Faults on a real training run of tools/train_net.py (the IDE engine on the real CUHK03
subset, tiny images): SIGTERM / SIGINT / SIGKILL at several points (one while checkpoints are
being written), then --resume compared with an uninterrupted run; two runs into one folder;
a diverging run; a changed learning rate on --resume; a fresh start over checkpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import train_net
from conftest import REPO, cli_opts

from dgnet_plugin.utils.events import read_json_lines, setup_logger

IDE = str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml")
ITERS = 8


def opts(root, out, *extra) -> list[str]:
    return [
        *cli_opts(root, out),
        "SOLVER.MAX_ITER",
        str(ITERS),
        "DATALOADER.IMS_PER_BATCH",
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


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 1 MiB tmpfs (a full disk after the first few writes)."""
    mnt = tmp_path / "tinyfs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root here: {done.stderr.decode().strip()}")
    yield mnt
    setup_logger(None)  # close log.txt on the mount
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.e2e
def test_a_full_disk_is_one_line_naming_the_path(tiny_market, tiny_filesystem, capsys):
    out = tiny_filesystem / "run"
    args = opts(tiny_market, out, "SOLVER.CHECKPOINT_PERIOD", "1")
    assert train_net.cli(["--config-file", IDE, *args]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}" in err and "No space left on device" in err, err
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
