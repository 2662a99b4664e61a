"""``SlotTable``: the manager's slots indexed by (domain, key), so a change touches only its key's.

The index must follow every insertion and removal exactly - a stale entry
would swap a slot that is gone, a missing one would never swap a bound key.
"""

from __future__ import annotations

from typing import Any

import pytest

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.lifecycle._slot import Slot, SlotTable
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _slot(domain: str, key: str, tenant: str | None = None) -> Slot:
    from oneiric.lifecycle._handle import Handle

    return Slot(domain, key, tenant, Handle(domain, key, tenant, None))


def test_the_index_follows_insertions_and_removals() -> None:
    table = SlotTable()
    a, b, c = _slot("adapter", "cache"), _slot("adapter", "cache", "acme"), _slot("x", "y")
    table[("adapter", "cache", None)] = a
    table[("adapter", "cache", "acme")] = b
    table[("x", "y", None)] = c
    assert table.of("adapter", "cache") == [a, b] and table.of("x", "y") == [c]
    assert table.of("nope", "none") == []
    del table[("adapter", "cache", None)]
    assert table.of("adapter", "cache") == [b] and len(table) == 2
    del table[("adapter", "cache", "acme")]
    assert table.of("adapter", "cache") == [] and list(table) == [("x", "y", None)]
    table[("x", "y", None)] = a  # replaced in place
    assert table.of("x", "y") == [a]


async def test_a_registration_swaps_its_key_among_hundreds_and_no_other() -> None:
    resolver = Resolver()
    with resolver.batch():
        for i in range(500):
            resolver.register(Candidate("adapter", f"k{i}", "a", object))
    manager = LifecycleManager(resolver, activity_store=False, write_status=False,
                               config=LifecycleConfig(grace_period=0, health_interval=0))
    try:
        for i in range(500):
            await manager.activate("adapter", f"k{i}")
        resolver.register(Candidate("adapter", "k234", "b", object, priority=5))
        resolver.set_selections("adapter", {"k234": "b"})

        def by_key() -> dict[str, Any]:
            return {k["key"]: k for k in manager.status()["keys"]}

        await apoll_until(lambda: by_key()["k234"]["bound"] == "b", message="k234 swapped")
        keys = by_key()
        assert keys["k234"]["swaps"] == 1
        assert sum(k["swaps"] for k in keys.values()) == 1  # no other key was touched
    finally:
        await manager.shutdown()
