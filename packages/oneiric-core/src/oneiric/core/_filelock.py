"""An exclusive inter-process lock on a sibling lock file, for read-modify-write of state files.

Why: ``oneiric swap`` in eight shells at once must keep eight selections.
Renaming a temporary file makes each write atomic but not each *update*: two
writers that read the same overlay each drop the other's change.  Holding this
lock around read, modify and rename serialises them.

POSIX: ``fcntl.flock`` on ``<name>.lock`` (advisory; every Oneiric writer
takes it; it is released when the descriptor closes, so a crashed writer
never leaves it held; separate opens conflict even inside one process, so
threads are serialised too).  Windows: ``msvcrt.locking`` on the first byte
of the lock file, retried until acquired.  The lock file is never removed:
removing it would let two writers lock two different files.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["exclusive_lock"]


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created 0600, never followed if a symlink)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(lock_path, flags, 0o600)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt
            import time

            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting
                    time.sleep(0.05)
            try:
                yield
            finally:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            yield  # closing the descriptor below releases the lock
    finally:
        os.close(fd)
