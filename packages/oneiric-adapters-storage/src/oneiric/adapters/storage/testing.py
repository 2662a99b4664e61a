"""The storage conformance suite: an opt-in pytest plugin any provider can run.

Never auto-loaded (no ``pytest11`` entry point).  A provider's test module opts in::

    import pytest
    from oneiric.adapters.storage.testing import StorageConformance

    pytest_plugins = ["oneiric.adapters.storage.testing"]

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            async def make():
                storage = MyStorage(root=tmp_path)   # a fresh, empty namespace per test
                await storage.init()
                return storage
            return make

Fixture contract
----------------
``storage_factory`` (required)
    Returns an async callable ``make() -> Storage``.  Each call returns a new,
    **initialized** instance; every instance made during one test addresses the
    same namespace (bucket and/or key prefix), which is fresh and empty for that
    test.  The suite calls ``cleanup()`` (if present) on every instance it made.
``storage_unavailable_factory`` (optional)
    Returns an async callable giving an **uninitialized** instance configured for
    a server that is not running; the suite checks ``init()`` raises
    ``StorageUnavailableError``.  Return ``None`` (the default) for providers
    without a server: that test is skipped.
``storage_list_count`` (optional, default 1001)
    How many objects the listing test writes; it must exceed the server's page
    size so that pagination really happens (S3 and GCS page at 1,000).

Everything runs on asyncio through anyio's pytest plugin (``anyio_backend``).

PYTEST_DONT_REWRITE: a test module imports ``StorageConformance`` before pytest
reads its ``pytest_plugins``, so this module cannot be assertion-rewritten; the
marker keeps pytest from warning (an error under ``filterwarnings = error``) and
the asserts carry their own messages instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from ._errors import (
    InvalidPathError,
    InvalidRangeError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageUnavailableError,
)
from ._protocol import ObjectInfo, Storage

__all__ = ["BAD_PATHS", "StorageConformance", "put_many", "unique_prefix"]

StorageFactory = Callable[[], Awaitable[Storage]]

#: Paths every provider must refuse with ``InvalidPathError``.
BAD_PATHS = (
    "",
    "../escape",
    "a/../../escape",
    "a/..",
    "/etc/passwd",
    "a\x00b",
    "a//b",
    "./a",
    "a/./b",
    "a/",
    "a\\..\\b",
    "C:/windows",
)

#: Bounded concurrency for bulk writes: fast without flooding a 2-core CI box.
PUT_CONCURRENCY = 32


def unique_prefix(tag: str = "t") -> str:
    """A fresh key prefix, e.g. for a per-test namespace in a shared bucket."""
    return f"{tag}-{uuid.uuid4().hex[:16]}"


async def put_many(
    storage: Storage, items: dict[str, bytes], *, limit: int = PUT_CONCURRENCY
) -> None:
    """Write many objects concurrently, at most ``limit`` in flight."""
    gate = asyncio.Semaphore(limit)

    async def one(path: str, data: bytes) -> None:
        async with gate:
            await storage.put(path, data)

    await asyncio.gather(*(one(p, d) for p, d in items.items()))


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def storage_unavailable_factory() -> StorageFactory | None:
    return None


@pytest.fixture
def storage_list_count() -> int:
    return 1001


@pytest.fixture
async def storage_maker(storage_factory: StorageFactory) -> AsyncIterator[StorageFactory]:
    """``storage_factory`` with cleanup of every instance made in the test."""
    made: list[Storage] = []

    async def make() -> Storage:
        storage = await storage_factory()
        made.append(storage)
        return storage

    yield make
    for storage in reversed(made):
        cleanup = getattr(storage, "cleanup", None)
        if cleanup is not None:
            await cleanup()


@pytest.fixture
async def storage(storage_maker: StorageFactory) -> Storage:
    """One initialized instance over this test's fresh namespace."""
    return await storage_maker()


