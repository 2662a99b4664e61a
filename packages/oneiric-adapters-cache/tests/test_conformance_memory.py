"""The conformance suite on the memory provider, with an injected clock (no waiting)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from oneiric.adapters.cache import MemoryCache
from oneiric.adapters.cache.testing import CacheConformance

pytest_plugins = ["oneiric.adapters.cache.testing"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TestMemoryConformance(CacheConformance):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def advance_time(self, clock: FakeClock) -> Callable[[float], None]:
        return clock.advance

    @pytest.fixture
    def cache_factory(self, clock: FakeClock) -> Callable[[str], Awaitable[MemoryCache]]:
        async def make(namespace: str) -> MemoryCache:
            cache = MemoryCache({"namespace": namespace}, clock=clock)
            await cache.init()
            return cache

        return make
