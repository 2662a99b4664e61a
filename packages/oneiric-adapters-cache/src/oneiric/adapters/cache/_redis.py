"""The ``redis`` provider: redis-py's asyncio client behind the ``Cache`` protocol.

redis-py is imported when a ``RedisCache`` is built, never at discovery or at
``import oneiric.adapters.cache``: without the ``redis`` extra, building one
fails with a one-line ``MissingExtraError`` naming the extra to install.

Keys live under ``<key_prefix><namespace>:``; ``clear()`` SCANs that prefix and
UNLINKs in batches, so a shared server is never flushed.  Every redis-py or
socket exception is translated here into the cache family's errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from oneiric.core import get_logger
from oneiric.core.helpers import describe_exception

from ._errors import (
    CacheAuthenticationError,
    CacheError,
    CacheUnavailableError,
    CacheValueError,
    MissingExtraError,
)
from ._keys import key_bytes
from ._protocol import CacheHealth
from ._settings import RedisCacheSettings
from ._values import as_bytes, check_delta, check_key, ttl_state, unique_keys

__all__ = ["RedisCache"]

_log = get_logger("oneiric.adapters.cache.redis")
_AUTH_MARKERS = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password")


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.backoff
        import redis.exceptions
        import redis.retry
    except ImportError as exc:
        raise MissingExtraError("redis", "redis", "redis") from exc
    return redis


def _glob_escape(prefix: bytes) -> bytes:
    out = bytearray()
    for byte in prefix:
        if byte in b"*?[]\\":
            out.append(0x5C)
        out.append(byte)
    return bytes(out)


def _location(url: str) -> str:
    """``host:port/db`` of ``url`` without credentials (safe for messages and logs)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    db = parts.path.lstrip("/") or "0"
    return f"{host}:{port}/{db}"


