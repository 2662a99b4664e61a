"""An optional serializer layer over any ``Cache``: typed values in, bytes stored.

Why a wrapper and not a provider option: the byte protocol stays the one thing
providers implement and the conformance suite checks; serialization is the
application's choice and works the same on every provider.

``bytes`` pass through unchanged, so counters (``incr``) and values written by
other byte-level clients stay readable.  Other values are stored as
``b"\\x00oneiric:<serializer name>\\x00" + serializer.dumps(value)``; the rare raw
value that itself starts with ``b"\\x00oneiric:"`` is stored behind a ``raw`` tag
so that reading it back is never ambiguous.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ._protocol import Cache, CacheHealth
from ._values import ttl_state

__all__ = ["JsonSerializer", "Serializer", "SerializingCache"]

_TAG = b"\x00oneiric:"
_RAW = _TAG + b"raw\x00"


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; ``name`` tags what it wrote."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """Compact UTF-8 JSON; safe to load from a shared cache (unlike pickle)."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class SerializingCache:
    """Wrap ``cache`` so that ``get``/``set`` take any value the serializer handles.

    ``incr``, ``delete``, ``exists`` and ``clear`` pass through; ``init``,
    ``health`` and ``cleanup`` are forwarded so the wrapper can itself be a
    lifecycle component.
    """

    def __init__(self, cache: Cache, serializer: Serializer | None = None) -> None:
        self.cache = cache
        self.serializer: Serializer = serializer if serializer is not None else JsonSerializer()
        self._tag = _TAG + self.serializer.name.encode("ascii") + b"\x00"

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            return _RAW + raw if raw.startswith(_TAG) else raw
        return self._tag + self.serializer.dumps(value)

    def decode(self, data: bytes) -> Any:
        if not data.startswith(_TAG):
            return data
        if data.startswith(self._tag):
            return self.serializer.loads(data[len(self._tag) :])
        if data.startswith(_RAW):
            return data[len(_RAW) :]
        return data  # written by another serializer: hand back the bytes untouched

    async def get(self, key: str) -> Any:
        data = await self.cache.get(key)
        return None if data is None else self.decode(data)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        ttl_state(ttl)
        await self.cache.set(key, self.encode(value), ttl=ttl)

    async def delete(self, key: str) -> bool:
        return await self.cache.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.cache.exists(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found = await self.cache.get_many(keys)
        return {k: self.decode(v) for k, v in found.items()}

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: float | None = None) -> None:
        await self.cache.set_many({k: self.encode(v) for k, v in mapping.items()}, ttl=ttl)

    async def incr(self, key: str, delta: int = 1) -> int:
        return await self.cache.incr(key, delta)

    async def clear(self) -> None:
        await self.cache.clear()

    async def init(self) -> None:
        init = getattr(self.cache, "init", None)
        if init is not None:
            await init()

    async def health(self) -> Any:
        health = getattr(self.cache, "health", None)
        return CacheHealth(True, "no health check") if health is None else await health()

    async def cleanup(self) -> None:
        cleanup = getattr(self.cache, "cleanup", None)
        if cleanup is not None:
            await cleanup()
