"""The ``memcached`` provider: emcache behind the ``Cache`` protocol.

emcache is imported when a ``MemcachedCache`` is built, never at discovery:
without the ``memcached`` extra, building one fails with a one-line
``MissingExtraError`` naming the extra.

Namespaces without key listing: memcached cannot enumerate keys, so each
namespace has a generation counter stored under ``<prefix><namespace>:gen`` and
every data key lives under ``<prefix><namespace>:<generation>:``.  ``clear()``
increments the counter; the old generation's keys become unreachable and age
out through memcached's LRU.  The counter starts at a random 52-bit value, so a
counter lost to eviction never resurrects an old generation's keys.

Reads fetch the counter and the data key in one ``get`` round trip and retry
once with the new generation if another process cleared in between: a read
never returns a value from before a ``clear()``.  Writes re-read the counter
first (two round trips), so a process never keeps writing into a dead
generation after another process cleared.

Keys are percent-escaped, or hashed when too long (see ``_keys``).  Every
emcache/socket exception is translated into the cache family's errors here.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from oneiric.core import get_logger
from oneiric.core.helpers import describe_exception

from ._errors import (
    CacheError,
    CacheUnavailableError,
    CacheValueError,
    MissingExtraError,
)
from ._keys import memcached_key
from ._protocol import CacheHealth
from ._settings import MemcachedCacheSettings
from ._values import as_bytes, check_delta, check_key, ttl_state, unique_keys

__all__ = ["MemcachedCache"]

_log = get_logger("oneiric.adapters.cache.memcached")
#: memcached reads an exptime above 30 days as an absolute unix time.
_RELATIVE_LIMIT = 30 * 24 * 3600


def _import_emcache() -> Any:
    try:
        import emcache
    except ImportError as exc:
        raise MissingExtraError("memcached", "emcache", "memcached") from exc
    return emcache


def _exptime(state: float) -> int:
    """memcached's exptime for a positive ttl: whole seconds, rounded up, absolute past 30 days."""
    if state > _RELATIVE_LIMIT:
        return int(time.time() + state) + 1
    return max(1, math.ceil(state))


