"""Issue 11: a re-issued selection (same provider, overlay rewritten) retries a failed swap.

Without a CLI: ``write_overlay`` is what ``oneiric swap`` calls; this process
runs the lifecycle and the watcher.  A re-issue on a paused key is deferred
like any swap and applied after resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Resolver, write_overlay
from oneiric.lifecycle import ActivityStore, DomainBridge, SelectionWatcher
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _provider(manager: Any) -> str:
    return str(DomainBridge("adapter", manager).handle("cache").instance.provider)


def _entry(manager: Any) -> dict[str, Any]:
    return dict(manager.status()["keys"][0])


async def test_attack_reissued_selection_on_a_paused_key_is_deferred_then_applied(
    make_manager: Any, resolver: Resolver, ledger: Any, state: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = ActivityStore(state / "activity.sqlite")
    manager = make_manager(activity_store=store, state_dir=state)
    watcher = SelectionWatcher(conf, None, resolver, lifecycle=manager, state_dir=state,
                               use_watchfiles=False)
    async with watcher:
        await manager.activate("adapter", "cache")
        assert _provider(manager) == "b"
        ledger.behaviour["a"] = {"init_error": ConnectionError("a is down")}
        write_overlay(state, "adapter", "cache", "a")
        await apoll_until(lambda: _entry(manager)["failures"] >= 1, message="swap to a fails")
        assert _provider(manager) == "b"

        ledger.behaviour.pop("a")  # a recovered
        store.pause("adapter", "cache", note="maintenance")
        await apoll_until(lambda: manager.activity("adapter", "cache") == "paused")
        reloads = watcher.reloads
        write_overlay(state, "adapter", "cache", "a")  # re-issued while paused
        await apoll_until(lambda: watcher.reloads > reloads, message="overlay reloaded")
        await apoll_until(lambda: _entry(manager)["deferred"] is not None,
                          message="the re-issued swap to be deferred")
        assert _provider(manager) == "b"

        store.resume("adapter", "cache")
        await apoll_until(lambda: _provider(manager) == "a", message="applied after resume")
    await manager.shutdown()
    store.close()
    assert ledger.all_cleaned_once()
