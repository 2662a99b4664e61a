"""The ``Storage`` protocol and its value type ``ObjectInfo``.

Semantics every provider keeps (the conformance suite checks them):

* ``get_range(path, start, end)`` returns ``data[start:end]``: ``end`` is
  **exclusive** and clamped to the object's size, like Python slicing, so a
  range past the end returns the bytes that exist (possibly ``b""``).
  ``start < 0`` or ``end < start`` raise ``ValueError``.
* ``delete`` is idempotent: deleting a missing object succeeds silently (S3,
  GCS and Azure disagree on the status code; callers should not care).
* ``list(prefix)`` treats the prefix as a directory (``"a"`` lists ``a/...``
  and never ``ab``), yields every object under it across all server pages, in
  no guaranteed order.
* ``ObjectInfo.etag`` is opaque (quotes stripped) and changes when the content
  does; ``modified`` is timezone-aware UTC, or ``None`` where a ``put``
  response does not carry it (``head`` always has it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._errors import ObjectNotFoundError

__all__ = ["ExistsByHead", "ObjectInfo", "Storage"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ``head``, ``put`` and ``list`` report about one object."""

    path: str
    size: int
    etag: str | None
    modified: datetime | None


@runtime_checkable
class Storage(Protocol):
    """An object store of bytes addressed by relative ``/``-separated paths."""

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        create_only: bool = False,
        content_type: str | None = None,
    ) -> ObjectInfo: ...

    async def get(self, path: str) -> bytes: ...

    async def get_range(self, path: str, start: int, end: int) -> bytes: ...

    def stream(self, path: str) -> AsyncIterator[bytes]: ...

    async def delete(self, path: str) -> None: ...

    async def exists(self, path: str) -> bool: ...

    async def head(self, path: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...


class ExistsByHead:
    """``exists`` defined once as "``head`` finds an object", for providers whose store has no
    cheaper test (S3, Azure, GCS, a directory tree).

    Why one definition: "exists" must agree with ``head`` and ``get`` - a
    directory, a symlink or an unreadable name that ``head`` reports missing
    must not exist for ``exists`` either - and any other failure (server down,
    bad path) must propagate, not read as ``False``.
    """

    async def head(self, path: str) -> ObjectInfo:
        raise NotImplementedError  # pragma: no cover - every provider defines head

    async def exists(self, path: str) -> bool:
        try:
            await self.head(path)
        except ObjectNotFoundError:
            return False
        return True
