"""The ``memory`` provider: an in-process LRU cache with TTLs and a bounded size.

For tests, single-process applications and as the always-available default.
Every entry lives in one ``OrderedDict`` (most recently used last); expired
entries are dropped when read and the least recently used ones when the cache is
full.  The clock is injectable so TTL behaviour is tested without sleeping.
Operations never await anything, so they are atomic on an event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import CacheUnavailableError
from ._protocol import CacheHealth
from ._settings import MemoryCacheSettings
from ._values import as_bytes, check_delta, check_key, parse_int, ttl_state, unique_keys

__all__ = ["MemoryCache"]

_Entry = tuple[bytes, float | None]  # (value, expires_at on the injected clock, or None)


class MemoryCache:
    """Bounded LRU + TTL cache held in this process; instances share nothing.

    ``MemoryCache(settings, clock=...)``: ``settings`` is a ``MemoryCacheSettings``
    (or a mapping of its fields, or None for the defaults); ``clock`` returns
    seconds and defaults to ``time.monotonic``.
    """

    provider = "memory"

    def __init__(
        self,
        settings: MemoryCacheSettings | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings is None:
            settings = MemoryCacheSettings()
        elif not isinstance(settings, MemoryCacheSettings):
            settings = MemoryCacheSettings.model_validate(settings)
        self.settings = settings
        self.namespace = settings.namespace
        self._max = settings.max_entries
        self._clock = clock
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        self._closed = False
        self.evictions = 0

    def __repr__(self) -> str:
        return f"<MemoryCache namespace={self.namespace!r} entries={len(self._data)}>"

    # ------------------------------------------------------------- lifecycle

    async def init(self) -> None:
        """Nothing to connect; (re)opens a cache that was cleaned up."""
        self._closed = False

    async def health(self) -> CacheHealth:
        if self._closed:
            return CacheHealth(False, "memory cache was cleaned up")
        return CacheHealth(True, f"{len(self._data)}/{self._max} entries")

    async def cleanup(self) -> None:
        """Drop every entry; later operations raise ``CacheUnavailableError``."""
        self._closed = True
        self._data.clear()

    # ------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise CacheUnavailableError(
                f"memory cache {self.namespace!r} was cleaned up; use the provider now bound"
            )

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def _store(self, key: str, value: bytes, ttl: float | None) -> None:
        if ttl == 0.0:
            self._data.pop(key, None)
            return
        expires = None if ttl is None else self._clock() + ttl
        self._data[key] = (value, expires)
        self._data.move_to_end(key)
        if len(self._data) > self._max:
            self._evict()

    def _evict(self) -> None:
        """Drop expired entries first (cheap scan from the LRU end), then the LRU ones."""
        now = self._clock()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and now >= exp]:
            del self._data[key]
        while len(self._data) > self._max:
            self._data.popitem(last=False)
            self.evictions += 1

    # ------------------------------------------------------------- Cache

    async def get(self, key: str) -> bytes | None:
        self._check_open()
        return self._live(check_key(key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._check_open()
        self._store(check_key(key), as_bytes(value), ttl_state(ttl))

    async def delete(self, key: str) -> bool:
        self._check_open()
        present = self._live(check_key(key)) is not None
        self._data.pop(key, None)
        return present

    async def exists(self, key: str) -> bool:
        self._check_open()
        return self._live(check_key(key)) is not None

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        self._check_open()
        found: dict[str, bytes] = {}
        for key in unique_keys(keys):
            value = self._live(key)
            if value is not None:
                found[key] = value
        return found

    async def set_many(self, mapping: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        self._check_open()
        state = ttl_state(ttl)
        items = [(check_key(k), as_bytes(v)) for k, v in mapping.items()]
        for key, value in items:
            self._store(key, value, state)

    async def incr(self, key: str, delta: int = 1) -> int:
        self._check_open()
        check_key(key)
        check_delta(delta)
        current = self._live(key)
        number = (0 if current is None else parse_int(current, key)) + delta
        entry = self._data.get(key)
        expires = entry[1] if entry is not None else None
        self._data[key] = (str(number).encode("ascii"), expires)
        self._data.move_to_end(key)
        if len(self._data) > self._max:
            self._evict()
        return number

    async def clear(self) -> None:
        self._check_open()
        self._data.clear()
