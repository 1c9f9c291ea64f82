"""One run per ``OUTPUT_DIR``: a lock held for the run's lifetime, and a writability check.

The lock is ``fcntl.flock`` on ``OUTPUT_DIR/.run.lock``, a file that holds ``<pid> <host>`` of
its holder. The kernel drops a ``flock`` when its process dies, however it dies, so a lock
left behind by a killed run never blocks the next one; the file's leftover content only lets
the next run say whose lock it takes over. On file systems without ``flock`` (some network or
FUSE mounts) the content itself is the lock: a live PID on this host, or any PID on another
host, blocks; a dead PID on this host is taken over with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import tempfile

from ..errors import ConfigError, UserError
from . import comm

logger = logging.getLogger("dgnet_plugin")

LOCK_NAME = ".run.lock"

#: ``flock`` errors that mean "this file system cannot lock", not "someone holds the lock".
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunLockedError(UserError, RuntimeError):
    """Another run (named by PID and host) holds the lock of the same ``OUTPUT_DIR``."""


def _read_holder(fd: int) -> tuple[int, str] | None:
    """``(pid, host)`` written in the lock file, or ``None`` when it is empty or garbled."""
    os.lseek(fd, 0, os.SEEK_SET)
    parts = os.read(fd, 4096).decode(errors="replace").split()
    if len(parts) >= 2 and parts[0].isdigit():
        return int(parts[0]), parts[1]
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


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
        self.enabled = enabled
        self._fd: int | None = None
        self._flock = True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock and write this process's ``<pid> <host>`` into it.

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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(self._locked_message(_read_holder(fd))) from None
            except OSError as e:
                if e.errno not in _NO_FLOCK:
                    raise
                self._flock = False
                logger.warning(
                    "%s: the file system cannot flock (%s); using the PID in the file as the lock",
                    self.path,
                    e.strerror,
                )
            holder = _read_holder(fd)
            me = (os.getpid(), socket.gethostname())
            if holder is not None and holder != me:
                pid, host = holder
                if not self._flock and (host != me[1] or pid_alive(pid)):
                    raise RunLockedError(self._locked_message(holder))
                state = "no longer running" if host == me[1] and not pid_alive(pid) else "gone"
                logger.warning(
                    "taking over the stale lock %s of PID %d on %s (%s; it did not release it)",
                    self.path,
                    pid,
                    host,
                    state,
                )
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{me[0]} {me[1]}\n".encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _locked_message(self, holder: tuple[int, str] | None) -> str:
        who = f"PID {holder[0]} on host {holder[1]}" if holder else "another process"
        return (
            f"OUTPUT_DIR '{self.output_dir}' is in use by a running job ({who}, lock "
            f"{self.path}); wait for it to finish, stop it, or choose another OUTPUT_DIR"
        )

    def release(self) -> None:
        """Empty the lock file and unlock it (the file stays: deleting a ``flock``-ed file
        lets two processes lock two different files of the same name)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            if self._flock:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


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
