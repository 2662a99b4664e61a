"""Settings models of the cache providers (validated from ``provider_settings``).

Each provider has one pydantic model; unknown fields are errors (``extra="forbid"``)
so a misspelt ``namspace`` fails at load instead of silently using the default.
Timeouts are one small frozen value (``CacheTimeouts``) rather than loose numbers.
The namespace is what ``clear()`` is limited to; two applications sharing a
server must use different namespaces.  This module imports pydantic only,
never a client library, so it is safe to import at settings-validation time.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "NAMESPACE_PATTERN",
    "CacheTimeouts",
    "MemcachedCacheSettings",
    "MemoryCacheSettings",
    "RedisCacheSettings",
]

#: No ':' (the separator of the key layout, so namespace "a" never matches "a:b"),
#: no glob characters (redis SCAN MATCH), no spaces (memcached keys).
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

Namespace = Annotated[
    str,
    Field(
        pattern=NAMESPACE_PATTERN,
        description="scope of this cache's keys; clear() removes this namespace only",
    ),
]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class CacheTimeouts(BaseModel):
    """Deadlines in seconds: ``connect`` (opening a connection), ``operation`` (one command)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: Seconds = 2.0
    operation: Seconds = 2.0


class MemoryCacheSettings(BaseModel):
    """The in-process LRU cache: bounded by entries, per-instance (not shared)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: Namespace = "default"
    max_entries: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000


class RedisCacheSettings(BaseModel):
    """A redis server reached with redis-py's asyncio client.

    Keys are stored as ``<key_prefix><namespace>:<key>``; ``clear()`` SCANs that
    prefix and deletes in batches, so other data on the server is never touched.
    Credentials may be in the URL or in ``username``/``password`` (which win).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    namespace: Namespace = "default"
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{0,64}$")] = "oneiric:"
    username: str | None = None
    password: SecretStr | None = None
    timeouts: CacheTimeouts = CacheTimeouts()
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 64
    #: Retries of a command after a connection error (redis-py reconnects between tries).
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    #: Keys per SCAN step and per UNLINK batch in ``clear()``.
    scan_count: Annotated[int, Field(ge=10, le=100_000)] = 1000

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url must start with redis://, rediss:// or unix://")
        return value


class MemcachedCacheSettings(BaseModel):
    """A memcached server reached with emcache.

    memcached cannot list keys, so ``clear()`` bumps a per-namespace generation
    counter stored in memcached; keys of older generations become unreachable and
    age out through memcached's own LRU.  Keys that memcached cannot store (over 250
    bytes, spaces, control or non-ASCII characters) are escaped or hashed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 11211
    namespace: Namespace = "default"
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{0,32}$")] = "oneiric:"
    timeouts: CacheTimeouts = CacheTimeouts()
    max_connections: Annotated[int, Field(ge=1, le=1024)] = 8
