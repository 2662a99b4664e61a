"""``run_eagerly``: a coroutine runs up to its first suspension; the rest behaves as ``await``."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from oneiric.core.helpers import Suspended, run_eagerly


def run(test: Any) -> Any:
    """Core's tests need no async plugin: each coroutine test runs in its own loop."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())

    return wrapper


@run
async def test_finished_coroutine_returns_its_value_and_plain_values_pass() -> None:
    async def done() -> int:
        return 7

    assert run_eagerly(done()) == 7
    assert run_eagerly(5) == 5


@run
async def test_synchronous_exception_propagates() -> None:
    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_eagerly(boom())


@run
async def test_suspended_rest_gets_results_and_exceptions() -> None:
    async def twice() -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return 3

    rest = run_eagerly(twice())
    assert isinstance(rest, Suspended)
    assert await rest.rest == 3

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("late")

    rest = run_eagerly(fails_later())
    with pytest.raises(ValueError, match="late"):
        await rest.rest


@run
async def test_cancellation_reaches_the_coroutine_and_timeouts_work() -> None:
    cleaned: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("finally ran")

    rest = run_eagerly(slow())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await rest.rest
    assert cleaned == ["finally ran"]


@run
async def test_a_coroutine_that_swallows_cancellation_returns_its_value() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "kept going"
        return "never"

    rest = run_eagerly(stubborn())
    task = asyncio.ensure_future(rest.rest)
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "kept going"


@run
async def test_dropping_the_rest_finalizes_the_coroutine() -> None:
    closed: list[bool] = []

    async def holds() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            closed.append(True)

    rest = run_eagerly(holds())
    rest.rest.close()
    assert closed == [True]


@run
async def test_start_task_is_a_task_that_runs_the_coroutine() -> None:
    import sys

    from oneiric.core.helpers import start_task

    async def quick() -> int:
        return 5

    task = start_task(quick())
    assert isinstance(task, asyncio.Task)
    if sys.version_info >= (3, 12):
        assert task.done()  # eager: the first step already ran, as the task itself
    assert await task == 5
