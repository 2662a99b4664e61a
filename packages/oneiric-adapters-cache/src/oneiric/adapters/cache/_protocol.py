"""The ``Cache`` protocol every provider implements, and ``CacheHealth``.

A protocol, not a base class: a third-party provider satisfies it by shape and
depends on nothing of ours at runtime (the conformance suite proves behaviour).
Values are ``bytes`` because every backend stores bytes; typed values go
through ``SerializingCache`` on top, which passes bytes through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Cache", "CacheHealth"]


@runtime_checkable
class Cache(Protocol):
    """An async byte cache scoped to one namespace.

    - ``get`` returns ``None`` for a miss (an empty value ``b""`` is a hit).
    - ``ttl`` is in seconds; ``None`` keeps the value until evicted; ``ttl <= 0``
      stores nothing and removes the key (the value is already expired).
    - ``incr`` on a missing key starts from 0; on a value that is not a decimal
      integer it raises ``CacheValueError`` and leaves the value alone.
    - ``clear`` removes this namespace's keys only, never other data on the server.
    - Any key string works: providers encode what their backend cannot store.
    - Failures raise ``CacheError`` subclasses only; ``CacheUnavailableError`` when
      the backend cannot be reached.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def exists(self, key: str) -> bool: ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]: ...

    async def set_many(self, mapping: Mapping[str, bytes], *, ttl: float | None = None) -> None: ...

    async def incr(self, key: str, delta: int = 1) -> int: ...

    async def clear(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CacheHealth:
    """What a provider's ``health()`` returns: ``ok`` and a one-line ``detail``.

    Shaped like ``oneiric.lifecycle.HealthReport`` (the lifecycle reads ``ok`` and
    ``detail`` by duck typing) so this package need not depend on the lifecycle.
    ``bool(report)`` is ``ok``.
    """

    ok: bool
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok
