"""What the swap skips when nothing uses it (issue 16), and that it still does it when used."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from oneiric.core import hookimpl

pytestmark = pytest.mark.anyio


async def test_bound_is_logged_when_info_is_enabled(
    make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    caplog.set_level(logging.INFO, logger="oneiric.lifecycle.manager")
    await manager.swap("adapter", "cache", "a")
    bound = [r for r in caplog.records if "bound" in str(r.msg)]
    assert bound and "'provider': 'a'" in str(bound[-1].msg)
    await manager.shutdown()


async def test_bound_is_not_logged_below_the_level(
    make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    caplog.set_level(logging.WARNING, logger="oneiric.lifecycle.manager")
    caplog.clear()  # activation's own record, kept when an earlier test enabled INFO
    await manager.swap("adapter", "cache", "a")
    assert not [r for r in caplog.records if "bound" in str(r.msg)]
    await manager.shutdown()


async def test_swap_hooks_run_when_registered(make_manager: Any, swap_plugin: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    result = await manager.swap("adapter", "cache", "a")
    assert result.new_provider == "a"
    assert [t.new_provider for t in swap_plugin.pre] == ["b", "a"]
    assert [t.new_provider for t in swap_plugin.post] == ["b", "a"]
    handle = manager._slots[("adapter", "cache", None)].handle
    assert swap_plugin.pre[-1].new_instance is swap_plugin.post[-1].new_instance is handle.instance
    await manager.shutdown()


async def test_swap_hooks_registered_later_run_and_unregistered_ones_stop(
    make_manager: Any,
) -> None:
    """The manager remembers pluggy's lists, not their contents: a plugin registered after
    the first swap is called by the next one, and not after it is unregistered."""
    from oneiric.core import get_plugin_manager

    plugins = get_plugin_manager()
    manager = make_manager()
    await manager.activate("adapter", "cache")
    await manager.swap("adapter", "cache", "a")
    seen: list[tuple[str, str]] = []

    class Late:
        @hookimpl
        def oneiric_pre_swap(self, transition: Any) -> None:
            seen.append(("pre", transition.new_provider))

        @hookimpl
        def oneiric_post_swap(self, transition: Any) -> None:
            seen.append(("post", transition.new_provider))

    plugins.register(Late(), name="test-late-swap-plugin")
    try:
        await manager.swap("adapter", "cache", "b")
    finally:
        plugins.unregister(name="test-late-swap-plugin")
    await manager.swap("adapter", "cache", "a")
    assert seen == [("pre", "b"), ("post", "b")]
    await manager.shutdown()


async def test_swap_hooks_of_a_given_plugin_manager(make_manager: Any) -> None:
    """``hooks=`` (not the process-wide manager): its implementations are the ones called."""
    from oneiric.core import new_plugin_manager

    own = new_plugin_manager()
    seen: list[str] = []

    class Own:
        @hookimpl
        def oneiric_post_swap(self, transition: Any) -> None:
            seen.append(transition.new_provider)

    manager = make_manager(hooks=own)
    await manager.activate("adapter", "cache")
    await manager.swap("adapter", "cache", "a")
    own.register(Own())
    await manager.swap("adapter", "cache", "b")
    assert seen == ["b"]
    await manager.shutdown()


def test_swap_result_built_fast_equals_the_dataclass() -> None:
    """``swap_result`` fills the frozen dataclass's slots directly: same fields, same order."""
    import dataclasses

    from oneiric.lifecycle import HealthReport, SwapResult
    from oneiric.lifecycle._swap import swap_result

    args = ("adapter", "cache", "t1", "a", "b", True, HealthReport(False, "x"), 0.5, "why")
    fast, plain = swap_result(*args), SwapResult(*args)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert fast.as_dict() == plain.as_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.domain = "other"  # type: ignore[misc]


async def test_old_instance_without_cleanup_needs_no_task(make_manager: Any) -> None:
    """Nothing to clean up and no lease held: no background task; with a lease held the
    retired binding still counts in flight until the lease ends."""
    from oneiric.core import Candidate, Resolver
    from oneiric.lifecycle import DomainBridge

    class Bare:  # no cleanup(): a plain object
        pass

    resolver = Resolver(stack_order={})
    resolver.register(Candidate("adapter", "bare", "a", Bare))
    resolver.register(Candidate("adapter", "bare", "b", Bare, priority=-1))
    manager = make_manager(resolver=resolver)
    await manager.activate("adapter", "bare")
    slot = manager._slots[("adapter", "bare", None)]
    await manager.swap("adapter", "bare", "b")
    assert not manager._tasks and not slot.retiring

    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    with bridge.lease_sync("bare"):
        await manager.swap("adapter", "bare", "a")
        assert len(slot.retiring) == 1 and slot.in_flight() == 1
    for _ in range(5):
        await asyncio.sleep(0)
    assert not slot.retiring and slot.in_flight() == 0
    await manager.shutdown()
    assert not manager._tasks
