"""1,000 swaps of one key under constant use: users never see a cleaned-up instance.

The provider refuses any call after its cleanup(), so a single use of a stale
instance fails the test; every built instance must be cleaned up exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from oneiric.lifecycle import DomainBridge

pytestmark = pytest.mark.anyio

SWAPS = 1000
USERS = 4


async def test_lease_and_handle_under_1000_swaps(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache", "a")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    errors: list[BaseException] = []
    uses = [0] * USERS
    done = asyncio.Event()

    async def user(n: int) -> None:
        while not done.is_set():
            try:
                async with bridge.lease("cache") as obj:
                    await obj.acall()  # awaits inside the lease
                    await asyncio.sleep(0)
                    obj.call()
                bridge.handle("cache").instance.call()  # a read-and-call without await
            except Exception as exc:  # any failure a user would see
                errors.append(exc)
            uses[n] += 1
            await asyncio.sleep(0)

    users = [asyncio.ensure_future(user(n)) for n in range(USERS)]
    for i in range(SWAPS):
        await manager.swap("adapter", "cache", "ba"[i % 2])
        await asyncio.sleep(0)  # let users and background cleanups run between swaps
    done.set()
    await asyncio.gather(*users)
    await manager.shutdown()

    assert errors == [] and ledger.misuse == []
    assert all(uses), "every user ran"
    assert len(ledger.built) == SWAPS + 1
    assert ledger.all_cleaned_once()


async def test_lease_sync_threads_under_1000_swaps(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache", "a")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    errors: list[BaseException] = []
    uses = [0] * USERS
    stop = threading.Event()

    def user(n: int) -> None:
        while not stop.is_set():
            try:
                with bridge.lease_sync("cache") as obj:
                    obj.call()
                    stop.wait(0)  # yield the GIL inside the lease
                    obj.call()
            except Exception as exc:
                errors.append(exc)
            uses[n] += 1

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(USERS)]
    for thread in threads:
        thread.start()
    try:
        for i in range(SWAPS):
            await manager.swap("adapter", "cache", "ba"[i % 2])
            if i % 50 == 0:
                await asyncio.sleep(0.001)  # let cleanups run while threads hold leases
    finally:
        stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join, 30)
    await manager.shutdown()

    assert errors == [] and ledger.misuse == []
    assert all(uses), "every thread ran"
    assert len(ledger.built) == SWAPS + 1
    assert ledger.all_cleaned_once()
