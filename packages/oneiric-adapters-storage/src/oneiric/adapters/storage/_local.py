"""``local``: a directory on this machine's file system, owned by the provider.

Why the care:

* **Atomic, durable writes** — data goes to a hidden temp file in the target
  directory, is fsynced, then renamed over the target (readers see the old or
  the new object, never half of one) and the directory is fsynced.
* **Atomic create_only** — the temp file is hard-linked to the target name;
  ``link`` fails if the name exists, so two racing writers cannot both win.
* **No escapes** — besides the shared path validator, every resolved path must
  stay inside ``root`` after following symlinks: a symlink planted inside the
  root that points outside is refused, not followed.

Blocking file-system calls run in worker threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from oneiric.core import get_logger

from ._errors import (
    InvalidPathError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)
from ._paths import validate_path, validate_prefix
from ._protocol import ExistsByHead, ObjectInfo
from ._ranges import check_range
from ._settings import LocalSettings

__all__ = ["LocalStorage", "create"]

_log = get_logger("oneiric.adapters.storage.local")
#: Temp files carry this prefix; ``list`` never reports them.
TEMP_PREFIX = ".oneiric-tmp-"


def _info(path: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        path=path,
        size=st.st_size,
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}",
        modified=datetime.fromtimestamp(st.st_mtime, UTC),
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(ExistsByHead):
    """Objects as files under ``settings.root``."""

    provider = "local"

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.root = Path(settings.root).absolute()
        self._real_root = self.root

    # ---------------------------------------------------------- lifecycle

    async def init(self) -> None:
        """Create the root if needed and pin its real path (symlinks resolved)."""
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailableError(
                f"local storage: cannot create root {str(self.root)!r}: {exc.strerror}"
            ) from None
        self._real_root = self.root.resolve()
        _log.debug("local storage ready", root=str(self._real_root))

    async def health(self) -> bool:
        root = self._real_root
        return await asyncio.to_thread(
            lambda: root.is_dir() and os.access(root, os.W_OK | os.X_OK)
        )

    async def cleanup(self) -> None:
        """Nothing to release: no handles are kept open between calls."""

    # ------------------------------------------------------------ helpers

    def _target(self, path: str) -> Path:
        """The file for ``path``; refuses anything that resolves outside the root."""
        validate_path(path)
        target = self._real_root.joinpath(*path.split("/"))
        real = target.resolve()
        if real != target and not real.is_relative_to(self._real_root):
            raise InvalidPathError(
                f"local storage: {path!r} resolves outside the root (symlink escape); refused"
            )
        if real != target:
            # A symlink inside the root pointing elsewhere inside it would alias
            # another object; objects are plain files, so refuse it too.
            raise InvalidPathError(f"local storage: {path!r} goes through a symlink; refused")
        return target

    def _error(self, exc: OSError, path: str) -> StorageError:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return ObjectNotFoundError(f"local storage: {path!r} not found")
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT):
            return StorageUnavailableError(f"local storage: {path!r}: {exc.strerror}")
        return StorageError(f"local storage: {path!r}: {exc.strerror or exc}")

    # ---------------------------------------------------------- operations

    def _put_sync(self, path: str, data: bytes, create_only: bool) -> ObjectInfo:
        target = self._target(path)
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(
                f"local storage: cannot put {path!r}: a parent path is an existing object"
            ) from None
        if not parent.resolve().is_relative_to(self._real_root):
            raise InvalidPathError(f"local storage: {path!r} resolves outside the root; refused")
        temp = parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.settings.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if create_only:
                try:
                    os.link(temp, target, follow_symlinks=False)
                except FileExistsError:
                    raise PreconditionFailedError(
                        f"local storage: {path!r} already exists (create_only)"
                    ) from None
                st = os.stat(target, follow_symlinks=False)
            else:
                if target.is_dir() and not target.is_symlink():
                    raise StorageError(f"local storage: {path!r} is a directory of objects")
                os.replace(temp, target)
                st = os.stat(target, follow_symlinks=False)
            if self.settings.fsync:
                _fsync_dir(parent)
            return _info(path, st)
        finally:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass

    async def put(
        self, path: str, data: bytes, *, create_only: bool = False, content_type: str | None = None
    ) -> ObjectInfo:
        """Write atomically; ``content_type`` is not stored by this provider."""
        try:
            return await asyncio.to_thread(self._put_sync, path, bytes(data), create_only)
        except OSError as exc:
            raise self._error(exc, path) from None

    def _read_sync(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        target = self._target(path)
        with open(target, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
            if start:
                fh.seek(start)
            return fh.read() if end is None else fh.read(max(0, end - start))

    async def get(self, path: str) -> bytes:
        try:
            return await asyncio.to_thread(self._read_sync, path)
        except OSError as exc:
            raise self._error(exc, path) from None

    async def get_range(self, path: str, start: int, end: int) -> bytes:
        check_range(start, end)
        try:
            return await asyncio.to_thread(self._read_sync, path, start, end)
        except OSError as exc:
            raise self._error(exc, path) from None

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        try:
            target = self._target(path)
            fh = await asyncio.to_thread(
                open, target, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)
            )
        except OSError as exc:
            raise self._error(exc, path) from None
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(fh.read, self.settings.chunk_size)
                except OSError as exc:
                    raise self._error(exc, path) from None
                if not chunk:
                    return
                yield chunk
        finally:
            fh.close()

    def _delete_sync(self, path: str) -> None:
        target = self._target(path)
        try:
            os.unlink(target)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            return  # a "directory" is not an object; nothing to delete
        # Remove now-empty parent directories so they do not accumulate.
        parent = target.parent
        while parent != self._real_root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def delete(self, path: str) -> None:
        """Idempotent: a missing object is not an error."""
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            raise self._error(exc, path) from None

    def _head_sync(self, path: str) -> ObjectInfo:
        st = os.stat(self._target(path), follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a file")
        return _info(path, st)

    async def head(self, path: str) -> ObjectInfo:
        try:
            return await asyncio.to_thread(self._head_sync, path)
        except OSError as exc:
            raise self._error(exc, path) from None

    def _scan_sync(self, prefix: str) -> list[ObjectInfo]:
        start = self._real_root.joinpath(*prefix.rstrip("/").split("/")) if prefix else None
        base = start or self._real_root
        if start is not None and (start.is_symlink() or not start.is_dir()):
            return []
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self._real_root)
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                full = os.path.join(dirpath, name)
                st = os.stat(full, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue  # symlinks and specials are not objects
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                found.append(_info(rel.replace(os.sep, "/"), st))
        return found

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        try:
            infos = await asyncio.to_thread(self._scan_sync, prefix)
        except OSError as exc:
            raise self._error(exc, prefix) from None
        for info in infos:
            yield info


def create(settings: LocalSettings) -> LocalStorage:
    """Factory named by the ``local`` candidate."""
    return LocalStorage(settings)
