"""Finished runs older than the engine's retention are pruned (default 14 days), at host start.

An injected clock ages the runs; the real SQLite store in the host's state dir.
Running runs are never pruned, whatever their age.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.core import ConfigError, Resolver
from oneiric.lifecycle import Host, LifecycleConfig, LifecycleManager
from oneiric.runtime import MemoryCheckpointStore, RunRecord, WorkflowEngine, engine_for
from oneiric.runtime._engine import DEFAULT_RETENTION
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio
DAY = 86400.0


def _record(run_id: str, status: str, at: float) -> RunRecord:
    return RunRecord(run_id, "wf", 1, "h", None, status, at, at,
                     finished_at=at if status != "running" else None)


async def test_engine_prunes_finished_runs_past_retention_and_keeps_running_ones() -> None:
    now = [100 * DAY]
    store = MemoryCheckpointStore(clock=lambda: now[0])
    lifecycle = LifecycleManager(Resolver(), activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    engine = WorkflowEngine(lifecycle, store=store, clock=lambda: now[0])
    assert engine.retention == DEFAULT_RETENTION == 14 * DAY
    for run_id, status, age in [("old-ok", "succeeded", 15), ("old-failed", "failed", 20),
                                ("old-running", "running", 30), ("young", "succeeded", 13)]:
        store.create_run(_record(run_id, status, now[0] - age * DAY), ["a"])
    assert engine.prune() == 2
    assert sorted(r.run_id for r in engine.runs()) == ["old-running", "young"]
    kept = WorkflowEngine(lifecycle, store=store, retention=None)
    store.create_run(_record("ancient", "succeeded", 0.0), ["a"])
    assert kept.prune() == 0 and store.get_run("ancient") is not None
    await lifecycle.shutdown()


@pytest.mark.parametrize("bad", [0, -1, "soon", "0s"])
def test_attack_retention_that_is_no_positive_duration_is_refused(bad: object) -> None:
    lifecycle = LifecycleManager(Resolver(), activity_store=False, write_status=False)
    with pytest.raises(ConfigError, match="retention") as info:
        WorkflowEngine(lifecycle, retention=bad)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


async def test_a_host_prunes_runs_past_retention_at_start(tmp_path: Path) -> None:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text("[lifecycle]\nhealth_interval = 0\n")
    state = tmp_path / "state"
    import time

    async with Host(config, state_dir=state, watch=False) as host:
        store = engine_for(host.lifecycle).store
        store.create_run(_record("old", "succeeded", time.time() - 15 * DAY), ["a"])
        store.create_run(_record("new", "succeeded", time.time() - 1 * DAY), ["a"])
        store.set_run("old", status="succeeded")  # set_run stamps updated_at now ...
    import sqlite3

    with sqlite3.connect(state / "workflows.sqlite") as conn:  # ... so age it in the file
        conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = 'old'",
                     (time.time() - 15 * DAY,))
    conn.close()
    async with Host(config, state_dir=state, watch=False) as host:
        engine = engine_for(host.lifecycle)
        await apoll_until(lambda: [r.run_id for r in engine.runs()] == ["new"],
                          message="the old run pruned at start")
