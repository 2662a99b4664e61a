"""Entry point ``oneiric: cache``: registers the three providers of ``adapter/cache``.

Only strings are registered (factories and settings models as ``"module:attr"``),
so discovery imports neither redis-py nor emcache, nor even pydantic; a provider
whose extra is missing is still listed and explained, and fails in one line
only when someone activates it.
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

_HERE = "oneiric.adapters.cache"

#: provider -> (factory, settings model, capabilities, description)
PROVIDERS: dict[str, tuple[str, str, frozenset[str], str]] = {
    "memory": (
        f"{_HERE}._memory:MemoryCache",
        f"{_HERE}._settings:MemoryCacheSettings",
        frozenset({"ttl", "lru", "atomic-incr", "bounded", "local"}),
        "in-process LRU cache with TTLs and a bounded number of entries",
    ),
    "redis": (
        f"{_HERE}._redis:RedisCache",
        f"{_HERE}._settings:RedisCacheSettings",
        frozenset({"ttl", "atomic-incr", "distributed", "shared", "persistent-keys", "scan-clear"}),
        'redis via redis-py asyncio (extra: pip install "oneiric-adapters-cache[redis]")',
    ),
    "memcached": (
        f"{_HERE}._memcached:MemcachedCache",
        f"{_HERE}._settings:MemcachedCacheSettings",
        frozenset({"ttl", "atomic-incr", "distributed", "shared", "lru"}),
        'memcached via emcache (extra: pip install "oneiric-adapters-cache[memcached]")',
    ),
}


@hookimpl
def oneiric_register(registry: Any) -> None:
    for provider, (factory, settings_model, capabilities, description) in PROVIDERS.items():
        registry.register(
            domain="adapter",
            key="cache",
            provider=provider,
            factory=factory,
            settings_model=settings_model,
            capabilities=capabilities,
            description=description,
        )
