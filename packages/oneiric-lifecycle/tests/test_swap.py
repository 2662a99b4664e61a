"""Swaps: bind order, rollback on every failure, force, serialization, leases and grace."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from oneiric.core import get_plugin_manager, hookimpl
from oneiric.lifecycle import (
    ActivationError,
    DomainBridge,
    HealthCheckFailed,
    HealthReport,
    LifecycleManager,
    SwapError,
    SwapTimeout,
    SwapVetoed,
)
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


async def _active(make_manager: Any, **kwargs: Any) -> tuple[LifecycleManager, Any]:
    manager = make_manager(**kwargs)
    old = await manager.activate("adapter", "cache", "a")
    return manager, old


def _entry(manager: LifecycleManager) -> dict[str, Any]:
    return next(k for k in manager.status()["keys"] if k["key"] == "cache")


async def _assert_rolled_back(manager: LifecycleManager, old: Any, ledger: Any) -> None:
    """The old instance is bound and working; every other built instance was cleaned up."""
    handle = DomainBridge("adapter", manager).handle("cache")
    assert handle.instance is old and old.call() == "a" and old.cleaned == 0
    async with DomainBridge("adapter", manager).lease("cache") as leased:
        assert await leased.acall() == "a"
    await apoll_until(
        lambda: all(c.cleaned == 1 for c in ledger.built if c is not old),
        message="failed instances cleaned up",
    )


async def test_swap_binds_new_then_cleans_old(
    make_manager: Any, ledger: Any, swap_plugin: Any
) -> None:
    manager, old = await _active(make_manager)
    result = await manager.swap("adapter", "cache", "b")
    assert (result.old_provider, result.new_provider, result.forced) == ("a", "b", False)
    assert result.health == HealthReport(True, "")
    handle = DomainBridge("adapter", manager).handle("cache")
    assert handle.instance.provider == "b"
    await apoll_until(lambda: old.cleaned == 1, message="old instance cleaned up")
    # hooks saw the transition before and after bind
    pre, post = swap_plugin.pre[-1], swap_plugin.post[-1]
    assert (pre.old_provider, pre.new_provider, pre.reason) == ("a", "b", "manual swap")
    assert post.new_instance is handle.instance
    entry = _entry(manager)
    assert entry["swaps"] == 1 and entry["swap_latency"]["count"] == 2
    assert entry["differs"] is False  # b is also the winner
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_swap_to_the_bound_provider_rebuilds(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    await manager.swap("adapter", "cache", "a")
    new = DomainBridge("adapter", manager).handle("cache").instance
    assert new is not old and new.provider == "a"
    await apoll_until(lambda: old.cleaned == 1)
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_swap_without_provider_uses_the_winner(make_manager: Any) -> None:
    manager, _ = await _active(make_manager)
    result = await manager.swap("adapter", "cache")
    assert result.new_provider == "b"
    await manager.shutdown()


async def test_init_raises_rolls_back(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"init_error": RuntimeError("db down")}
    with pytest.raises(ActivationError) as info:
        await manager.swap("adapter", "cache", "b")
    assert str(
        info.value
    ) == "init() of adapter/cache/b raised RuntimeError: db down; 'a' keeps serving"
    await _assert_rolled_back(manager, old, ledger)
    failure = _entry(manager)["recent_failures"][-1]
    assert failure["kind"] == "ActivationError" and "db down" in failure["error"]
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_factory_raising_rolls_back(make_manager: Any, resolver: Any, ledger: Any) -> None:
    from oneiric.core import Candidate

    def explode() -> Any:
        raise ValueError("bad wiring")

    resolver.register(Candidate("adapter", "cache", "boom", explode))
    manager, old = await _active(make_manager)
    with pytest.raises(ActivationError, match="factory of adapter/cache/boom raised ValueError"):
        await manager.swap("adapter", "cache", "boom")
    await _assert_rolled_back(manager, old, ledger)
    await manager.shutdown()


async def test_health_false_rolls_back(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"health": HealthReport(False, "replica lag 40s")}
    with pytest.raises(HealthCheckFailed, match="of adapter/cache/b failed: replica lag 40s"):
        await manager.swap("adapter", "cache", "b")
    await _assert_rolled_back(manager, old, ledger)
    assert _entry(manager)["recent_failures"][-1]["kind"] == "HealthCheckFailed"
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_health_timeout_rolls_back(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"health_gate": asyncio.Event()}  # never set: health hangs
    with pytest.raises(SwapTimeout, match=r"health\(\) of adapter/cache/b did not finish within"):
        await manager.swap("adapter", "cache", "b")
    await _assert_rolled_back(manager, old, ledger)
    assert _entry(manager)["recent_failures"][-1]["kind"] == "SwapTimeout"
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_pre_swap_veto_rolls_back(make_manager: Any, ledger: Any, swap_plugin: Any) -> None:
    manager, old = await _active(make_manager)
    swap_plugin.veto = "change freeze until Monday"
    with pytest.raises(SwapVetoed, match="vetoed by a pre-swap hook: change freeze until Monday"):
        await manager.swap("adapter", "cache", "b")
    await _assert_rolled_back(manager, old, ledger)
    entry = _entry(manager)
    assert "change freeze" in entry["recent_failures"][-1]["error"]
    assert swap_plugin.post == [swap_plugin.post[0]]  # only the activation was observed
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_pre_swap_hook_timeout_rolls_back(
    make_manager: Any, ledger: Any, swap_plugin: Any
) -> None:
    manager, old = await _active(make_manager)
    swap_plugin.hang = asyncio.Event()  # the hook returns an awaitable that never completes
    with pytest.raises(SwapTimeout, match="pre-swap hook for adapter/cache/b did not answer"):
        await manager.swap("adapter", "cache", "b")
    await _assert_rolled_back(manager, old, ledger)
    swap_plugin.hang = None
    await manager.shutdown()


async def test_cancellation_mid_init_rolls_back(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    gate = asyncio.Event()
    ledger.behaviour["b"] = {"init_gate": gate}
    task = asyncio.ensure_future(manager.swap("adapter", "cache", "b"))
    await apoll_until(
        lambda: any(c.provider == "b" and c.init_started for c in ledger.built),
        message="init of b started",
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _assert_rolled_back(manager, old, ledger)
    failure = _entry(manager)["recent_failures"][-1]
    assert failure["kind"] == "cancelled" and failure["provider"] == "b"
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_post_swap_hook_error_is_recorded_not_raised(
    make_manager: Any, ledger: Any, swap_plugin: Any
) -> None:
    manager, old = await _active(make_manager)
    swap_plugin.raise_post = RuntimeError("metrics sink down")
    result = await manager.swap("adapter", "cache", "b")
    assert result.new_provider == "b"
    entry = _entry(manager)
    assert entry["bound"] == "b"
    assert any("metrics sink down" in e for e in entry["post_swap_errors"])
    await apoll_until(lambda: old.cleaned == 1)
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_force_binds_unhealthy(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"health": False}
    result = await manager.swap("adapter", "cache", "b", force=True)
    assert result.forced and result.health == HealthReport(False, "health() returned False")
    assert DomainBridge("adapter", manager).handle("cache").instance.provider == "b"
    assert _entry(manager)["last_health"]["ok"] is False
    await apoll_until(lambda: old.cleaned == 1)
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_force_never_binds_failed_init(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"init_error": RuntimeError("no schema")}
    with pytest.raises(ActivationError, match="no schema"):
        await manager.swap("adapter", "cache", "b", force=True)
    await _assert_rolled_back(manager, old, ledger)
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_concurrent_swaps_serialize_and_leak_nothing(make_manager: Any, ledger: Any) -> None:
    manager, _ = await _active(make_manager)
    ledger.behaviour["b"] = {}
    results = await asyncio.gather(
        *(manager.swap("adapter", "cache", "ab"[i % 2]) for i in range(20)),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    # each swap saw the previous one's result as its old provider: they ran one at a time
    for prev, nxt in itertools.pairwise(results):
        assert nxt.old_provider == prev.new_provider  # type: ignore[union-attr]
    bound = DomainBridge("adapter", manager).handle("cache").instance
    await apoll_until(lambda: ledger.live() == [bound], message="only the bound instance alive")
    await manager.shutdown()
    assert ledger.all_cleaned_once() and len(ledger.built) == 21


async def test_old_instance_waits_for_its_leases(make_manager: Any, ledger: Any) -> None:
    manager, old = await _active(make_manager)
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    release = asyncio.Event()
    inside = asyncio.Event()

    async def user() -> str:
        async with bridge.lease("cache") as obj:
            inside.set()
            await release.wait()
            return str(await obj.acall())

    task = asyncio.ensure_future(user())
    await inside.wait()
    await manager.swap("adapter", "cache", "b")
    assert bridge.handle("cache").instance.provider == "b"
    entry = _entry(manager)
    assert entry["activity"]["in_flight"] == 1 and old.cleaned == 0
    release.set()
    assert await task == "a"  # the lease kept the old instance alive across awaits
    await apoll_until(lambda: old.cleaned == 1, message="old cleaned after its lease")
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_grace_period_defers_cleanup_until_shutdown(
    make_manager: Any, config: Any, ledger: Any
) -> None:
    manager, old = await _active(make_manager, config=config.replace(grace_period=3600))
    await manager.swap("adapter", "cache", "b")
    await asyncio.sleep(0.05)
    assert old.cleaned == 0  # within an hour-long grace period
    await manager.shutdown()  # shutdown waits for every pending cleanup
    assert old.cleaned == 1 and ledger.all_cleaned_once()


async def test_shutdown_in_reverse_activation_order(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    order: list[str] = []
    first = await manager.activate("adapter", "queue")
    second = await manager.activate("adapter", "cache")
    for comp in (first, second):
        original = comp.cleanup

        async def cleanup(comp: Any = comp, original: Any = original) -> None:
            order.append(comp.provider)
            await original()

        comp.cleanup = cleanup
    await manager.shutdown()
    assert order == ["b", "x"]


async def test_swap_error_hierarchy_is_catchable_as_swap_error(
    make_manager: Any, ledger: Any
) -> None:
    manager, old = await _active(make_manager)
    ledger.behaviour["b"] = {"init_error": RuntimeError("x")}
    with pytest.raises(SwapError):
        await manager.swap("adapter", "cache", "b")
    assert DomainBridge("adapter", manager).handle("cache").instance is old
    await manager.shutdown()


async def test_cleanup_error_is_recorded(make_manager: Any, ledger: Any) -> None:
    ledger.behaviour["a"] = {"cleanup_error": RuntimeError("socket already closed")}
    manager, old = await _active(make_manager)
    await manager.swap("adapter", "cache", "b")
    await apoll_until(lambda: old.cleaned == 1)
    await apoll_until(
        lambda: any("socket already closed" in e for e in _entry(manager)["component_errors"])
    )
    await manager.shutdown()


class _NoArgPostSwap:
    """Valid for pluggy: an implementation may declare a subset (here none) of the arguments."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def oneiric_post_swap(self) -> None:
        self.calls += 1


