"""Memory provider specifics: LRU bound, TTL on an injected clock, settings."""

from __future__ import annotations

import pydantic
import pytest

from oneiric.adapters.cache import CacheUnavailableError, MemoryCache, MemoryCacheSettings

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = MemoryCache({"max_entries": 3})
    await cache.set_many({"a": b"1", "b": b"2", "c": b"3"})
    assert await cache.get("a") == b"1"  # a is now the most recently used
    await cache.set("d", b"4")
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": b"1", "c": b"3", "d": b"4"}
    assert cache.evictions == 1


async def test_expired_entries_go_before_live_ones() -> None:
    clock = Clock()
    cache = MemoryCache({"max_entries": 2}, clock=clock)
    await cache.set("old", b"x", ttl=1)
    await cache.set("live", b"y")
    clock.now = 5.0
    await cache.set("new", b"z")
    assert await cache.get_many(["old", "live", "new"]) == {"live": b"y", "new": b"z"}
    assert cache.evictions == 0


async def test_ttl_boundary_on_the_injected_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", ttl=10)
    clock.now = 9.999
    assert await cache.get("k") == b"v"
    clock.now = 10.0
    assert await cache.get("k") is None


async def test_incr_keeps_the_existing_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("n", b"1", ttl=10)
    assert await cache.incr("n", 4) == 5
    assert await cache.incr("n", -7) == -2
    clock.now = 11.0
    assert await cache.get("n") is None
    assert await cache.incr("n") == 1


async def test_instances_share_nothing() -> None:
    one, two = MemoryCache(), MemoryCache()
    await one.set("k", b"v")
    assert await two.get("k") is None


async def test_health_and_reopen_after_cleanup() -> None:
    cache = MemoryCache({"max_entries": 5})
    await cache.set("k", b"v")
    report = await cache.health()
    assert report.ok and report.detail == "1/5 entries"
    await cache.cleanup()
    assert not await cache.health()
    with pytest.raises(CacheUnavailableError, match="cleaned up"):
        await cache.set("k", b"v")
    await cache.init()
    assert await cache.get("k") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"namespace": "a:b"},
        {"namespace": ""},
        {"namespace": "with space"},
        {"max_entries": 0},
        {"namspace": "typo"},
    ],
)
def test_invalid_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        MemoryCacheSettings.model_validate(fields)


def test_settings_from_a_mapping_or_a_model() -> None:
    assert MemoryCache({"max_entries": 7}).settings.max_entries == 7
    model = MemoryCacheSettings(namespace="ns-1")
    assert MemoryCache(model).namespace == "ns-1"