class MemcachedCache:
    """A ``Cache`` on a memcached server; build, then ``await init()`` to connect.

    ``MemcachedCache(settings)``: a ``MemcachedCacheSettings``, a mapping of its
    fields, or None for the defaults.  Capabilities: ttl, atomic-incr, distributed, lru.
    """

    provider = "memcached"

    def __init__(self, settings: MemcachedCacheSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None:
            settings = MemcachedCacheSettings()
        elif not isinstance(settings, MemcachedCacheSettings):
            settings = MemcachedCacheSettings.model_validate(settings)
        self._emcache = _import_emcache()
        self.settings = settings
        self.namespace = settings.namespace
        self.location = f"{settings.host}:{settings.port}"
        self._base = f"{settings.key_prefix}{settings.namespace}:".encode("ascii")
        self._gen_key = self._base + b"gen"
        self._gen = 0
        self._prefix = self._base + b"0:"
        self._client: Any = None
        self._state = "new"

    def __repr__(self) -> str:
        return f"<MemcachedCache {self.location} namespace={self.namespace!r} {self._state}>"

    # ------------------------------------------------------------- lifecycle

    async def init(self) -> None:
        """Connect, check the server answers, read (or create) the namespace generation."""
        if self._client is not None:
            return
        s = self.settings
        await self._probe()
        emcache = self._emcache
        try:
            client = await emcache.create_client(
                [emcache.MemcachedHostAddress(s.host, s.port)],
                timeout=s.timeouts.operation,
                connection_timeout=s.timeouts.connect,
                max_connections=s.max_connections,
                min_connections=1,
            )
        except Exception as exc:
            raise self._translate(exc, "init") from exc
        self._client = client
        self._state = "open"
        try:
            await self._refresh_generation()
        except BaseException:
            await self.cleanup()
            self._state = "new"
            raise
        _log.debug("memcached cache connected", location=self.location, namespace=self.namespace)

    async def _probe(self) -> None:
        """Open and close one TCP connection: "refused" is then reported as such, not a timeout."""
        s = self.settings
        try:
            async with asyncio.timeout(s.timeouts.connect):
                _, writer = await asyncio.open_connection(s.host, s.port)
        except (OSError, TimeoutError) as exc:
            raise self._translate(exc, "init") from exc
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass

    async def health(self) -> CacheHealth:
        """Ask the server its version; never raises: a failure is an unhealthy report."""
        if self._client is None:
            return CacheHealth(False, f"memcached cache at {self.location} is {self._state}")
        s = self.settings
        try:
            version = await self._client.version(self._emcache.MemcachedHostAddress(s.host, s.port))
        except Exception as exc:
            return CacheHealth(False, str(self._translate(exc, "health")))
        return CacheHealth(True, f"memcached {version} at {self.location} answers")

    async def cleanup(self) -> None:
        """Close the connections; safe to call twice or after a failed ``init()``."""
        client, self._client = self._client, None
        self._state = "closed"
        if client is not None:
            try:
                await client.close()
            except Exception as exc:  # closing dead connections may raise; nothing to do
                _log.debug("memcached cache close failed", error=describe_exception(exc, join=" "))

    # ------------------------------------------------------------- internals

    def _live(self) -> Any:
        client = self._client
        if client is None:
            hint = "call init() first" if self._state == "new" else "use the provider now bound"
            raise CacheUnavailableError(
                f"memcached cache at {self.location} is {self._state}; {hint}"
            )
        return client

    def _translate(self, exc: BaseException, op: str, key: str | None = None) -> CacheError:
        """The cache family's error for an emcache/socket exception (one line)."""
        if isinstance(exc, CacheError):
            return exc
        where = f"memcached cache at {self.location}"
        about = f" for key {key!r}" if key is not None else ""
        text = describe_exception(exc, join=" ")
        if isinstance(exc, TimeoutError):
            return CacheUnavailableError(
                f"{where} did not answer within {self.settings.timeouts.operation:g} s during "
                f"{op}{about}; check that the server is running and reachable"
            )
        if isinstance(exc, (OSError, EOFError)) or type(exc).__name__ == "ClusterNoAvailableNodes":
            return CacheUnavailableError(
                f"{where} is unavailable during {op}{about}: {text}; "
                "check that the server is running and reachable"
            )
        if "non-numeric" in str(exc):
            return CacheValueError(
                f"cannot {op} cache key {key!r}: its value is not a decimal integer "
                "(memcached: non-numeric value); set it to ASCII digits or delete it first"
            )
        if "too large" in str(exc):
            return CacheValueError(
                f"{where} refused the value{about}: object too large for the server's item "
                "size limit (memcached -I); store less or raise the limit"
            )
        return CacheError(f"{where} failed during {op}{about}: {text}")

    def _key(self, key: str) -> bytes:
        return memcached_key(self._prefix, key)

    def _use_generation(self, gen: int) -> None:
        if gen != self._gen:
            self._gen = gen
            self._prefix = self._base + str(gen).encode("ascii") + b":"

    async def _refresh_generation(self) -> int:
        """Read the namespace generation, creating it (random start) if absent or evicted."""
        client = self._live()
        for _ in range(3):
            item = await client.get(self._gen_key)
            if item is not None:
                self._use_generation(int(item.value))
                return self._gen
            seed = secrets.randbits(52) + 1
            try:
                await client.add(self._gen_key, str(seed).encode("ascii"))
            except self._emcache.NotStoredStorageCommandError:
                pass  # another process created it first: read theirs
        raise CacheError(
            f"memcached cache at {self.location} cannot keep the generation counter of "
            f"namespace {self.namespace!r}; the server evicts it at once (memory full?)"
        )

    async def _read(self, keys: list[str]) -> dict[str, bytes]:
        """Values of ``keys`` at the current generation, in one round trip when it is unchanged."""
        client = self._live()
        for _ in range(2):
            encoded = {self._key(k): k for k in keys}
            items = await client.get_many([self._gen_key, *encoded])
            gen_item = items.get(self._gen_key)
            if gen_item is not None and int(gen_item.value) == self._gen:
                return {encoded[raw]: item.value for raw, item in items.items() if raw in encoded}
            await self._refresh_generation()
        # cleared twice while reading: the data read under the newest generation is current
        encoded = {self._key(k): k for k in keys}
        items = await client.get_many(list(encoded))
        return {encoded[raw]: item.value for raw, item in items.items()}

    async def _run(self, op: str, key: str | None, work: Any) -> Any:
        try:
            return await work()
        except Exception as exc:
            raise self._translate(exc, op, key) from exc

    # ------------------------------------------------------------- Cache

    async def get(self, key: str) -> bytes | None:
        check_key(key)

        async def work() -> bytes | None:
            return (await self._read([key])).get(key)

        result: bytes | None = await self._run("get", key, work)
        return result

    async def _store(self, client: Any, key: str, data: bytes, state: float | None) -> None:
        """Write one key as ``ttl_state`` says: delete for 0 (already expired), else set."""
        k = self._key(key)
        if state == 0.0:
            try:
                await client.delete(k)
            except self._emcache.NotFoundCommandError:
                pass
            return
        await client.set(k, data, exptime=0 if state is None else _exptime(state))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        check_key(key)
        data = as_bytes(value)
        state = ttl_state(ttl)

        async def work() -> None:
            client = self._live()
            await self._refresh_generation()
            await self._store(client, key, data, state)

        await self._run("set", key, work)

    async def delete(self, key: str) -> bool:
        check_key(key)

        async def work() -> bool:
            client = self._live()
            await self._refresh_generation()
            try:
                await client.delete(self._key(key))
            except self._emcache.NotFoundCommandError:
                return False
            return True

        result: bool = await self._run("delete", key, work)
        return result

    async def exists(self, key: str) -> bool:
        check_key(key)

        async def work() -> bool:
            return key in await self._read([key])

        result: bool = await self._run("exists", key, work)
        return result

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = unique_keys(keys)
        if not wanted:
            return {}

        async def work() -> dict[str, bytes]:
            found = await self._read(wanted)
            return {k: found[k] for k in wanted if k in found}

        result: dict[str, bytes] = await self._run("get_many", None, work)
        return result

    async def set_many(self, mapping: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        state = ttl_state(ttl)
        items = [(check_key(k), as_bytes(v)) for k, v in mapping.items()]
        if not items:
            return

        async def work() -> None:
            client = self._live()
            await self._refresh_generation()
            for key, data in items:
                await self._store(client, key, data, state)

        await self._run("set_many", None, work)

    async def incr(self, key: str, delta: int = 1) -> int:
        """Atomic on the server; memcached counters are unsigned, so results clamp at 0."""
        check_key(key)
        check_delta(delta)
        emcache = self._emcache

        async def work() -> int:
            client = self._live()
            await self._refresh_generation()
            k = self._key(key)
            for _ in range(3):
                try:
                    if delta >= 0:
                        return int(await client.increment(k, delta))
                    return int(await client.decrement(k, -delta))
                except emcache.NotFoundCommandError:
                    start = max(delta, 0)
                    try:
                        await client.add(k, str(start).encode("ascii"))
                    except emcache.NotStoredStorageCommandError:
                        continue  # created concurrently: increment that one
                    return start
            raise CacheError(
                f"memcached cache at {self.location} could not incr key {key!r}: "
                "it kept disappearing (evicted or deleted concurrently); retry"
            )

        result: int = await self._run("incr", key, work)
        return result

    async def clear(self) -> None:
        """Start a new generation of this namespace; other namespaces are untouched."""
        emcache = self._emcache

        async def work() -> None:
            client = self._live()
            try:
                self._use_generation(int(await client.increment(self._gen_key, 1)))
            except emcache.NotFoundCommandError:
                await self._refresh_generation()  # counter evicted: a fresh random one

        await self._run("clear", None, work)
        _log.debug("memcached cache cleared", namespace=self.namespace, generation=self._gen)
