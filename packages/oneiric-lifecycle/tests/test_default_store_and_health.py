"""Issue 11 (Deliver 2): the default activity store is honoured, and health never goes stale.

Before: a ``LifecycleManager`` built without ``activity_store=`` ignored
``oneiric pause`` (the CLI reported success), and ``last_health`` was only what
the component answered at bind, so ``oneiric health`` said "fine" during an outage.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import ComponentPaused, ConfigError
from oneiric.core.helpers import ACTIVITY_FILE
from oneiric.lifecycle import (
    ActivityStore,
    DomainBridge,
    HealthReport,
    LifecycleConfig,
    LifecycleManager,
    read_snapshots,
)
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


def _pause_from_another_process(state: Path, domain: str, key: str) -> None:
    code = (
        "import sys; from oneiric.lifecycle import ActivityStore;"
        "ActivityStore(sys.argv[1]).pause(sys.argv[2], sys.argv[3], note='maintenance')"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(state / ACTIVITY_FILE), domain, key], check=True
    )


async def test_attack_pause_ignored_without_activity_store_argument(
    make_manager: Any, state: Path
) -> None:
    manager: LifecycleManager = make_manager()  # no activity_store=: the default store
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await manager.activate("adapter", "cache")
    async with bridge.lease("cache"):
        pass
    _pause_from_another_process(state, "adapter", "cache")

    async def refused() -> bool:
        try:
            async with bridge.lease("cache"):
                return False
        except ComponentPaused:
            return True

    await apoll_until(refused, message="the pause written by another process is honoured")
    assert manager.status()["activity"]["path"] == str(state / ACTIVITY_FILE)
    ActivityStore(state / ACTIVITY_FILE).resume("adapter", "cache")

    async def accepted() -> bool:
        try:
            async with bridge.lease("cache"):
                return True
        except ComponentPaused:
            return False

    await apoll_until(accepted, message="resume is honoured")
    await manager.shutdown()


async def test_activity_store_false_disables_the_default(make_manager: Any, state: Path) -> None:
    manager: LifecycleManager = make_manager(activity_store=False)
    await manager.activate("adapter", "cache")
    assert manager.activity_store is None
    assert manager.status()["activity"]["path"] is None
    await manager.shutdown()
    assert not (state / ACTIVITY_FILE).exists()


async def test_attack_health_stale_after_bind(
    make_manager: Any, ledger: Any, config: LifecycleConfig, state: Path
) -> None:
    manager: LifecycleManager = make_manager(config=config.replace(health_interval=0.02))
    component = await manager.activate("adapter", "cache")

    def health_in_snapshot() -> dict[str, Any] | None:
        for doc in read_snapshots(state):
            for key in doc["keys"]:
                if key["key"] == "cache":
                    return key["last_health"]
        return None

    await apoll_until(
        lambda: (h := health_in_snapshot()) is not None and h["ok"] is True,
        message="a healthy probe in the snapshot",
    )
    component.health_value = HealthReport(False, "redis at x: connection refused")
    await apoll_until(
        lambda: (h := health_in_snapshot()) is not None
        and h["ok"] is False
        and "connection refused" in str(h["detail"]),
        message="the outage shows in the snapshot within a probe interval",
    )
    # A failing probe reports only: the instance stays bound, nothing swapped.
    assert manager.status()["keys"][0]["bound"] == "b"
    assert manager.status()["keys"][0]["swaps"] == 0
    assert component.cleaned == 0
    component.health_value = True
    await apoll_until(
        lambda: (h := health_in_snapshot()) is not None and h["ok"] is True,
        message="recovery shows in the snapshot",
    )
    await manager.shutdown()


def test_health_interval_defaults_and_settings() -> None:
    assert LifecycleConfig().health_interval == 15.0
    assert LifecycleConfig.from_mapping({"health_interval": 2}).health_interval == 2.0
    with pytest.raises(ConfigError, match="health_interval"):
        LifecycleConfig.from_mapping({"health_interval": "soon"})
    assert json.dumps(LifecycleConfig().as_dict())


async def test_attack_unusable_state_dir_for_default_store_reports_not_crashes(
    make_manager: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    manager: LifecycleManager = make_manager(state_dir=blocker, write_status=False)
    await manager.activate("adapter", "cache")  # serving goes on
    error = manager.status()["activity"]["error"]
    assert error is not None and "not-a-dir" in error and "\n" not in error
    assert manager.activity_store is None
    await manager.shutdown()


async def test_activity_poll_interval_zero_reads_activity_at_start_and_runs_no_timer(
    make_manager: Any, config: LifecycleConfig, state: Path
) -> None:
    """``activity_poll_interval = 0`` (the serverless profile): no background poll task.

    A pause written before start is still honoured (read when the manager binds
    its loop); a later write by this process is seen at once (subscription).
    """
    state.mkdir(parents=True, exist_ok=True)
    _pause_from_another_process(state, "adapter", "queue")
    manager: LifecycleManager = make_manager(
        config=config.replace(activity_poll_interval=0, health_interval=0)
    )
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await manager.activate("adapter", "cache")
    await manager.activate("adapter", "queue")
    try:
        assert manager._poll_task is None and manager._health_task is None
        with pytest.raises(ComponentPaused):
            async with bridge.lease("queue"):
                pass
        assert manager.activity_store is not None
        manager.activity_store.pause("adapter", "cache", note="now")
        await apoll_until(
            lambda: manager.activity("adapter", "cache") == "paused",
            message="this process's own pause is applied without a poll",
        )
    finally:
        await manager.shutdown()


async def test_apply_activity_feeds_decisions_from_another_control_plane(
    make_manager: Any,
) -> None:
    """``apply_activity`` (oneiric-fleet's redis plane): the same effects as a store write."""
    from oneiric.lifecycle import ActivityRecord

    manager: LifecycleManager = make_manager(activity_store=False)
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await manager.activate("adapter", "cache")
    try:
        manager.apply_activity([ActivityRecord("adapter", "cache", "paused", note="fleet")])
        assert manager.activity("adapter", "cache") == "paused"
        with pytest.raises(ComponentPaused):
            async with bridge.lease("cache"):
                pass
        manager.apply_activity([])  # every key active again
        async with bridge.lease("cache"):
            pass
        assert manager.status()["keys"][0]["activity"]["state"] == "active"
    finally:
        await manager.shutdown()
