"""``maybe_await``: a coroutine that finishes without suspending needs no timer; one that
suspends is awaited under its deadline exactly as ``asyncio.timeout`` + ``await`` would."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from oneiric.lifecycle._component import call_optional, maybe_await

pytestmark = pytest.mark.anyio


async def test_plain_values_and_non_coroutine_awaitables() -> None:
    assert await maybe_await(5, 1.0) == 5
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, 7)
    assert await maybe_await(future, 1.0) == 7


async def test_coroutine_without_suspending_arms_no_timer() -> None:
    loop = asyncio.get_running_loop()
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]

    async def quick() -> str:
        assert len(loop._scheduled) == scheduled  # type: ignore[attr-defined]
        return "done"

    assert await maybe_await(quick(), 1.0) == "done"
    assert len(loop._scheduled) == scheduled  # type: ignore[attr-defined]


async def test_coroutine_raising_without_suspending() -> None:
    async def broken() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await maybe_await(broken(), 1.0)


async def test_coroutine_that_suspends_returns_its_value_and_runs_in_the_task() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")
    task = asyncio.current_task()

    async def slow() -> tuple[str, Any]:
        seen = (var.get(), asyncio.current_task())
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return seen[0], asyncio.current_task() is seen[1]

    assert await maybe_await(slow(), 1.0) == ("caller", True)
    assert asyncio.current_task() is task


async def test_coroutine_raising_after_suspending() -> None:
    async def late() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    with pytest.raises(KeyError, match="late"):
        await maybe_await(late(), 1.0)


async def test_deadline_covers_the_steps_before_the_first_suspension() -> None:
    events: list[str] = []

    async def hangs() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            events.append("finally")

    with pytest.raises(TimeoutError):
        await maybe_await(hangs(), 0.01)
    assert events == ["finally"]


async def test_timeout_after_several_suspensions_and_recovery() -> None:
    async def ticks() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleans up across a suspension, then re-raises
            raise

    with pytest.raises(TimeoutError):
        await maybe_await(ticks(), 0.02)
    # the task is usable afterwards: no pending cancellation left behind
    await asyncio.sleep(0.001)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_outer_cancellation_reaches_the_coroutine() -> None:
    started = asyncio.Event()
    events: list[str] = []

    async def waits() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    task = asyncio.ensure_future(maybe_await(waits(), 5.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["cancelled"]


async def test_coroutine_that_swallows_a_timeout_returns_its_value() -> None:
    """As with ``asyncio.timeout``: a coroutine that handles the cancellation and returns wins
    its value back, but the expired timeout still raises TimeoutError (3.11 semantics)."""

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "kept"
        return "slept"

    async def reference() -> Any:
        async with asyncio.timeout(0.01):
            return await stubborn()

    try:
        expected: Any = await reference()
    except TimeoutError:
        expected = TimeoutError
    try:
        got: Any = await maybe_await(stubborn(), 0.01)
    except TimeoutError:
        got = TimeoutError
    assert got == expected


async def test_call_optional() -> None:
    class Sync:
        def health(self) -> bool:
            return True

    class Async:
        async def health(self) -> bool:
            await asyncio.sleep(0)
            return False

    assert await call_optional(object(), "health", 1.0) == (False, None)
    assert await call_optional(Sync(), "health", 1.0) == (True, True)
    assert await call_optional(Async(), "health", 1.0) == (True, False)


async def test_deadline_counts_the_time_before_the_first_suspension() -> None:
    """The deadline is the start plus the timeout, not the first suspension plus it: the
    timeout's timer (start + 0.4 s) comes before the sleep's (at least start + 0.5 s)."""
    import time

    async def slow_start() -> str:
        time.sleep(0.3)  # blocks before its first suspension
        await asyncio.sleep(0.2)
        return "done"

    with pytest.raises(TimeoutError):
        await maybe_await(slow_start(), 0.4)


async def test_awaitable_objects_and_generator_coroutines_are_awaited() -> None:
    import types

    class Later:
        def __await__(self) -> Any:
            yield from asyncio.sleep(0).__await__()
            return "later"

    @types.coroutine
    def old_style() -> Any:
        yield from asyncio.sleep(0).__await__()
        return "old"

    def plain_generator() -> Any:
        yield 1

    assert await maybe_await(Later(), 1.0) == "later"
    assert await maybe_await(old_style(), 1.0) == "old"
    generator = plain_generator()
    assert await maybe_await(generator, 1.0) is generator  # not awaitable: returned as is
