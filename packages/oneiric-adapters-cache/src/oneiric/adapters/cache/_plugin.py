"""Entry point ``oneiric: cache``: registers the three providers of ``adapter/cache``.

Only strings are registered (factories and settings models as ``"module:attr"``),
so discovery imports neither redis-py nor emcache, nor even pydantic; a provider
whose extra is missing is still listed, and core's built-in ``requires`` veto
keeps it from winning (explain: ``needs redis, which is not installed: pip
install ...``); selected anyway, it fails in one line at activation.

With nothing selected the embedded ``memory`` provider wins: it declares
priority 1 and the networked ones keep the entry-point default 0, so a fresh
install works without a server and explain says "lost on priority 0 < 1".
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

_HERE = "oneiric.adapters.cache"

#: The embedded provider's declared priority (networked providers keep the default).
EMBEDDED_PRIORITY = 1

#: provider -> the top-level module its extra installs (checked by core's ``requires`` veto).
REQUIRES: dict[str, str] = {"redis": "redis", "memcached": "emcache"}

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
        module = REQUIRES.get(provider)
        metadata = (
            {
                "requires": [module],
                "install": f'pip install "oneiric-adapters-cache[{provider}]"',
            }
            if module
            else {}
        )
        registry.register(
            domain="adapter",
            key="cache",
            provider=provider,
            factory=factory,
            settings_model=settings_model,
            capabilities=capabilities,
            description=description,
            priority=EMBEDDED_PRIORITY if module is None else None,
            metadata=metadata,
        )
