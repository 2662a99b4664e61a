"""An exclusive inter-process lock on a lock file, for read-modify-write of shared state.

Why: ``oneiric swap`` in eight shells at once must keep eight selections, and
two web workers syncing one remote cache must not stage over each other.
Renaming a temporary file makes each write atomic but not each *update*: two
writers that read the same file each drop the other's change.  Holding this
lock around read, modify and rename serialises them.

POSIX: ``fcntl.flock`` (advisory; every Oneiric writer takes it; it is released
when the descriptor closes, so a crashed writer never leaves it held; separate
opens conflict even inside one process, so threads are serialised too).
Windows: ``msvcrt.locking`` on the first byte of the lock file.  The lock file
is opened without following a symlink and never removed: removing it would let
two writers lock two different files.

Two ways to wait: :func:`exclusive_lock` blocks the thread (short critical
sections such as an overlay write); :func:`async_exclusive_lock` polls without
blocking the event loop and gives up after a timeout (a sync that another
process may hold for long).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["async_exclusive_lock", "exclusive_lock"]

_POLL = 0.05


def _open(lock_path: Path) -> int:
    """The lock file's descriptor (created 0600; ``OSError`` if it is a symlink or unopenable)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(lock_path, flags, 0o600)


def _try_lock(fd: int) -> bool:
    """Take the lock if it is free; ``False`` if another holder has it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _close(fd: int) -> None:
    """Release (closing the descriptor releases a POSIX flock) and close."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    os.close(fd)


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path``, blocking the thread until it is free.

    With ``timeout`` (seconds), give up with ``TimeoutError`` after that long.
    ``OSError`` when the lock file cannot be opened (e.g. a symlink was planted).
    """
    fd = _open(lock_path)
    try:
        if timeout is None and sys.platform != "win32":
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not _try_lock(fd):
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"timed out after {timeout:g} s waiting for {lock_path}")
                time.sleep(_POLL)
        yield
    finally:
        _close(fd)


@contextlib.asynccontextmanager
async def async_exclusive_lock(lock_path: Path, *, timeout: float) -> AsyncIterator[None]:
    """Hold an exclusive lock on ``lock_path``, polling without blocking the event loop.

    Gives up with ``TimeoutError`` after ``timeout`` seconds; ``OSError`` when
    the lock file cannot be opened.
    """
    import asyncio  # here, not at the top: a blocking caller need not import asyncio

    fd = _open(lock_path)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {lock_path}")
            await asyncio.sleep(_POLL)
        yield
    finally:
        _close(fd)