class RedisCache:
    """A ``Cache`` on a redis server; build, then ``await init()`` to connect.

    ``RedisCache(settings)``: a ``RedisCacheSettings``, a mapping of its fields, or
    None for the defaults.  Capabilities: ttl, atomic-incr, distributed, shared.
    """

    provider = "redis"

    def __init__(self, settings: RedisCacheSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None:
            settings = RedisCacheSettings()
        elif not isinstance(settings, RedisCacheSettings):
            settings = RedisCacheSettings.model_validate(settings)
        self._redis = _import_redis()
        self.settings = settings
        self.namespace = settings.namespace
        self.location = _location(settings.url)
        self._prefix = f"{settings.key_prefix}{settings.namespace}:".encode("ascii")
        self._client: Any = None
        self._state = "new"

    def __repr__(self) -> str:
        return f"<RedisCache {self.location} namespace={self.namespace!r} {self._state}>"

    # ------------------------------------------------------------- lifecycle

    async def init(self) -> None:
        """Connect and PING; a server that is down or refuses us fails here, in one line."""
        if self._client is not None:
            return
        r = self._redis
        s = self.settings
        client = r.asyncio.Redis.from_url(
            s.url,
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
            socket_connect_timeout=s.timeouts.connect,
            socket_timeout=s.timeouts.operation,
            max_connections=s.max_connections,
            retry=r.retry.Retry(r.backoff.ExponentialBackoff(cap=0.5, base=0.05), s.retries),
            decode_responses=False,
            health_check_interval=0,
        )
        try:
            await client.ping()
        except Exception as exc:
            await self._close(client)
            raise self._translate(exc, "init") from exc
        self._client = client
        self._state = "open"
        _log.debug("redis cache connected", location=self.location, namespace=self.namespace)

    async def health(self) -> CacheHealth:
        """PING the server; never raises: a failure is an unhealthy report with the reason."""
        if self._client is None:
            return CacheHealth(False, f"redis cache at {self.location} is {self._state}")
        try:
            await self._client.ping()
        except Exception as exc:
            return CacheHealth(False, str(self._translate(exc, "health")))
        return CacheHealth(True, f"redis at {self.location} answers PING")

    async def cleanup(self) -> None:
        """Close the connection pool; safe to call twice or after a failed ``init()``."""
        client, self._client = self._client, None
        self._state = "closed"
        if client is not None:
            await self._close(client)

    @staticmethod
    async def _close(client: Any) -> None:
        try:
            await client.aclose()
        except Exception as exc:  # closing a dead connection may raise; nothing to do
            _log.debug("redis cache close failed", error=describe_exception(exc, join=" "))

    # ------------------------------------------------------------- internals

    def _live(self) -> Any:
        client = self._client
        if client is None:
            hint = "call init() first" if self._state == "new" else "use the provider now bound"
            raise CacheUnavailableError(f"redis cache at {self.location} is {self._state}; {hint}")
        return client

    def _key(self, key: str) -> bytes:
        return self._prefix + key_bytes(check_key(key))

    def _translate(self, exc: BaseException, op: str, key: str | None = None) -> CacheError:
        """The cache family's error for a redis-py/socket exception (one line)."""
        if isinstance(exc, CacheError):
            return exc
        errors = self._redis.exceptions
        text = describe_exception(exc, join=" ")
        where = f"redis cache at {self.location}"
        about = f" for key {key!r}" if key is not None else ""
        if isinstance(
            exc, (errors.AuthenticationError, errors.AuthenticationWrongNumberOfArgsError)
        ) or (isinstance(exc, errors.ResponseError) and any(m in str(exc) for m in _AUTH_MARKERS)):
            return CacheAuthenticationError(
                f"{where} refused the credentials during {op}: {text}; "
                "check username/password in the settings or the URL"
            )
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError, OSError, TimeoutError)):
            return CacheUnavailableError(
                f"{where} is unavailable during {op}{about}: {text}; "
                "check that the server is running and reachable"
            )
        if isinstance(exc, errors.ResponseError) and "not an integer" in str(exc):
            return CacheValueError(
                f"cannot {op} cache key {key!r}: its value is not a decimal integer "
                f"(redis: {text}); set it to ASCII digits or delete it first"
            )
        return CacheError(f"{where} failed during {op}{about}: {text}")

    # ------------------------------------------------------------- Cache

    async def get(self, key: str) -> bytes | None:
        k = self._key(key)
        try:
            value: bytes | None = await self._live().get(k)
        except Exception as exc:
            raise self._translate(exc, "get", key) from exc
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        k = self._key(key)
        data = as_bytes(value)
        state = ttl_state(ttl)
        try:
            client = self._live()
            if state == 0.0:
                await client.delete(k)
            elif state is None:
                await client.set(k, data)
            else:
                await client.set(k, data, px=max(1, math.ceil(state * 1000)))
        except Exception as exc:
            raise self._translate(exc, "set", key) from exc

    async def delete(self, key: str) -> bool:
        k = self._key(key)
        try:
            removed = await self._live().delete(k)
        except Exception as exc:
            raise self._translate(exc, "delete", key) from exc
        return bool(removed)

    async def exists(self, key: str) -> bool:
        k = self._key(key)
        try:
            count = await self._live().exists(k)
        except Exception as exc:
            raise self._translate(exc, "exists", key) from exc
        return bool(count)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = unique_keys(keys)
        if not wanted:
            return {}
        try:
            values = await self._live().mget([self._prefix + key_bytes(k) for k in wanted])
        except Exception as exc:
            raise self._translate(exc, "get_many") from exc
        return {k: v for k, v in zip(wanted, values, strict=True) if v is not None}

    async def set_many(self, mapping: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        state = ttl_state(ttl)
        items = [(self._key(k), as_bytes(v)) for k, v in mapping.items()]
        if not items:
            return
        try:
            client = self._live()
            if state == 0.0:
                await client.delete(*[k for k, _ in items])
                return
            px = None if state is None else max(1, math.ceil(state * 1000))
            async with client.pipeline(transaction=False) as pipe:
                for k, v in items:
                    pipe.set(k, v, px=px)
                await pipe.execute()
        except Exception as exc:
            raise self._translate(exc, "set_many") from exc

    async def incr(self, key: str, delta: int = 1) -> int:
        k = self._key(key)
        check_delta(delta)
        try:
            number = await self._live().incrby(k, delta)
        except Exception as exc:
            raise self._translate(exc, "incr", key) from exc
        return int(number)

    async def clear(self) -> None:
        """Delete this namespace's keys: SCAN the prefix, UNLINK each batch; never FLUSHDB."""
        pattern = _glob_escape(self._prefix) + b"*"
        count = self.settings.scan_count
        removed = 0
        try:
            client = self._live()
            cursor = 0
            while True:
                cursor, batch = await client.scan(cursor, match=pattern, count=count)
                if batch:
                    removed += await client.unlink(*batch)
                if cursor == 0:
                    break
        except Exception as exc:
            raise self._translate(exc, "clear") from exc
        _log.debug("redis cache cleared", namespace=self.namespace, removed=removed)
