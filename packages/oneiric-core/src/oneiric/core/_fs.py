"""Atomic, durable file writes: the one home for "write a whole file or nothing".

Readers of Oneiric's files run in other processes (the CLI reads status
snapshots, applications read the overlay, workers share remote state), so a
write must never be seen half done, must survive a power cut once it returned,
and must never follow a symlink planted in a shared directory.  The copies
this replaced differed: one did not fsync, one used a fixed temp name two
writers could share.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    The data goes to a fresh temp file next to ``path`` (created ``O_EXCL``,
    never through a symlink, permissions ``mode``), is fsynced, renamed over
    ``path`` and the directory fsynced, so after a return the new content
    survives a crash and a reader sees the old file or the new one, never a
    mix.  ``durable=False`` skips both fsyncs, for files that are rewritten
    often and only observed (a status snapshot); atomicity is kept.  On failure
    the temp file is removed and the ``OSError`` propagates: callers turn it
    into their own error type.
    """
    directory = path.parent
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    tmp = directory / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if os.name == "posix":
            os.chmod(tmp, mode)  # the umask narrowed the mode os.open applied
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (POSIX); a no-op where a directory cannot be opened (Windows)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
