"""Status document, the snapshot file the CLI reads, and LifecycleConfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import ConfigError, load_settings
from oneiric.lifecycle import (
    HealthReport,
    LifecycleConfig,
    LifecycleManager,
    read_snapshots,
    snapshot_path,
)
from oneiric.testing import apoll_until


@pytest.mark.anyio
async def test_snapshot_is_written_and_removed(make_manager: Any, state: Path) -> None:
    manager: LifecycleManager = make_manager()
    await manager.activate("adapter", "cache")
    path = snapshot_path(state)
    assert manager.status_path == path
    await apoll_until(path.exists, message="snapshot written")
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and doc["pid"] > 0
    (entry,) = doc["keys"]
    assert (entry["domain"], entry["key"], entry["bound"], entry["winner"]) == (
        "adapter", "cache", "b", "b",
    )
    assert set(entry) >= {
        "tenant", "differs", "reason", "activity", "deferred", "swaps", "failures",
        "recent_failures", "swap_latency", "last_health", "post_swap_errors", "settings",
    }
    (listed,) = read_snapshots(state)
    assert listed["alive"] is True and listed["keys"][0]["bound"] == "b"
    await manager.swap("adapter", "cache", "a")
    await apoll_until(lambda: json.loads(path.read_text())["keys"][0]["bound"] == "a")
    await manager.shutdown()
    assert not path.exists() and read_snapshots(state) == []


def test_read_snapshots_skips_dead_and_unreadable(state: Path) -> None:
    directory = state / "status"
    directory.mkdir(parents=True)
    (directory / "1.json").write_text("{not json")
    (directory / "999999999.json").write_text(json.dumps({"pid": 999999999, "keys": []}))
    assert read_snapshots(state) == []
    (stale,) = read_snapshots(state, include_stale=True)
    assert stale["alive"] is False


@pytest.mark.anyio
async def test_write_status_false_writes_nothing(make_manager: Any, state: Path) -> None:
    manager = make_manager(write_status=False)
    await manager.activate("adapter", "cache")
    assert manager.write_status() is None and manager.status_path is None
    assert not (state / "status").exists()
    await manager.shutdown()


@pytest.mark.anyio
async def test_probe_records_failing_health(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    instance = await manager.activate("adapter", "cache")
    instance.health_value = HealthReport(False, "disk full")
    report = await manager.probe("adapter", "cache")
    assert report == HealthReport(False, "disk full")
    assert manager.status()["keys"][0]["last_health"]["detail"] == "disk full"
    instance.health_value = "yes"
    report = await manager.probe("adapter", "cache")
    assert not report.ok and "expected a bool or HealthReport" in report.detail
    await manager.shutdown()


@pytest.mark.anyio
async def test_status_filters_by_domain(make_manager: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    assert len(manager.status("adapter")["keys"]) == 1
    assert manager.status("service")["keys"] == []
    await manager.shutdown()


def test_config_from_settings(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "oneiric.toml").write_text("[lifecycle]\ngrace_period = 0.5\ninit_timeout = 3\n")
    config = LifecycleConfig.from_settings(load_settings(conf))
    assert config.grace_period == 0.5 and config.init_timeout == 3.0
    assert config.health_timeout == LifecycleConfig().health_timeout


def test_config_refuses_unknown_and_bad_values() -> None:
    with pytest.raises(ConfigError, match=r"unknown \[lifecycle\] setting 'grace'; expected"):
        LifecycleConfig.from_mapping({"grace": 1})
    with pytest.raises(ConfigError, match="invalid lifecycle setting init_timeout=-1"):
        LifecycleConfig(init_timeout=-1)
    with pytest.raises(ConfigError, match="invalid lifecycle setting grace_period='5s'"):
        LifecycleConfig.from_mapping({"grace_period": "5s"})
    with pytest.raises(ConfigError, match="health_timeout=True"):
        LifecycleConfig(health_timeout=True)


def test_manager_reads_config_from_settings(tmp_path: Path, resolver: Any) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "oneiric.toml").write_text("[lifecycle]\ngrace_period = 7\n")
    manager = LifecycleManager(resolver, settings=load_settings(conf))
    assert manager.config.grace_period == 7.0
