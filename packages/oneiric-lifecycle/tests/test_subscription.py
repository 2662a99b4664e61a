"""Who swaps: the lifecycle's resolver subscription (selection changes, greedy policy)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Candidate, Resolver, load_settings
from oneiric.lifecycle import DomainBridge, LifecycleManager
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _entry(manager: LifecycleManager) -> dict[str, Any]:
    return next(k for k in manager.status()["keys"] if k["key"] == "cache")


def _bound(manager: LifecycleManager) -> str:
    return str(DomainBridge("adapter", manager).handle("cache").instance.provider)


async def test_selection_change_swaps(make_manager: Any, resolver: Resolver, ledger: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    assert _bound(manager) == "b"
    resolver.set_selections("adapter", {"cache": "a"})
    await apoll_until(lambda: _bound(manager) == "a", message="swapped to the selection")
    entry = _entry(manager)
    assert entry["winner"] == "a" and entry["differs"] is False and entry["swaps"] == 1
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_selection_change_from_another_thread(make_manager: Any, resolver: Resolver) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    writer = threading.Thread(target=resolver.set_selections, args=("adapter", {"cache": "a"}))
    writer.start()
    writer.join()
    await apoll_until(lambda: _bound(manager) == "a", message="swap hopped to the loop")
    await manager.shutdown()


async def test_sticky_keeps_bound_when_a_better_candidate_appears(
    make_manager: Any, resolver: Resolver, ledger: Any
) -> None:
    now = [1_700_000_000.0]
    manager = make_manager(clock=lambda: now[0])
    await manager.activate("adapter", "cache")
    resolver.register(Candidate("adapter", "cache", "c", ledger.factory("c"), priority=9))
    await apoll_until(lambda: _entry(manager)["winner"] == "c" and _entry(manager)["differs"])
    entry = _entry(manager)
    await apoll_until(lambda: (_entry(manager)["reason"] or "").startswith("sticky since"))
    assert entry["bound"] == "b"
    assert "sticky since 2023-11-14T22:13:20.000Z" in _entry(manager)["reason"]
    assert _bound(manager) == "b" and len(ledger.built) == 1
    await manager.shutdown()


async def test_greedy_swaps_to_a_better_candidate(
    make_manager: Any, resolver: Resolver, ledger: Any, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "oneiric.toml").write_text('[adapter.swap_policy]\ncache = "greedy"\n')
    manager = make_manager(settings=load_settings(conf))
    await manager.activate("adapter", "cache")
    resolver.register(Candidate("adapter", "cache", "c", ledger.factory("c"), priority=9))
    await apoll_until(lambda: _bound(manager) == "c", message="greedy swap")
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_orphaned_when_bound_candidate_removed(
    make_manager: Any, resolver: Resolver
) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    resolver.unregister("adapter", "cache", "b", ("code", "app"))
    await apoll_until(lambda: (_entry(manager)["reason"] or "").startswith("orphaned"))
    assert _bound(manager) == "b"  # keeps serving
    assert _entry(manager)["winner"] == "a"
    await manager.shutdown()


async def test_failed_automatic_swap_is_shown(
    make_manager: Any, resolver: Resolver, ledger: Any
) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    ledger.behaviour["a"] = {"init_error": RuntimeError("auth failed")}
    resolver.set_selections("adapter", {"cache": "a"})
    await apoll_until(lambda: (_entry(manager)["reason"] or "").startswith("failed swap to a"))
    assert "auth failed" in _entry(manager)["reason"] and _bound(manager) == "b"
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_unavailable_selection_keeps_serving(
    make_manager: Any, resolver: Resolver
) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    resolver.set_selections("adapter", {"cache": "ghost"})
    await apoll_until(lambda: _entry(manager)["winner_error"] is not None)
    entry = _entry(manager)
    assert "'ghost'" in entry["winner_error"] and entry["reason"].startswith("winner unavailable")
    assert _bound(manager) == "b"
    await manager.shutdown()
