"""memcached provider against real servers: generations, key layout, failures (live)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import emcache
import pytest

from oneiric.adapters.cache import CacheUnavailableError, CacheValueError, MemcachedCache
from oneiric.adapters.cache.testing import fresh_namespace
from oneiric.testing import apoll_until

pytestmark = [pytest.mark.anyio, pytest.mark.live]

FAST = {"timeouts": {"connect": 1.0, "operation": 1.0}}


@pytest.fixture
async def raw(memcached_address: tuple[str, int]) -> AsyncIterator[Any]:
    client = await emcache.create_client([emcache.MemcachedHostAddress(*memcached_address)])
    yield client
    await client.close()


@pytest.fixture
async def make(
    memcached_address: tuple[str, int],
) -> AsyncIterator[Callable[..., Any]]:
    built: list[MemcachedCache] = []
    host, port = memcached_address

    async def build(namespace: str) -> MemcachedCache:
        cache = MemcachedCache({"host": host, "port": port, "namespace": namespace})
        await cache.init()
        built.append(cache)
        return cache

    yield build
    for cache in built:
        await cache.cleanup()


async def test_clear_in_one_instance_is_seen_by_another(make: Callable[..., Any]) -> None:
    ns = fresh_namespace()
    one, two = await make(ns), await make(ns)
    await one.set("k", b"v")
    assert await two.get("k") == b"v"
    await one.clear()
    assert await two.get("k") is None  # never a value from before the clear
    assert await two.get_many(["k"]) == {}
    await two.set("k2", b"after")  # written into the new generation, not the dead one
    assert await one.get("k2") == b"after"
    await two.clear()


async def test_clear_leaves_other_data_alone(make: Callable[..., Any], raw: Any) -> None:
    cache = await make(fresh_namespace())
    unrelated = f"unrelated-{cache.namespace}".encode()
    await raw.set(unrelated, b"keep")
    try:
        await cache.set("k", b"v")
        await cache.clear()
        assert await cache.get("k") is None
        item = await raw.get(unrelated)
        assert item is not None and item.value == b"keep"
    finally:
        await raw.delete(unrelated)


async def test_long_keys_are_hashed_on_the_server(make: Callable[..., Any], raw: Any) -> None:
    cache = await make(fresh_namespace())
    await cache.set("x" * 300, b"long")
    key = cache._key("x" * 300)
    assert len(key) <= 250 and b":h:" in key
    item = await raw.get(key)
    assert item is not None and item.value == b"long"
    await cache.clear()


async def test_value_above_the_item_limit_is_a_cache_value_error(
    make: Callable[..., Any],
) -> None:
    cache = await make(fresh_namespace())
    with pytest.raises(CacheValueError, match="too large"):
        await cache.set("huge", b"x" * (3 * 1024 * 1024))  # the CI server runs with -I 2m
    await cache.set("small", b"ok")
    assert await cache.get("small") == b"ok"
    await cache.clear()


async def test_ttl_beyond_thirty_days_is_kept(make: Callable[..., Any]) -> None:
    cache = await make(fresh_namespace())
    await cache.set("month", b"v", ttl=40 * 24 * 3600)
    assert await cache.get("month") == b"v"
    await cache.clear()


async def test_server_killed_while_active_then_back(
    private_memcached: Callable[[], Any], wait_dead: Callable[[int], None]
) -> None:
    server = private_memcached()
    cache = MemcachedCache({"port": server.port, **FAST})
    await cache.init()
    await cache.set("k", b"v")
    server.kill()
    wait_dead(server.port)
    for operation in (
        lambda: cache.get("k"),
        lambda: cache.set("k", b"v"),
        lambda: cache.incr("n"),
        lambda: cache.clear(),
    ):
        with pytest.raises(CacheUnavailableError) as info:
            await operation()
        assert type(info.value).__module__.startswith("oneiric.")
        assert "\n" not in str(info.value)
    report = await cache.health()
    assert report.ok is False and "did not answer" in report.detail
    server.start()

    async def serving() -> bool:
        try:
            await cache.set("k", b"again")
        except CacheUnavailableError:
            return False
        return True

    await apoll_until(serving, message="memcached cache serving again after restart")
    assert await cache.get("k") == b"again"
    assert (await cache.health()).ok
    await cache.cleanup()
