"""SerializingCache: typed values through the JSON serializer, bytes untouched."""

from __future__ import annotations

import pytest

from oneiric.adapters.cache import JsonSerializer, MemoryCache, Serializer, SerializingCache

pytestmark = pytest.mark.anyio


async def test_bytes_pass_through_unchanged() -> None:
    inner = MemoryCache()
    cache = SerializingCache(inner)
    await cache.set("b", b"\x00\xffraw")
    assert await inner.get("b") == b"\x00\xffraw"
    assert await cache.get("b") == b"\x00\xffraw"


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None]}, [1, "two"], "text", 42, True, "ключ"])
async def test_typed_values_round_trip(value: object) -> None:
    cache = SerializingCache(MemoryCache())
    await cache.set("v", value, ttl=60)
    assert await cache.get("v") == value
    await cache.set_many({"x": value, "y": b"bytes"})
    assert await cache.get_many(["x", "y", "z"]) == {"x": value, "y": b"bytes"}


async def test_raw_bytes_that_look_tagged_are_not_misread() -> None:
    inner = MemoryCache()
    cache = SerializingCache(inner)
    tricky = b"\x00oneiric:json\x00[1]"
    await cache.set("t", tricky)
    assert await cache.get("t") == tricky
    assert await inner.get("t") != tricky  # stored behind the raw tag


async def test_counters_and_lifecycle_pass_through() -> None:
    cache = SerializingCache(MemoryCache(), JsonSerializer())
    await cache.init()
    assert await cache.incr("n", 2) == 2
    assert await cache.get("n") == b"2"
    assert await cache.exists("n") is True
    assert await cache.delete("n") is True
    assert (await cache.health()).ok
    await cache.clear()
    await cache.cleanup()


def test_json_serializer_satisfies_the_protocol() -> None:
    assert isinstance(JsonSerializer(), Serializer)
