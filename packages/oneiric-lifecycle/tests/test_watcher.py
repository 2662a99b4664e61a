"""SelectionWatcher: edited files and the overlay become swaps; invalid files change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Resolver, load_settings, write_overlay
from oneiric.lifecycle import DomainBridge, LifecycleManager, SelectionWatcher
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _write(conf: Path, provider: str) -> None:
    (conf / "oneiric.toml").write_text(f'[adapter.selections]\ncache = "{provider}"\n')


def _bound(manager: LifecycleManager) -> str:
    return str(DomainBridge("adapter", manager).handle("cache").instance.provider)


@pytest.mark.parametrize("use_watchfiles", [True, False], ids=["watchfiles", "polling"])
async def test_edit_swaps_and_invalid_file_keeps_serving(
    make_manager: Any,
    resolver: Resolver,
    conf: Path,
    state: Path,
    use_watchfiles: bool,
    ledger: Any,
) -> None:
    manager = make_manager()
    watcher = SelectionWatcher(
        conf, None, resolver, lifecycle=manager, state_dir=state, use_watchfiles=use_watchfiles,
        poll_interval=1.0 if use_watchfiles else None,
    )
    async with watcher:
        assert watcher.mode == ("watchfiles" if use_watchfiles else "polling")
        await manager.activate("adapter", "cache")
        assert _bound(manager) == "a"

        _write(conf, "b")
        await apoll_until(lambda: _bound(manager) == "b", message="swap after editing the file")

        (conf / "oneiric.toml").write_text("[adapter.selections\ncache = ")
        await apoll_until(lambda: manager.status()["config"][0]["error"] is not None)
        error = manager.status()["config"][0]["error"]
        assert "oneiric.toml" in error and "invalid TOML" in error
        assert _bound(manager) == "b"  # still serving
        async with DomainBridge("adapter", manager).lease("cache") as obj:
            assert await obj.acall() == "b"
        assert resolver.selections("adapter") == {"cache": "b"}

        _write(conf, "a")
        await apoll_until(lambda: _bound(manager) == "a", message="recovers after the fix")
        assert manager.status()["config"][0]["error"] is None
    assert watcher.mode == "stopped"
    await manager.shutdown()
    assert ledger.all_cleaned_once()


async def test_overlay_written_by_oneiric_swap_is_applied(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path
) -> None:
    manager = make_manager()
    async with SelectionWatcher(
        conf, lambda d: load_settings(d, state_dir=state), resolver,
        lifecycle=manager, state_dir=state, use_watchfiles=False,
    ):
        await manager.activate("adapter", "cache")
        assert _bound(manager) == "a"
        write_overlay(state, "adapter", "cache", "b")
        await apoll_until(lambda: _bound(manager) == "b", message="overlay applied")
    await manager.shutdown()


async def test_invalid_settings_value_changes_nothing(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path
) -> None:
    manager = make_manager()
    watcher = SelectionWatcher(conf, None, resolver, lifecycle=manager, state_dir=state,
                               use_watchfiles=False)
    async with watcher:
        await manager.activate("adapter", "cache")
        (conf / "oneiric.toml").write_text(
            '[adapter.selections]\ncache = "b"\n[lifecycle]\ngrace_perod = 3\n'
        )
        await apoll_until(lambda: watcher.error is not None)
        assert "unknown [lifecycle] setting 'grace_perod'" in watcher.error
        assert resolver.selections("adapter") == {"cache": "a"} and _bound(manager) == "a"
        assert watcher.status()["failures"] == 1
    await manager.shutdown()


async def test_watcher_without_lifecycle_updates_selections_only(
    resolver: Resolver, conf: Path, state: Path
) -> None:
    async with SelectionWatcher(conf, None, resolver, state_dir=state, use_watchfiles=False) as w:
        assert resolver.selections("adapter") == {"cache": "a"}
        _write(conf, "b")
        await apoll_until(lambda: resolver.selections("adapter") == {"cache": "b"})
        assert w.reloads == 2 and w.error is None
