"""The conformance suite on the memcached provider against the real server (live)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from oneiric.adapters.cache import MemcachedCache
from oneiric.adapters.cache.testing import CacheConformance

pytest_plugins = ["oneiric.adapters.cache.testing"]

pytestmark = pytest.mark.live


class TestMemcachedConformance(CacheConformance):
    @pytest.fixture
    def cache_factory(
        self, memcached_address: tuple[str, int]
    ) -> Callable[[str], Awaitable[MemcachedCache]]:
        host, port = memcached_address

        async def make(namespace: str) -> MemcachedCache:
            cache = MemcachedCache({"host": host, "port": port, "namespace": namespace})
            await cache.init()
            return cache

        return make

    @pytest.fixture
    def down_cache_factory(self, closed_port: int) -> Callable[[str], Awaitable[MemcachedCache]]:
        async def make(namespace: str) -> MemcachedCache:
            return MemcachedCache(
                {
                    "port": closed_port,
                    "namespace": namespace,
                    "timeouts": {"connect": 1.0, "operation": 1.0},
                }
            )

        return make
