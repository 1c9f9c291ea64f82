"""One run per ``OUTPUT_DIR``: a lock held for the run's lifetime, and a writability check.

The lock is :class:`filelock.FileLock` on ``OUTPUT_DIR/.run.lock`` (``flock``; the kernel drops
it when its process dies, however it dies, so a lock left by a killed run never blocks the
next one; on file systems without ``flock`` filelock falls back to a marker file that names
its holder and is broken when that holder is gone). Beside it, ``OUTPUT_DIR/.run.owner``
holds ``<pid> <host>`` of the holder, so that a refused run can say whose job it met and the
next run can say whose stale lock it takes over.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile

from filelock import FileLock, Timeout

from ..errors import ConfigError, UserError
from . import comm

logger = logging.getLogger("dgnet_plugin")

LOCK_NAME = ".run.lock"
OWNER_NAME = ".run.owner"


class RunLockedError(UserError, RuntimeError):
    """Another run (named by PID and host) holds the lock of the same ``OUTPUT_DIR``."""


def _read_owner(path: str) -> tuple[int, str] | None:
    """``(pid, host)`` written in the owner file, or ``None`` when missing, empty or garbled."""
    try:
        with open(path) as f:
            parts = f.read(4096).split()
    except OSError:
        return None
    if len(parts) >= 2 and parts[0].isdigit():
        return int(parts[0]), parts[1]
    return None


class RunLock:
    """Exclusive lock of ``output_dir`` for the lifetime of a run (a context manager).

    Usage::

        with RunLock(cfg.OUTPUT_DIR):
            ...  # the whole run: clean up, resume, train, evaluate

    In a run of several processes only the main process (rank 0) locks; when
    ``torch.distributed`` is initialised at :meth:`acquire`, rank 0 broadcasts the outcome
    and every rank raises the same :class:`RunLockedError`, so no rank is left waiting in a
    collective. (Taking the lock in a launcher before the process group exists also works:
    then each process that calls :meth:`acquire` locks on its own, so call it in one only.)

    Args:
        output_dir: the run's folder (created if missing).
        enabled: ``False`` makes the lock a no-op (e.g. ``--eval-only`` that writes nothing).
    """

    def __init__(self, output_dir: str, enabled: bool = True):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.owner_path = os.path.join(output_dir, OWNER_NAME)
        self.enabled = enabled
        self._lock: FileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> RunLock:
        """Take the lock and write this process's ``<pid> <host>`` into the owner file.

        Raises:
            RunLockedError: another live run holds it; the message names its PID and host.
            OSError: the lock file cannot be created (check :func:`check_output_dir_writable`
                first for a clear message).
        """
        if not self.enabled:
            return self
        error = None
        if comm.is_main_process():
            try:
                self._acquire_local()
            except RunLockedError as e:
                error = str(e)
        if comm.is_distributed():
            error = comm.broadcast_object(error)
        if error is not None:
            raise RunLockedError(error)
        return self

    def _acquire_local(self) -> None:
        os.makedirs(self.output_dir, exist_ok=True)
        lock = FileLock(self.path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunLockedError(self._locked_message(_read_owner(self.owner_path))) from None
        try:
            me = (os.getpid(), socket.gethostname())
            holder = _read_owner(self.owner_path)
            if holder is not None and holder != me:
                gone = holder[1] == me[1] and not _pid_alive(holder[0])
                logger.warning(
                    "taking over the stale lock %s of PID %d on %s (%s; it did not release it)",
                    self.path,
                    holder[0],
                    holder[1],
                    "no longer running" if gone else "gone",
                )
            with open(self.owner_path, "w") as f:
                f.write(f"{me[0]} {me[1]}\n")
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    def _locked_message(self, holder: tuple[int, str] | None) -> str:
        who = f"PID {holder[0]} on host {holder[1]}" if holder else "another process"
        return (
            f"OUTPUT_DIR '{self.output_dir}' is in use by a running job ({who}, lock "
            f"{self.path}); wait for it to finish, stop it, or choose another OUTPUT_DIR"
        )

    def release(self) -> None:
        """Empty the owner file and unlock (idempotent)."""
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            with open(self.owner_path, "w"):
                pass
        finally:
            lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check_output_dir_writable(path: str) -> None:
    """Create ``path`` if needed and make sure a file can be written in it.

    Call it first thing, before any data is read or any network built.

    Raises:
        ConfigError: ``path`` (or a folder on its way) is a regular file, or the folder
            cannot be created or written (read-only, no permission, full disk); the message
            names the path, the reason and the fix.
    """
    fix = "set OUTPUT_DIR to a folder you can write"
    probe = os.path.abspath(path)
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if probe and not os.path.isdir(probe):
        raise ConfigError(
            f"OUTPUT_DIR '{path}' cannot be created: '{probe}' is a file, not a folder; {fix}"
        )
    try:
        os.makedirs(path, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-write-test-", dir=path)
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise ConfigError(
            f"OUTPUT_DIR '{path}' is not writable: {e.strerror or e}; {fix}"
        ) from None
