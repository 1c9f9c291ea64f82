"""One run per OUTPUT_DIR (a lock held by a real second process; filelock underneath) and the
writability check."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dgnet_plugin.config import ConfigError
from dgnet_plugin.utils.cli import run_cli
from dgnet_plugin.utils.run_lock import (
    LOCK_NAME,
    OWNER_NAME,
    RunLock,
    RunLockedError,
    check_output_dir_writable,
)

REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from dgnet_plugin.utils.run_lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the parent closes stdin (or kills us)
lock.release()
print("released", flush=True)
"""


@pytest.fixture
def log(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("dgnet_plugin"), "propagate", True)
    caplog.set_level(logging.INFO, logger="dgnet_plugin")
    return caplog


def _holder(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_writer_is_refused_naming_pid_and_host_then_takes_a_dead_holders_lock(tmp_path, log):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(RunLockedError) as e:
            RunLock(str(tmp_path)).acquire()
        msg = str(e.value)
        assert f"PID {holder.pid} on host {socket.gethostname()}" in msg
        assert str(tmp_path) in msg and "choose another OUTPUT_DIR" in msg
        assert "\n" not in msg
        # the CLI turns it into exit status 2
        assert run_cli(lambda a: RunLock(str(tmp_path)).acquire(), None) == 2
    finally:
        holder.kill()  # SIGKILL: no release, the file still names the dead holder
        holder.wait()
    assert (tmp_path / OWNER_NAME).read_text().split()[0] == str(holder.pid)
    with RunLock(str(tmp_path)) as lock:
        assert lock.held
        assert (tmp_path / OWNER_NAME).read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert f"stale lock {tmp_path / LOCK_NAME} of PID {holder.pid}" in log.text
    assert "no longer running" in log.text
    assert (tmp_path / OWNER_NAME).read_text() == ""  # released cleanly


def test_clean_release_lets_the_next_run_in_without_warning(tmp_path, log):
    holder = _holder(tmp_path)
    holder.stdin.close()
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait() == 0
    with RunLock(str(tmp_path)):
        pass
    assert "stale" not in log.text


def test_lock_creates_the_folder_and_release_is_idempotent(tmp_path):
    out = tmp_path / "a" / "b"
    lock = RunLock(str(out))
    lock.acquire()
    lock.release()
    lock.release()
    assert (out / LOCK_NAME).is_file() and (out / OWNER_NAME).is_file()
    with RunLock(str(out), enabled=False) as off:
        assert not off.held
        with RunLock(str(out)):  # the disabled one holds nothing
            pass


def test_without_flock_a_held_lock_blocks_and_a_dead_holders_is_taken_over(
    tmp_path, log, monkeypatch
):
    """A file system without flock (ENOSYS): filelock's marker file is the lock; a live
    holder blocks, a holder that died without releasing is taken over with a warning."""
    no_flock = (
        "import errno, fcntl\n"
        "def no_flock(fd, op):\n"
        "    raise OSError(errno.ENOSYS, 'Function not implemented')\n"
        "fcntl.flock = no_flock\n"
    )
    scope: dict = {}
    exec(no_flock.replace("fcntl.flock = no_flock", ""), scope)
    monkeypatch.setattr(fcntl, "flock", scope["no_flock"])  # this process: the same file system
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", no_flock + HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"PID {holder.pid} on host"):
            RunLock(str(tmp_path)).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(str(tmp_path)):
        assert (tmp_path / OWNER_NAME).read_text().split()[0] == str(os.getpid())
    assert f"of PID {holder.pid} on {socket.gethostname()} (no longer running" in log.text


def test_writable_check_creates_the_folder(tmp_path):
    check_output_dir_writable(str(tmp_path / "new" / "run"))
    assert (tmp_path / "new" / "run").is_dir()
    assert list((tmp_path / "new" / "run").iterdir()) == []  # the probe file is gone


def test_output_dir_under_a_regular_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"'.*file' is a file, not a folder") as e:
        check_output_dir_writable(str(tmp_path / "file" / "run"))
    assert "OUTPUT_DIR" in str(e.value)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_dir_writable(str(tmp_path / "file"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_dir_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match=r"OUTPUT_DIR '.*ro' is not writable: Permission"):
            check_output_dir_writable(str(ro))
        with pytest.raises(ConfigError, match="not writable"):
            check_output_dir_writable(str(ro / "sub"))
    finally:
        ro.chmod(0o755)


def test_read_only_file_system_is_a_clear_error(tmp_path, monkeypatch):
    import tempfile

    def erofs(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", erofs)
    with pytest.raises(ConfigError, match="is not writable: Read-only file system; set OUTPUT_DIR"):
        check_output_dir_writable(str(tmp_path))
