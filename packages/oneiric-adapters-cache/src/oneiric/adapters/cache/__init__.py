"""oneiric-adapters-cache: one async ``Cache`` protocol, three providers, a conformance suite.

Providers of ``adapter/cache`` (registered through the ``oneiric`` entry point):
``memory`` (always available), ``redis`` (extra ``redis``) and ``memcached``
(extra ``memcached``).  This module imports neither client library: the redis
and memcached classes load on first attribute access, and building one without
its extra fails in one line naming the extra.  The conformance suite is the
opt-in pytest plugin ``oneiric.adapters.cache.testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core.helpers import lazy_exports

from .__about__ import __version__
from ._errors import (
    CacheAuthenticationError,
    CacheError,
    CacheUnavailableError,
    CacheValueError,
    MissingExtraError,
)
from ._protocol import Cache, CacheHealth

if TYPE_CHECKING:
    from ._memcached import MemcachedCache
    from ._memory import MemoryCache
    from ._redis import RedisCache
    from ._serializing import JsonSerializer, Serializer, SerializingCache
    from ._settings import (
        CacheTimeouts,
        MemcachedCacheSettings,
        MemoryCacheSettings,
        RedisCacheSettings,
    )

__all__ = [
    "Cache",
    "CacheAuthenticationError",
    "CacheError",
    "CacheHealth",
    "CacheTimeouts",
    "CacheUnavailableError",
    "CacheValueError",
    "JsonSerializer",
    "MemcachedCache",
    "MemcachedCacheSettings",
    "MemoryCache",
    "MemoryCacheSettings",
    "MissingExtraError",
    "RedisCache",
    "RedisCacheSettings",
    "Serializer",
    "SerializingCache",
    "__version__",
]

# Loaded on first access: discovery imports this package (for ``_plugin``) and
# must stay cheap, so neither pydantic nor a provider module is imported until
# used.  The provider modules import their client library only when an
# instance is built.
_LAZY = {
    "MemoryCache": "._memory",
    "RedisCache": "._redis",
    "MemcachedCache": "._memcached",
    "JsonSerializer": "._serializing",
    "Serializer": "._serializing",
    "SerializingCache": "._serializing",
    "CacheTimeouts": "._settings",
    "MemcachedCacheSettings": "._settings",
    "MemoryCacheSettings": "._settings",
    "RedisCacheSettings": "._settings",
}


__getattr__ = lazy_exports(__name__, _LAZY)
