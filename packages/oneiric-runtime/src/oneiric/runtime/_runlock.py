"""One executor per run across processes: a ``flock`` on a per-run lock file.

Why flock: the kernel releases it when its holder dies - ``kill -9``
included - so a run whose executor was killed is resumable at once from any
process, with no lease to expire.  Separate opens of one file conflict, so two
stores (or two calls) in one process exclude each other too.

Why removing lock files is safe here: removing a lock file another process is
about to lock is the classic race (it locks the removed file while a third
locks a new one at the same path: two holders).  So the remover holds the lock
while unlinking, and whoever takes a lock checks afterwards that the file it
locked is still the one at the path (same device and inode), starting over if
not.  A file left by a killed holder is reused by the next one (and removed on
its release) or removed by ``discard`` when the run is pruned.  The file holds
its holder's pid, for the ``RunLocked`` message.

POSIX only; on a network file system the lock is only as exclusive as its flock.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from oneiric.core import state_dir
from oneiric.core.helpers import one_line

from ._errors import RunLocked
from ._sqlitefile import ErrorFactory

__all__ = ["RunLockFiles"]

#: How long ``hold`` retries a lock found held before ``RunLocked``: an
#: ``alive`` probe elsewhere holds it for microseconds.
PROBE_GRACE = 0.02


class RunLockFiles:
    """Executor locks of the runs of one database, as files in ``directory`` (private, 0700).

    A run's file name is a hash of ``namespace`` (the database's file name)
    and the run id: any run id is a safe file name, sibling databases do not
    share locks, and two processes reaching one database by different paths
    (a bind mount) still do.
    """

    def __init__(self, directory: Path, namespace: str, *, error: ErrorFactory) -> None:
        self.directory = directory
        self._namespace = namespace
        self._error = error

    def path(self, run_id: str) -> Path:
        key = f"{self._namespace}\0{run_id}".encode("utf-8", "surrogatepass")
        return self.directory / f"{hashlib.sha256(key).hexdigest()[:40]}.lock"

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        """Hold ``run_id``'s lock for the context; ``RunLocked`` if another holder has it."""
        if sys.platform == "win32":  # pragma: no cover - POSIX flock only
            raise self._error("the SQLite checkpoint store's executor lock needs POSIX flock; "
                              "run workflows on Linux or macOS")
        path = self.path(run_id)
        state_dir(self.directory)  # created 0700, refused if others can write it
        deadline = time.monotonic() + PROBE_GRACE
        while (fd := self._try_lock(path, create=True)) is None:
            if time.monotonic() >= deadline:
                raise RunLocked(f"run {run_id!r} is being executed by {self._holder(path)}; "
                                "wait for it to finish, or cancel it")
            time.sleep(0.002)
        try:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass  # the pid only names the holder in RunLocked messages
            yield
        finally:
            self._release(path, fd)

    def alive(self, run_id: str) -> bool:
        """True while some holder has ``run_id``'s lock; takes nothing, creates nothing."""
        fd = self._try_lock(self.path(run_id), create=False)
        if fd is None:
            return True
        if fd >= 0:
            os.close(fd)
        return False

    def discard(self, run_id: str) -> None:
        """Remove ``run_id``'s lock file unless someone holds it (a pruned run's)."""
        path = self.path(run_id)
        fd = self._try_lock(path, create=False)
        if fd is not None and fd >= 0:
            self._release(path, fd)

    def _try_lock(self, path: Path, *, create: bool) -> int | None:
        """A descriptor holding the lock on the file now at ``path``; None if held by another.

        Starts over when the file it locked was removed or replaced meanwhile:
        a lock on an unlinked file excludes nobody.  Without ``create`` a
        missing file is "not held" (-1).
        """
        import fcntl

        flags = (os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                 | (os.O_CREAT if create else 0))
        while True:
            try:
                fd = os.open(path, flags, 0o600)
            except FileNotFoundError:
                if not create:
                    return -1
                raise self._error(f"cannot create executor lock {path}: its directory is "
                                  "missing; check the lock directory") from None
            except OSError as exc:
                raise self._error(f"cannot open executor lock {path}: {one_line(exc)}; check "
                                  "that the lock directory is writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return None
                raise self._error(f"cannot lock {path}: {one_line(exc)}") from None
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev,
                                                                            mine.st_ino):
                return fd
            os.close(fd)  # removed or replaced while we waited: lock the current one

    @staticmethod
    def _release(path: Path, fd: int) -> None:
        """Remove the lock file *while holding it*, then release."""
        try:
            os.unlink(path)
        except OSError:
            pass  # already gone, or a read-only directory: the file is reused later
        finally:
            os.close(fd)

    @staticmethod
    def _holder(path: Path) -> str:
        try:
            with open(path, "rb") as f:
                pid = int(f.read(32).strip() or b"0")
        except (OSError, ValueError):
            pid = 0
        if pid == os.getpid():
            return f"another executor in this process (pid {pid})"
        return f"another process (pid {pid})" if pid else "another process"