@pytest.mark.anyio
class StorageConformance:
    """Behaviour every ``Storage`` provider shares; subclass it and supply ``storage_factory``."""

    async def test_satisfies_protocol(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)

    async def test_round_trip(self, storage: Storage) -> None:
        info = await storage.put("docs/hello.txt", b"hello world")
        assert isinstance(info, ObjectInfo)
        assert (info.path, info.size) == ("docs/hello.txt", 11)
        assert await storage.get("docs/hello.txt") == b"hello world"
        await storage.put("docs/hello.txt", b"replaced")
        assert await storage.get("docs/hello.txt") == b"replaced"

    async def test_binary_and_unicode_path(self, storage: Storage) -> None:
        data = bytes(range(256)) * 3
        path = "deep/nested/dir/ünïcode name (1).bin"
        await storage.put(path, data, content_type="application/octet-stream")
        assert await storage.get(path) == data
        assert [i.path for i in await _collect(storage.list("deep"))] == [path]

    async def test_empty_object(self, storage: Storage) -> None:
        info = await storage.put("empty", b"")
        assert info.size == 0
        assert await storage.get("empty") == b""
        assert (await storage.head("empty")).size == 0
        assert await storage.exists("empty")
        assert b"".join(await _collect(storage.stream("empty"))) == b""
        assert await storage.get_range("empty", 0, 10) == b""
        assert [i.path for i in await _collect(storage.list())] == ["empty"]

    async def test_create_only_conflict(self, storage: Storage) -> None:
        await storage.put("once", b"first", create_only=True)
        with pytest.raises(PreconditionFailedError):
            await storage.put("once", b"second", create_only=True)
        assert await storage.get("once") == b"first"
        await storage.put("once", b"third")  # a plain put still overwrites
        assert await storage.get("once") == b"third"

    async def test_create_only_race_has_one_winner(self, storage_maker: StorageFactory) -> None:
        stores = [await storage_maker() for _ in range(2)]

        async def attempt(i: int) -> bool:
            try:
                await stores[i % 2].put("race", f"writer {i}".encode(), create_only=True)
            except PreconditionFailedError:
                return False
            return True

        results = await asyncio.gather(*(attempt(i) for i in range(8)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert await stores[1].get("race") == f"writer {winner}".encode()

    async def test_missing_object(self, storage: Storage) -> None:
        with pytest.raises(ObjectNotFoundError):
            await storage.get("missing")
        with pytest.raises(ObjectNotFoundError):
            await storage.head("missing")
        with pytest.raises(ObjectNotFoundError):
            await storage.get_range("missing", 0, 1)
        with pytest.raises(ObjectNotFoundError):
            await _collect(storage.stream("missing"))
        assert not await storage.exists("missing")

    async def test_ranges_at_the_edges(self, storage: Storage) -> None:
        data = bytes(range(256)) * 4  # 1024 bytes
        size = len(data)
        await storage.put("r", data)
        cases = [
            (0, 1), (0, size), (1, size - 1), (size - 1, size), (0, 0), (10, 10),
            (size, size), (size, size + 10), (size + 5, size + 10), (1000, 5000),
        ]
        for start, end in cases:
            assert await storage.get_range("r", start, end) == data[start:end], (start, end)
        for start, end in ((-1, 5), (10, 5)):
            with pytest.raises(InvalidRangeError):
                await storage.get_range("r", start, end)

    async def test_stream(self, storage: Storage) -> None:
        data = b"".join(i.to_bytes(4, "big") for i in range(3 * 2**18 + 17))  # ~3 MiB
        await storage.put("big", data)
        chunks = await _collect(storage.stream("big"))
        assert all(isinstance(c, bytes) for c in chunks)
        assert b"".join(chunks) == data

    async def test_head(self, storage: Storage) -> None:
        await storage.put("h", b"12345", content_type="text/plain")
        info = await storage.head("h")
        assert (info.path, info.size) == ("h", 5)
        assert info.etag
        assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None
        await storage.put("h", b"different content")
        changed = await storage.head("h")
        assert changed.size == 17
        assert changed.etag != info.etag

    async def test_exists(self, storage: Storage) -> None:
        assert not await storage.exists("e")
        await storage.put("e", b"x")
        assert await storage.exists("e")

    async def test_delete(self, storage: Storage) -> None:
        await storage.put("d/x", b"x")
        await storage.delete("d/x")
        assert not await storage.exists("d/x")
        with pytest.raises(ObjectNotFoundError):
            await storage.get("d/x")
        assert await _collect(storage.list("d")) == []

    async def test_delete_missing_is_a_no_op(self, storage: Storage) -> None:
        await storage.delete("never-existed")
        await storage.delete("never/existed/either")
        await storage.put("once", b"x")
        await storage.delete("once")
        await storage.delete("once")  # twice: still fine

    async def test_list_prefix_is_a_directory(self, storage: Storage) -> None:
        await put_many(
            storage, {"a/1": b"1", "a/sub/2": b"22", "ab/3": b"333", "b/4": b"4", "a.txt": b"5"}
        )
        assert sorted(i.path for i in await _collect(storage.list("a"))) == ["a/1", "a/sub/2"]
        assert sorted(i.path for i in await _collect(storage.list("a/"))) == ["a/1", "a/sub/2"]
        assert [i.path for i in await _collect(storage.list("a/sub"))] == ["a/sub/2"]
        every = {i.path: i.size for i in await _collect(storage.list())}
        assert every == {"a/1": 1, "a/sub/2": 2, "ab/3": 3, "b/4": 1, "a.txt": 1}
        assert await _collect(storage.list("nothing-here")) == []

    async def test_list_paginates(self, storage: Storage, storage_list_count: int) -> None:
        count = storage_list_count
        await put_many(storage, {f"many/{i:05d}": b"x" for i in range(count)})
        await put_many(storage, {"many-not/x": b"y", "other/y": b"z"})
        listed = [i.path for i in await _collect(storage.list("many"))]
        assert len(listed) == count
        assert set(listed) == {f"many/{i:05d}" for i in range(count)}
        assert len([i async for i in storage.list()]) == count + 2

    @pytest.mark.parametrize("bad", BAD_PATHS)
    async def test_bad_paths_refused(self, storage: Storage, bad: str) -> None:
        with pytest.raises(InvalidPathError):
            await storage.put(bad, b"x")
        with pytest.raises(InvalidPathError):
            await storage.put(bad, b"x", create_only=True)
        with pytest.raises(InvalidPathError):
            await storage.get(bad)
        with pytest.raises(InvalidPathError):
            await storage.get_range(bad, 0, 1)
        with pytest.raises(InvalidPathError):
            await _collect(storage.stream(bad))
        with pytest.raises(InvalidPathError):
            await storage.head(bad)
        with pytest.raises(InvalidPathError):
            await storage.exists(bad)
        with pytest.raises(InvalidPathError):
            await storage.delete(bad)

    @pytest.mark.parametrize("bad", ["../", "/abs", "a/../b", "x\x00"])
    async def test_bad_prefixes_refused(self, storage: Storage, bad: str) -> None:
        with pytest.raises(InvalidPathError):
            await _collect(storage.list(bad))

    async def test_instances_share_the_namespace(self, storage_maker: StorageFactory) -> None:
        first, second = await storage_maker(), await storage_maker()
        await first.put("shared", b"seen")
        assert await second.get("shared") == b"seen"

    async def test_server_down_is_unavailable(
        self, storage_unavailable_factory: StorageFactory | None
    ) -> None:
        if storage_unavailable_factory is None:
            pytest.skip("this provider has no server to be down")
        storage = await storage_unavailable_factory()
        try:
            with pytest.raises(StorageUnavailableError) as caught:
                await storage.init()  # type: ignore[attr-defined]
            assert "\n" not in str(caught.value)
        finally:
            cleanup = getattr(storage, "cleanup", None)
            if cleanup is not None:
                await cleanup()
