"""The cache family's conformance suite: an opt-in pytest plugin.

Any provider, first- or third-party, proves it honours the ``Cache`` contract
by running these tests against its real backend.  Nothing here is auto-loaded
(no ``pytest11`` entry point); a test module opts in::

    import pytest
    from oneiric.adapters.cache.testing import CacheConformance

    pytest_plugins = ["oneiric.adapters.cache.testing"]

    class TestMyCache(CacheConformance):
        @pytest.fixture
        def cache_factory(self):
            async def make(namespace: str):
                cache = MyCache(namespace=namespace)   # a fresh namespace per call
                await cache.init()
                return cache                           # initialized, ready to use
            return make

Fixtures a subclass provides
----------------------------
``cache_factory`` (required)
    An async callable ``make(namespace: str) -> Cache`` returning an
    *initialized* cache scoped to ``namespace``.  The suite passes a fresh
    namespace per test, and calls ``clear()`` and ``cleanup()`` on every cache
    it built.  Two caches built with different namespaces must not see each
    other's keys (for a per-instance cache such as ``memory`` that holds anyway).
``down_cache_factory`` (optional; default ``None``: those tests skip)
    An async callable ``make(namespace: str) -> Cache`` returning a cache *not
    yet initialized* whose backend is unreachable (e.g. a closed port).  The
    suite expects ``init()`` and every operation to raise
    ``CacheUnavailableError`` and ``health()`` to be falsy (``False`` or an object
    whose ``ok`` is false), never to raise.
``advance_time`` (optional; default ``None``: real time, the suite polls)
    A callable ``advance(seconds: float) -> None`` moving the clock the provider
    uses for TTLs (an injected clock), so TTL tests need no waiting.

Class attributes a subclass may change: ``short_ttl`` (seconds, default 1.0),
``ttl_ceiling`` (how long to poll for an expiry, default 30 s), ``large_value``
(bytes in the large-value test, default 1 MiB).

What it never does: assert on timing (expiries are polled up to a generous
ceiling), flush a server, or touch keys outside the namespaces it created.
Async tests run on asyncio through anyio's pytest plugin (the ``testing``
extra installs pytest and anyio).

PYTEST_DONT_REWRITE: a test module imports ``CacheConformance`` before pytest
processes its ``pytest_plugins``, too late for assertion rewriting; the suite
therefore states expected and actual values itself (``_eq``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest

from ._errors import CacheError, CacheUnavailableError, CacheValueError
from ._protocol import Cache

__all__ = ["ODD_KEYS", "CacheConformance", "fresh_namespace"]

CacheFactory = Callable[[str], Awaitable[Any]]

#: Keys a provider must store and tell apart (encoded, never rejected).
ODD_KEYS: tuple[str, ...] = (
    "with space",
    "tab\tnew\nline\r",
    "ünïcødé ключ 鍵 🔑",
    "x" * 300,
    "é" * 300,
    "",
    "%41",
    "A",
    "a:b*c?[d]\\e",
    "\x00nul\x7fdel",
    "k:escaped-looking",
    "h:" + "0" * 64,
)


def fresh_namespace(label: str = "conf") -> str:
    """A namespace no other test uses (valid for every first-party provider)."""
    return f"{label}-{uuid.uuid4().hex[:16]}"


async def _eventually(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float, what: str
) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} not reached within {timeout} s", pytrace=False)
        await asyncio.sleep(0.05)


def _eq(got: Any, want: Any) -> None:
    """``assert got == want`` that says both values (assertions here are not rewritten)."""
    if got != want:
        raise AssertionError(f"got {_short(got)}, expected {_short(want)}")


def _is(got: Any, want: Any) -> None:
    """``assert got is want`` (True, False or None) that says what it got."""
    if got is not want:
        raise AssertionError(f"got {_short(got)}, expected {want!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}... ({len(text)} chars)"


def _falsy_health(report: Any) -> bool:
    ok = getattr(report, "ok", report)
    return ok is False


class CacheConformance:
    """Subclass in a test module and provide ``cache_factory`` (see the module docs)."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    short_ttl: float = 1.0
    ttl_ceiling: float = 30.0
    large_value: int = 1024 * 1024

    # ----------------------------------------------------------- fixtures

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def down_cache_factory(self) -> CacheFactory | None:
        return None

    @pytest.fixture
    def advance_time(self) -> Callable[[float], None] | None:
        return None

    @pytest.fixture
    async def cache_builder(self, cache_factory: CacheFactory) -> AsyncIterator[CacheFactory]:
        """``cache_factory`` plus bookkeeping: every cache built is cleared and cleaned up."""
        built: list[Any] = []

        async def build(namespace: str) -> Any:
            cache = await cache_factory(namespace)
            built.append(cache)
            return cache

        yield build
        for cache in reversed(built):
            try:
                await cache.clear()
            except CacheError:
                pass
            cleanup = getattr(cache, "cleanup", None)
            if cleanup is not None:
                await cleanup()

    @pytest.fixture
    async def cache(self, cache_builder: CacheFactory) -> Any:
        return await cache_builder(fresh_namespace())

    @pytest.fixture
    async def other_cache(self, cache_builder: CacheFactory) -> Any:
        return await cache_builder(fresh_namespace("other"))

    async def _expire(
        self, cache: Any, keys: list[str], advance_time: Callable[[float], None] | None
    ) -> None:
        """Wait (poll, or move the injected clock) until every key in ``keys`` expired."""

        async def gone() -> bool:
            return not await cache.get_many(keys)

        if advance_time is not None:
            advance_time(self.short_ttl + 1.0)
            assert await gone(), f"keys {keys!r} still present after their TTL"
            return
        await _eventually(gone, timeout=self.ttl_ceiling, what=f"expiry of {keys!r}")

    # ----------------------------------------------------------- shape

    async def test_is_a_cache(self, cache: Any) -> None:
        assert isinstance(cache, Cache)

    async def test_health_ok_when_up(self, cache: Any) -> None:
        health = getattr(cache, "health", None)
        if health is None:
            pytest.skip("provider has no health()")
        report = await health()
        _is(getattr(report, "ok", report), True)

    # ----------------------------------------------------------- values

    async def test_every_byte_value_round_trips(self, cache: Any) -> None:
        value = bytes(range(256))
        await cache.set("bytes", value)
        _eq(await cache.get("bytes"), value)
        for byte in (0, 10, 13, 32, 127, 128, 255):
            await cache.set(f"byte-{byte}", bytes([byte]))
        got = await cache.get_many([f"byte-{b}" for b in (0, 10, 13, 32, 127, 128, 255)])
        _eq(got, {f"byte-{b}": bytes([b]) for b in (0, 10, 13, 32, 127, 128, 255)})

    async def test_empty_value_is_a_hit(self, cache: Any) -> None:
        await cache.set("empty", b"")
        _eq(await cache.get("empty"), b"")
        _is(await cache.exists("empty"), True)
        _eq(await cache.get_many(["empty"]), {"empty": b""})

    async def test_large_value_round_trips(self, cache: Any) -> None:
        value = bytes(range(256)) * (self.large_value // 256)
        await cache.set("large", value)
        _eq(await cache.get("large"), value)

    async def test_bytearray_and_memoryview_are_accepted(self, cache: Any) -> None:
        await cache.set("ba", bytearray(b"abc"))
        await cache.set("mv", memoryview(b"def"))
        _eq(await cache.get_many(["ba", "mv"]), {"ba": b"abc", "mv": b"def"})

    async def test_non_bytes_value_is_refused(self, cache: Any) -> None:
        with pytest.raises((TypeError, CacheValueError)):
            await cache.set("text", "not bytes")
        _is(await cache.get("text"), None)

    async def test_missing_key(self, cache: Any) -> None:
        _is(await cache.get("never-set"), None)
        _is(await cache.exists("never-set"), False)
        _is(await cache.delete("never-set"), False)

    async def test_overwrite(self, cache: Any) -> None:
        await cache.set("k", b"one")
        await cache.set("k", b"two")
        _eq(await cache.get("k"), b"two")

    async def test_delete_and_exists(self, cache: Any) -> None:
        await cache.set("k", b"v")
        _is(await cache.exists("k"), True)
        _is(await cache.delete("k"), True)
        _is(await cache.exists("k"), False)
        _is(await cache.get("k"), None)
        _is(await cache.delete("k"), False)

    # ----------------------------------------------------------- keys

    @pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: repr(k)[:24])
    async def test_odd_key_round_trips(self, cache: Any, key: str) -> None:
        value = b"value of " + key.encode("utf-8")
        await cache.set(key, value)
        _eq(await cache.get(key), value)
        _is(await cache.exists(key), True)
        _eq(await cache.get_many([key]), {key: value})
        _is(await cache.delete(key), True)
        _is(await cache.get(key), None)

    async def test_odd_keys_do_not_collide(self, cache: Any) -> None:
        keys = [*ODD_KEYS, "x" * 299 + "y", "x" * 301, "é" * 299 + "e"]
        await cache.set_many({k: f"#{i}".encode() for i, k in enumerate(keys)})
        got = await cache.get_many(keys)
        _eq(got, {k: f"#{i}".encode() for i, k in enumerate(keys)})

    async def test_non_str_key_is_refused(self, cache: Any) -> None:
        with pytest.raises(TypeError):
            await cache.get(b"bytes-key")

    # ----------------------------------------------------------- TTL

    async def test_ttl_none_and_long_ttl_keep_the_value(self, cache: Any) -> None:
        await cache.set("forever", b"v", ttl=None)
        await cache.set("hour", b"v", ttl=3600)
        await cache.set("fractional", b"v", ttl=3599.5)
        _eq(
            await cache.get_many(["forever", "hour", "fractional"]),
            {
                "forever": b"v",
                "hour": b"v",
                "fractional": b"v",
            },
        )

    async def test_short_ttl_expires_others_stay(
        self, cache: Any, advance_time: Callable[[float], None] | None
    ) -> None:
        await cache.set("short", b"v", ttl=self.short_ttl)
        await cache.set("renewed", b"v", ttl=self.short_ttl)
        await cache.set("renewed", b"w")  # a set without ttl drops the earlier ttl
        await cache.set("kept", b"v")
        await cache.set("hour", b"v", ttl=3600)
        await self._expire(cache, ["short"], advance_time)
        _is(await cache.get("short"), None)
        _is(await cache.exists("short"), False)
        _eq(
            await cache.get_many(["short", "renewed", "kept", "hour"]),
            {
                "renewed": b"w",
                "kept": b"v",
                "hour": b"v",
            },
        )

    async def test_set_many_with_ttl_expires(
        self, cache: Any, advance_time: Callable[[float], None] | None
    ) -> None:
        await cache.set_many({"a": b"1", "b": b"2"}, ttl=self.short_ttl)
        await cache.set("kept", b"3")
        await self._expire(cache, ["a", "b"], advance_time)
        _eq(await cache.get_many(["a", "b", "kept"]), {"kept": b"3"})

    @pytest.mark.parametrize("ttl", [0, -1, 0.0])
    async def test_non_positive_ttl_removes_the_key(self, cache: Any, ttl: float) -> None:
        await cache.set("k", b"old")
        await cache.set("k", b"new", ttl=ttl)
        _is(await cache.get("k"), None)
        await cache.set_many({"m": b"x"}, ttl=ttl)
        _is(await cache.get("m"), None)

    # ----------------------------------------------------------- many

    async def test_get_many_omits_misses(self, cache: Any) -> None:
        await cache.set("a", b"1")
        await cache.set("c", b"3")
        _eq(await cache.get_many(["a", "b", "c", "d"]), {"a": b"1", "c": b"3"})
        _eq(await cache.get_many([]), {})
        _eq(await cache.get_many(["nope"]), {})

    async def test_get_many_duplicates_and_iterables(self, cache: Any) -> None:
        await cache.set("a", b"1")
        _eq(await cache.get_many(["a", "a", "b", "a"]), {"a": b"1"})
        _eq(await cache.get_many(k for k in ("a", "b")), {"a": b"1"})

    async def test_set_many(self, cache: Any) -> None:
        mapping = {f"key-{i}": f"value-{i}".encode() for i in range(50)}
        await cache.set_many(mapping)
        _eq(await cache.get_many(list(mapping)), mapping)
        await cache.set_many({})
        await cache.set_many({"key-0": b"changed"})
        _eq(await cache.get("key-0"), b"changed")

    # ----------------------------------------------------------- incr

    async def test_incr_missing_starts_from_zero(self, cache: Any) -> None:
        _eq(await cache.incr("counter"), 1)
        _eq(await cache.incr("counter"), 2)
        _eq(await cache.incr("counter", 10), 12)
        _eq(await cache.get("counter"), b"12")
        _eq(await cache.incr("other", 5), 5)

    async def test_incr_existing_integer_value(self, cache: Any) -> None:
        await cache.set("n", b"41")
        _eq(await cache.incr("n"), 42)
        _eq(await cache.get("n"), b"42")
        await cache.set("zero", b"0")
        _eq(await cache.incr("zero", 0), 0)

    async def test_incr_non_integer_raises_and_keeps_value(self, cache: Any) -> None:
        for value in (b"abc", b"1.5", b"", b"\xff"):
            await cache.set("n", value)
            with pytest.raises(CacheValueError) as info:
                await cache.incr("n")
            assert isinstance(info.value, CacheError)
            assert "\n" not in str(info.value)
            _eq(await cache.get("n"), value)

    async def test_incr_refuses_non_int_delta(self, cache: Any) -> None:
        with pytest.raises(TypeError):
            await cache.incr("n", 1.5)

    async def test_incr_keeps_ttl_less_value_persistent(self, cache: Any) -> None:
        await cache.incr("n", 3)
        _is(await cache.exists("n"), True)
        _eq(await cache.get_many(["n"]), {"n": b"3"})

    # ----------------------------------------------------------- clear

    async def test_clear_is_limited_to_the_namespace(self, cache: Any, other_cache: Any) -> None:
        await cache.set_many({"a": b"1", "b": b"2", "x" * 300: b"3"})
        await cache.incr("count")
        await other_cache.set_many({"a": b"other-1", "z": b"other-26"})
        await cache.clear()
        _eq(await cache.get_many(["a", "b", "x" * 300, "count"]), {})
        _is(await cache.exists("a"), False)
        _eq(await other_cache.get_many(["a", "z"]), {"a": b"other-1", "z": b"other-26"})

    async def test_namespaces_are_isolated(self, cache: Any, other_cache: Any) -> None:
        await cache.set("shared-name", b"mine")
        _is(await other_cache.get("shared-name"), None)
        await other_cache.set("shared-name", b"theirs")
        _eq(await cache.get("shared-name"), b"mine")

    async def test_usable_after_clear(self, cache: Any) -> None:
        await cache.set("a", b"1")
        await cache.clear()
        await cache.clear()
        await cache.set("a", b"2")
        _eq(await cache.get("a"), b"2")
        _eq(await cache.incr("c"), 1)

    # ----------------------------------------------------------- lifecycle

    async def test_cleanup_twice_then_operations_are_unavailable(
        self, cache_factory: CacheFactory
    ) -> None:
        cache = await cache_factory(fresh_namespace())
        await cache.set("k", b"v")
        await cache.clear()
        await cache.cleanup()
        await cache.cleanup()
        with pytest.raises(CacheUnavailableError):
            await cache.get("k")
        report = await cache.health()
        assert _falsy_health(report)

    async def test_server_down_is_unavailable(
        self, down_cache_factory: CacheFactory | None
    ) -> None:
        if down_cache_factory is None:
            pytest.skip("provider has no server that can be down (no down_cache_factory)")
        cache = await down_cache_factory(fresh_namespace("down"))
        try:
            with pytest.raises(CacheUnavailableError) as info:
                await cache.init()
            message = str(info.value)
            assert message and "\n" not in message
            assert _falsy_health(await cache.health())
            operations: list[Callable[[], Awaitable[Any]]] = [
                lambda: cache.get("k"),
                lambda: cache.set("k", b"v"),
                lambda: cache.delete("k"),
                lambda: cache.exists("k"),
                lambda: cache.get_many(["k", "j"]),
                lambda: cache.set_many({"k": b"v"}),
                lambda: cache.incr("k"),
                lambda: cache.clear(),
            ]
            for operation in operations:
                with pytest.raises(CacheUnavailableError):
                    await operation()
        finally:
            await cache.cleanup()
