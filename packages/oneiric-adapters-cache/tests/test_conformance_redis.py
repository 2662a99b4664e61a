"""The conformance suite on the redis provider against the real server (live)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from oneiric.adapters.cache import RedisCache
from oneiric.adapters.cache.testing import CacheConformance

pytest_plugins = ["oneiric.adapters.cache.testing"]

pytestmark = pytest.mark.live


class TestRedisConformance(CacheConformance):
    @pytest.fixture
    def cache_factory(self, redis_url: str) -> Callable[[str], Awaitable[RedisCache]]:
        async def make(namespace: str) -> RedisCache:
            cache = RedisCache({"url": redis_url, "namespace": namespace})
            await cache.init()
            return cache

        return make

    @pytest.fixture
    def down_cache_factory(self, closed_port: int) -> Callable[[str], Awaitable[RedisCache]]:
        async def make(namespace: str) -> RedisCache:
            return RedisCache(
                {
                    "url": f"redis://127.0.0.1:{closed_port}/0",
                    "namespace": namespace,
                    "timeouts": {"connect": 1.0, "operation": 1.0},
                    "retries": 0,
                }
            )

        return make