class _ObservingPostSwapWrapper:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def oneiric_post_swap(self, transition: Any) -> Any:
        result = yield
        self.seen.append(transition.new_provider)
        return result


async def test_attack_post_swap_hooks_keep_pluggy_semantics(
    make_manager: Any, ledger: Any, swap_plugin: Any
) -> None:
    """A no-argument implementation and an observing wrapper are not errors; each runs."""
    manager, old = await _active(make_manager)
    no_arg, wrapper = _NoArgPostSwap(), _ObservingPostSwapWrapper()
    hooks = get_plugin_manager()
    hooks.register(no_arg, name="test-noarg-post")
    hooks.register(wrapper, name="test-wrapper-post")
    try:
        await manager.swap("adapter", "cache", "b")
        entry = _entry(manager)
        await apoll_until(lambda: old.cleaned == 1)
        await manager.shutdown()
    finally:
        hooks.unregister(name="test-noarg-post")
        hooks.unregister(name="test-wrapper-post")
    assert no_arg.calls == 1 and swap_plugin.post[-1].new_provider == "b"
    assert wrapper.seen == ["b", "b"]  # it wraps each isolated call
    assert entry["post_swap_errors"] == []
    assert ledger.all_cleaned_once()


async def test_lease_names_the_provider_it_holds_across_a_swap(make_manager: Any) -> None:
    """A lease reports the provider of *its* instance, not the newer winner."""
    manager, _old = await _active(make_manager)
    lease = DomainBridge("adapter", manager).lease("cache")
    assert lease.provider is None  # not held yet
    async with lease as held:
        assert lease.provider == "a" == held.provider
        await manager.swap("adapter", "cache", "b")
        assert lease.provider == "a"  # still the instance this lease holds
    assert lease.provider is None
    async with DomainBridge("adapter", manager).lease("cache") as held:
        assert held.provider == "b"
    with manager.override("adapter", "cache", object()):
        override = DomainBridge("adapter", manager).lease("cache")
        with override:
            assert override.provider is None
    await manager.shutdown()
