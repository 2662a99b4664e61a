"""``DomainBridge.handle``'s fast path (issue 16): the manager's index of served handles.

``bridge.handle(key)`` reads a dict the manager keeps of every global slot
that serves something; everything else (tenants, misses) goes to
``LifecycleManager._handle``, the lookup that decided alone before.  Each test
checks, at every step, that the fast path answers exactly as that lookup does
(same handle object, or ``NotActiveError`` from both), with a real
``LifecycleManager`` and ``Resolver``.
"""

from __future__ import annotations

from typing import Any

import pytest

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import ActivationError, DomainBridge, LifecycleManager, NotActiveError
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _lookup(call: Any) -> Any:
    try:
        return call()
    except NotActiveError:
        return NotActiveError


def same_as_slow_path(
    bridge: DomainBridge[Any], key: str, tenant: str | None = None
) -> Any:
    """The bridge's answer, asserted equal to the manager's own lookup; returned."""
    fast = _lookup(lambda: bridge.handle(key, tenant=tenant))
    slow = _lookup(lambda: bridge.lifecycle._handle(bridge.domain, key, tenant))
    assert fast is slow, (key, tenant, fast, slow)
    return fast


async def test_before_activation_raises_not_active(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    with pytest.raises(NotActiveError, match="adapter/cache is not active"):
        bridge.handle("cache")
    with pytest.raises(NotActiveError):
        bridge.handle("cache", tenant="acme")
    await manager.activate("adapter", "queue")
    with pytest.raises(NotActiveError, match="active adapter keys: queue"):
        bridge.handle("cache")
    await manager.shutdown()


async def test_key_activated_after_the_bridge_was_created(make_manager: Any) -> None:
    manager = make_manager()
    early: DomainBridge[Any] = DomainBridge("adapter", manager)
    instance = await manager.activate("adapter", "cache")
    late: DomainBridge[Any] = DomainBridge("adapter", manager)
    handle = same_as_slow_path(early, "cache")
    assert handle is late.handle("cache") is early.handle("cache")
    assert handle.instance is instance

    # a swap updates the same handle in place; the bridge keeps returning it
    await manager.swap("adapter", "cache", "a")
    assert early.handle("cache") is handle
    assert handle.instance.provider == "a"
    await manager.shutdown()


async def test_other_domains_do_not_see_the_key(make_manager: Any, resolver: Resolver) -> None:
    resolver.register(Candidate("service", "cache", "s", lambda: object()))
    manager = make_manager()
    services: DomainBridge[Any] = DomainBridge("service", manager)
    await manager.activate("adapter", "cache")
    with pytest.raises(NotActiveError):
        services.handle("cache")
    await manager.activate("service", "cache")
    assert same_as_slow_path(services, "cache") is not same_as_slow_path(
        DomainBridge("adapter", manager), "cache"
    )
    await manager.shutdown()


async def test_shut_down_key_raises_not_active(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await manager.activate("adapter", "cache")
    await manager.activate("adapter", "queue")
    kept = bridge.handle("cache")
    await manager.shutdown()
    for key in ("cache", "queue"):
        assert same_as_slow_path(bridge, key) is NotActiveError
    with pytest.raises(NotActiveError, match="shut down"):
        bridge.handle("cache")
    with pytest.raises(NotActiveError):
        kept.instance.call()  # the kept handle's placeholder


async def test_failed_activation_raises_not_active(make_manager: Any, ledger: Any) -> None:
    ledger.behaviour["b"] = {"init_error": RuntimeError("no backend")}
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    with pytest.raises(ActivationError):
        await manager.activate("adapter", "cache")
    assert same_as_slow_path(bridge, "cache") is NotActiveError
    with pytest.raises(NotActiveError, match="its last activation failed"):
        bridge.handle("cache")
    ledger.behaviour.clear()
    instance = await manager.activate("adapter", "cache")
    assert same_as_slow_path(bridge, "cache").instance is instance
    await manager.shutdown()


async def test_failed_swap_keeps_the_handle(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    instance = await manager.activate("adapter", "cache")
    ledger.behaviour["a"] = {"health": False}
    with pytest.raises(Exception, match="health check"):
        await manager.swap("adapter", "cache", "a")
    assert same_as_slow_path(bridge, "cache").instance is instance
    await manager.shutdown()


async def test_override_of_an_inactive_key(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    double = object()
    with manager.override("adapter", "cache", double):
        during = same_as_slow_path(bridge, "cache")
        assert during.instance is double
    assert same_as_slow_path(bridge, "cache") is NotActiveError
    # the override's slot is gone; activation makes a new slot with a new handle
    instance = await manager.activate("adapter", "cache")
    after = same_as_slow_path(bridge, "cache")
    assert after is not during and after.instance is instance
    await manager.shutdown()


async def test_override_of_an_active_key(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    instance = await manager.activate("adapter", "cache")
    handle = bridge.handle("cache")
    double = object()
    with manager.override("adapter", "cache", double):
        assert same_as_slow_path(bridge, "cache") is handle
        assert handle.instance is double
    assert same_as_slow_path(bridge, "cache") is handle
    assert handle.instance is instance
    await manager.shutdown()


async def test_override_survives_shutdown_as_before(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await manager.activate("adapter", "cache")
    double = object()
    with manager.override("adapter", "cache", double):
        await manager.shutdown()
        assert same_as_slow_path(bridge, "cache").instance is double
    assert same_as_slow_path(bridge, "cache") is NotActiveError


async def test_tenant_without_a_selection_shares_the_global_handle(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    assert same_as_slow_path(bridge, "cache", "acme") is NotActiveError
    await manager.activate("adapter", "cache", tenant="acme")  # no selection: global slot
    shared = same_as_slow_path(bridge, "cache", "acme")
    assert shared is bridge.handle("cache") and shared.tenant is None
    await manager.shutdown()


async def test_tenant_gaining_and_losing_its_selection(
    make_manager: Any, resolver: Resolver
) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    glob = await manager.activate("adapter", "cache")
    global_handle = bridge.handle("cache")

    # gains a selection: it shares the global handle until its own slot is activated
    resolver.set_selections("adapter", {"cache": "a"}, tenant="acme")
    assert same_as_slow_path(bridge, "cache", "acme") is global_handle
    own = await manager.activate("adapter", "cache", tenant="acme")
    tenant_handle = same_as_slow_path(bridge, "cache", "acme")
    assert tenant_handle is not global_handle
    assert tenant_handle.tenant == "acme" and tenant_handle.instance is own
    assert own.provider == "a"
    # the global handle is untouched by the tenant's slot
    assert same_as_slow_path(bridge, "cache") is global_handle
    assert global_handle.instance is glob
    assert same_as_slow_path(bridge, "cache", "globex") is global_handle

    # loses it: its own slot stays and is swapped to the global winner
    resolver.set_selections("adapter", {}, tenant="acme")
    await apoll_until(
        lambda: tenant_handle.instance.provider == "b", message="tenant swapped back"
    )
    assert same_as_slow_path(bridge, "cache", "acme") is tenant_handle
    assert tenant_handle.instance is not glob
    assert same_as_slow_path(bridge, "cache") is global_handle
    await manager.shutdown()
    assert same_as_slow_path(bridge, "cache", "acme") is NotActiveError


async def test_tenant_slot_without_a_global_one(make_manager: Any, resolver: Resolver) -> None:
    resolver.set_selections("adapter", {"cache": "a"}, tenant="acme")
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    own = await manager.activate("adapter", "cache", tenant="acme")
    assert same_as_slow_path(bridge, "cache", "acme").instance is own
    assert same_as_slow_path(bridge, "cache") is NotActiveError
    assert same_as_slow_path(bridge, "cache", "globex") is NotActiveError
    await manager.shutdown()


async def test_one_bridge_over_many_managers_lifetimes(resolver: Resolver, config: Any) -> None:
    """Each manager has its own index: a bridge of a shut-down manager never serves."""
    first = LifecycleManager(resolver, config=config, write_status=False)
    old: DomainBridge[Any] = DomainBridge("adapter", first)
    await first.activate("adapter", "cache")
    await first.shutdown()
    second = LifecycleManager(resolver, config=config, write_status=False)
    new: DomainBridge[Any] = DomainBridge("adapter", second)
    instance = await second.activate("adapter", "cache")
    assert same_as_slow_path(old, "cache") is NotActiveError
    assert same_as_slow_path(new, "cache").instance is instance
    await second.shutdown()
