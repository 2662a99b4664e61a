"""ActivityStore on real SQLite files, and pause/drain/resume across real processes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import InvalidCandidateError, Resolver
from oneiric.lifecycle import (
    ActivityRecord,
    ActivityStore,
    ActivityStoreError,
    ComponentDraining,
    ComponentPaused,
    DomainBridge,
    LifecycleManager,
)
from oneiric.testing import apoll_until

# What `oneiric pause|drain|resume` will do: another process writing the same file.
CLI = r"""
import sys, time, pathlib
from oneiric.lifecycle import ActivityStore, read_snapshots

path, action, domain, key = sys.argv[1:5]
with ActivityStore(path, actor="operator") as store:
    getattr(store, action)(domain, key, note="from another process")
if sys.argv[5:6] == ["--wait-drained"]:
    state = pathlib.Path(sys.argv[6])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for doc in read_snapshots(state):
            for entry in doc["keys"]:
                same = (entry["domain"], entry["key"]) == (domain, key)
                if same and entry["activity"]["drained"]:
                    print("drained", flush=True)
                    sys.exit(0)
        time.sleep(0.02)
    print("not drained", flush=True)
    sys.exit(3)
print(action, "ok", flush=True)
"""


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _run_cli(*args: str) -> str:
    proc = await _cli(*args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


# ----------------------------------------------------------------- the store


def test_store_records_decisions_with_note_actor_and_time(tmp_path: Path) -> None:
    clock = iter([100.0, 200.0, 300.0])
    with ActivityStore(tmp_path / "a.sqlite", clock=lambda: next(clock), actor="alice") as store:
        assert store.get("adapter", "cache") == ActivityRecord("adapter", "cache")
        store.pause("adapter", "cache", note="rotating keys")
        assert store.get("adapter", "cache") == ActivityRecord(
            "adapter", "cache", "paused", "rotating keys", "alice", 100.0
        )
        store.drain("adapter", "cache", actor="bob")
        store.resume("adapter", "cache")
        assert store.get("adapter", "cache").state == "active"
        assert [r.state for r in store.history()] == ["active", "draining", "paused"]
        assert [r.actor for r in store.history()] == ["alice", "bob", "alice"]
        expected = ActivityRecord("adapter", "cache", "active", "", "alice", 300.0)
        assert store.records() == (expected,)
        mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_store_reuses_one_connection_per_thread(tmp_path: Path) -> None:
    with ActivityStore(tmp_path / "a.sqlite") as store:
        for _ in range(20):
            store.pause("adapter", "cache")
            store.get("adapter", "cache")
        assert len(store._connections) == 1


def test_store_refuses_bad_names_and_writes_nothing(tmp_path: Path) -> None:
    with ActivityStore(tmp_path / "a.sqlite") as store:
        with pytest.raises(InvalidCandidateError, match="invalid key name 'No Such'"):
            store.pause("adapter", "No Such")
        with pytest.raises(TypeError, match="note must be a string"):
            store.pause("adapter", "cache", note=5)  # type: ignore[arg-type]
        assert store.records() == () and store.history() == ()


def test_corrupt_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    before = path.read_bytes()
    with pytest.raises(ActivityStoreError) as info:
        ActivityStore(path)
    message = str(info.value)
    assert f"activity store {path} is not a valid SQLite database" in message
    assert "move it aside or delete it" in message and "\n" not in message
    assert path.read_bytes() == before  # nothing written into it


def test_locked_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite"
    with ActivityStore(path, busy_timeout=0.05) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(ActivityStoreError) as info:
                store.pause("adapter", "cache")
            assert "is locked by another process" in str(info.value)
            assert "to pause" in str(info.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.get("adapter", "cache").state == "active"  # nothing half-applied
        assert store.history() == ()


def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(ActivityStoreError, match=r"cannot open activity store .*writable"):
        ActivityStore(tmp_path / "missing-dir" / "activity.sqlite")


def test_closed_store(tmp_path: Path) -> None:
    store = ActivityStore(tmp_path / "a.sqlite")
    store.close()
    with pytest.raises(ActivityStoreError, match="is closed"):
        store.pause("adapter", "cache")


# ------------------------------------------------------- with a running manager


@pytest.mark.anyio
async def test_pause_refuses_leases_and_resume_restores(
    make_manager: Any, tmp_path: Path, ledger: Any
) -> None:
    store = ActivityStore(tmp_path / "a.sqlite", actor="alice")
    manager: LifecycleManager = make_manager(activity_store=store)
    instance = await manager.activate("adapter", "cache")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    store.pause("adapter", "cache", note="maintenance")
    await apoll_until(lambda: manager.activity("adapter", "cache") == "paused")
    with pytest.raises(ComponentPaused) as info:
        async with bridge.lease("cache"):
            pass
    message = str(info.value)
    assert "adapter/cache is paused" in message and "maintenance" in message
    assert "oneiric resume adapter cache" in message
    # who paused is data for operators, never text that may reach an application's users
    assert "alice" not in message and info.value.actor == "alice"  # type: ignore[attr-defined]
    assert (info.value.domain, info.value.key, info.value.note) == (  # type: ignore[attr-defined]
        "adapter", "cache", "maintenance"
    )
    with pytest.raises(ComponentPaused), bridge.lease_sync("cache"):
        pass
    await apoll_until(lambda: instance.paused == 1, message="component.pause() called")
    assert manager.status()["keys"][0]["activity"]["state"] == "paused"
    store.resume("adapter", "cache")
    await apoll_until(lambda: manager.activity("adapter", "cache") == "active")
    async with bridge.lease("cache") as obj:
        assert obj is instance
    await apoll_until(lambda: instance.resumed == 1, message="component.resume() called")
    await manager.shutdown()
    store.close()


@pytest.mark.anyio
async def test_other_process_pause_refuses_our_leases(
    make_manager: Any, tmp_path: Path
) -> None:
    path = tmp_path / "activity.sqlite"
    store = ActivityStore(path)
    manager = make_manager(activity_store=store)
    await manager.activate("adapter", "cache")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    assert await _run_cli(str(path), "pause", "adapter", "cache") == "pause ok"

    async def refused() -> bool:
        try:
            async with bridge.lease("cache"):
                return False
        except ComponentPaused as exc:
            return exc.actor == "operator" and "from another process" in str(exc)  # type: ignore[attr-defined]

    await apoll_until(refused, message="lease refused after another process paused")
    assert await _run_cli(str(path), "resume", "adapter", "cache") == "resume ok"
    await apoll_until(lambda: manager.activity("adapter", "cache") == "active")
    async with bridge.lease("cache") as obj:
        assert obj.call() == "b"
    await manager.shutdown()
    store.close()


@pytest.mark.anyio
async def test_drain_waits_for_in_flight_lease_across_processes(
    make_manager: Any, tmp_path: Path, state: Path
) -> None:
    path = tmp_path / "activity.sqlite"
    store = ActivityStore(path)
    manager = make_manager(activity_store=store)
    await manager.activate("adapter", "cache")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    release = asyncio.Event()
    inside = asyncio.Event()

    async def in_flight() -> str:
        async with bridge.lease("cache") as obj:
            inside.set()
            await release.wait()
            return str(await obj.acall())

    task = asyncio.ensure_future(in_flight())
    await inside.wait()
    # the other process drains, then waits until our status snapshot says drained
    proc = await _cli(str(path), "drain", "adapter", "cache", "--wait-drained", str(state))
    await apoll_until(lambda: manager.activity("adapter", "cache") == "draining")

    async def draining_refused() -> bool:
        try:
            async with bridge.lease("cache"):
                return False
        except ComponentDraining:
            return True

    assert await draining_refused()
    entry = manager.status()["keys"][0]
    assert entry["activity"]["drained"] is False and entry["activity"]["in_flight"] == 1
    assert proc.returncode is None  # cannot have seen "drained" while the lease is held
    assert not manager.drained("adapter", "cache")
    release.set()
    assert await task == "b"  # the in-flight lease finished normally
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and out.decode().strip() == "drained", err.decode()
    assert manager.drained("adapter", "cache")
    await manager.shutdown()
    store.close()


@pytest.mark.anyio
async def test_swap_deferred_by_pause_happens_after_resume(
    make_manager: Any, tmp_path: Path, resolver: Resolver, ledger: Any
) -> None:
    path = tmp_path / "activity.sqlite"
    store = ActivityStore(path)
    manager = make_manager(activity_store=store)
    await manager.activate("adapter", "cache")
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    await _run_cli(str(path), "pause", "adapter", "cache")
    await apoll_until(lambda: manager.activity("adapter", "cache") == "paused")
    resolver.set_selections("adapter", {"cache": "a"})
    await apoll_until(lambda: manager.status()["keys"][0]["deferred"] is not None)
    entry = manager.status()["keys"][0]
    assert entry["bound"] == "b" and entry["reason"].startswith("paused: swap deferred")
    assert bridge.handle("cache").instance.provider == "b" and len(ledger.built) == 1
    await _run_cli(str(path), "resume", "adapter", "cache")
    await apoll_until(
        lambda: bridge.handle("cache").instance.provider == "a", message="deferred swap applied"
    )
    assert manager.status()["keys"][0]["deferred"] is None
    await manager.shutdown()
    store.close()
    assert ledger.all_cleaned_once()
