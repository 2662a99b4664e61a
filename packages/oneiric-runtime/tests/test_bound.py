"""``Bound``: FIFO admission, exact limits, and cancellation that never leaks a slot."""

from __future__ import annotations

import asyncio

import pytest

from oneiric.runtime._bound import Bound

pytestmark = pytest.mark.anyio


async def test_limit_holds_and_waiters_are_served_in_order() -> None:
    bound = Bound(2)
    order: list[int] = []
    peak = 0

    async def worker(i: int) -> None:
        nonlocal peak
        async with bound:
            order.append(i)
            peak = max(peak, bound.held)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(worker(i) for i in range(10)))
    assert order == list(range(10)) and peak == 2
    assert bound.free == 2 and not bound.waiters


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    bound = Bound(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with bound:
            await release.wait()

    held = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(bound.__aenter__())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held
    assert bound.free == 1 and not bound.waiters


async def test_a_slot_handed_over_at_cancellation_is_passed_on() -> None:
    bound = Bound(1)
    await bound.__aenter__()
    first = asyncio.ensure_future(bound.__aenter__())
    second = asyncio.ensure_future(bound.__aenter__())
    await asyncio.sleep(0)
    await bound.__aexit__(None, None, None)  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs: `second` must get it
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)
    await bound.__aexit__(None, None, None)
    assert bound.free == 1
