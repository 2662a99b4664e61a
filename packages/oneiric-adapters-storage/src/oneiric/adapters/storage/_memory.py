"""``memory``: a process-local store for tests and single-process apps.

Why it copies bytes in and out: callers may mutate a ``bytearray`` they passed
or received; the stored object must not change behind their back.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from ._errors import ObjectNotFoundError, PreconditionFailedError
from ._paths import validate_path, validate_prefix
from ._protocol import ObjectInfo
from ._ranges import check_range
from ._settings import MemorySettings

__all__ = ["MemoryStorage", "create"]


class MemoryStorage:
    """Objects in a dict; not durable, not shared between processes."""

    provider = "memory"

    def __init__(
        self,
        settings: MemorySettings | None = None,
        *,
        objects: dict[str, tuple[bytes, ObjectInfo]] | None = None,
    ) -> None:
        """``objects`` lets several instances share one namespace (tests, swaps)."""
        self.settings = settings or MemorySettings()
        self._objects = {} if objects is None else objects

    async def init(self) -> None:
        """Nothing to connect to."""

    async def health(self) -> bool:
        return True

    async def cleanup(self) -> None:
        """Nothing to release; the objects go with the last reference to them."""

    async def put(
        self, path: str, data: bytes, *, create_only: bool = False, content_type: str | None = None
    ) -> ObjectInfo:
        validate_path(path)
        if create_only and path in self._objects:
            raise PreconditionFailedError(f"memory storage: {path!r} already exists (create_only)")
        blob = bytes(data)
        info = ObjectInfo(
            path=path,
            size=len(blob),
            etag=hashlib.blake2b(blob, digest_size=16).hexdigest(),
            modified=datetime.now(UTC),
        )
        self._objects[path] = (blob, info)
        return info

    def _entry(self, path: str) -> tuple[bytes, ObjectInfo]:
        validate_path(path)
        try:
            return self._objects[path]
        except KeyError:
            raise ObjectNotFoundError(f"memory storage: {path!r} not found") from None

    async def get(self, path: str) -> bytes:
        return self._entry(path)[0]

    async def get_range(self, path: str, start: int, end: int) -> bytes:
        check_range(start, end)
        return self._entry(path)[0][start:end]

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        blob = self._entry(path)[0]
        size = self.settings.chunk_size
        for offset in range(0, len(blob), size):
            yield blob[offset : offset + size]

    async def delete(self, path: str) -> None:
        validate_path(path)
        self._objects.pop(path, None)

    async def exists(self, path: str) -> bool:
        validate_path(path)
        return path in self._objects

    async def head(self, path: str) -> ObjectInfo:
        return self._entry(path)[1]

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        for path in sorted(self._objects):
            if path.startswith(prefix) and path in self._objects:
                yield self._objects[path][1]


def create(settings: MemorySettings | None = None) -> MemoryStorage:
    """Factory named by the ``memory`` candidate."""
    return MemoryStorage(settings)
