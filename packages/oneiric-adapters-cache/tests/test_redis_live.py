"""redis provider against real servers: key layout, clear() scope, failures (live)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as raw_redis
import redis.exceptions

from oneiric.adapters.cache import (
    CacheAuthenticationError,
    CacheUnavailableError,
    CacheValueError,
    RedisCache,
)
from oneiric.adapters.cache.testing import fresh_namespace
from oneiric.testing import apoll_until

pytestmark = [pytest.mark.anyio, pytest.mark.live]

FAST = {"timeouts": {"connect": 1.0, "operation": 1.0}, "retries": 0}


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    client = raw_redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache({"url": redis_url, "namespace": fresh_namespace()})
    await cache.init()
    yield cache
    await cache.clear()
    await cache.cleanup()


async def test_key_layout_is_prefix_namespace_key(cache: RedisCache, raw: Any) -> None:
    await cache.set("k é", b"v")
    assert await raw.get(f"oneiric:{cache.namespace}:k é".encode()) == b"v"


async def test_clear_never_touches_keys_outside_the_namespace(cache: RedisCache, raw: Any) -> None:
    ns = cache.namespace
    outside = {
        f"unrelated-{ns}": b"1",
        f"oneiric:{ns}x:k": b"2",  # shares the namespace as a string prefix
        f"oneiric:{ns}-other:k": b"3",
        f"{ns}:k": b"4",
    }
    await raw.mset(outside)
    try:
        await cache.set_many({f"key-{i}": b"v" for i in range(2500)})  # > one SCAN batch
        await cache.clear()
        assert await raw.keys(f"oneiric:{ns}:*") == []
        assert await raw.mget(list(outside)) == list(outside.values())
    finally:
        await raw.delete(*outside)


async def test_incr_on_non_integer_is_a_cache_value_error(cache: RedisCache) -> None:
    await cache.set("n", b"abc")
    with pytest.raises(CacheValueError, match="not a decimal integer") as info:
        await cache.incr("n")
    assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)


async def test_operations_before_init_are_unavailable(redis_url: str) -> None:
    cache = RedisCache({"url": redis_url})
    with pytest.raises(CacheUnavailableError, match="call init"):
        await cache.get("k")
    await cache.cleanup()


async def test_wrong_credentials_fail_at_activation(private_redis: Callable[..., Any]) -> None:
    server = private_redis("--requirepass", "s3cret-pass")
    url = f"redis://127.0.0.1:{server.port}/0"
    for password in ("wrong-pass", None):
        cache = RedisCache({"url": url, "password": password, **FAST})
        with pytest.raises(CacheAuthenticationError) as info:
            await cache.init()
        message = str(info.value)
        assert "\n" not in message and "credentials" in message
        assert "s3cret" not in message and "wrong-pass" not in message
        assert not await cache.health()
        await cache.cleanup()
    good = RedisCache({"url": url, "password": "s3cret-pass", **FAST})
    await good.init()
    await good.set("k", b"v")
    assert await good.get("k") == b"v"
    await good.cleanup()


async def test_server_killed_while_active_then_back(
    private_redis: Callable[..., Any], wait_dead: Callable[[int], None]
) -> None:
    server = private_redis()
    cache = RedisCache({"url": f"redis://127.0.0.1:{server.port}/0", **FAST})
    await cache.init()
    await cache.set("k", b"v")
    server.kill()
    wait_dead(server.port)
    for operation in (
        lambda: cache.get("k"),
        lambda: cache.set("k", b"v"),
        lambda: cache.get_many(["k"]),
        lambda: cache.set_many({"k": b"v"}),
        lambda: cache.incr("n"),
        lambda: cache.clear(),
    ):
        with pytest.raises(CacheUnavailableError) as info:
            await operation()
        assert type(info.value).__module__.startswith("oneiric.")
        assert "\n" not in str(info.value)
    report = await cache.health()
    assert report.ok is False and "unavailable" in report.detail
    server.start()  # same port, empty data

    async def serving() -> bool:
        try:
            await cache.set("k", b"again")
        except CacheUnavailableError:
            return False
        return True

    await apoll_until(serving, message="redis cache serving again after restart")
    assert await cache.get("k") == b"again"
    assert (await cache.health()).ok
    await cache.cleanup()
