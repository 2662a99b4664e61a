"""kill -9 acceptance (issue #14): a real process running a 20-node workflow is SIGKILLed.

The node action (``k.step``, a real module on ``PYTHONPATH``) appends
``run/node/attempt`` to a log file with one ``O_APPEND`` write *before* it
sleeps a little, so nodes are in flight when the kill lands, and returns a
value computed from its upstream values only (so outputs can be compared
across runs).  Checkpoints are the real ``SQLiteCheckpointStore`` file.

1. Kill while nodes are in flight, resume with ``oneiric workflow resume`` in a
   new process: every node the store had ``succeeded`` before the resume
   appears once in the log (never re-ran), every node it had ``running`` ran
   exactly once more, and the outputs equal an uninterrupted run's.
2. 50 kills at random offsets: ``PRAGMA integrity_check`` is ``ok`` after each,
   each resume (``WorkflowEngine.resume`` here, a new process for the file)
   converges to the same outputs, and the log invariants of 1 hold each time.
3. Another process holds the database's exclusive lock for 2 s mid-run: the
   run waits (busy timeout) and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

APP = '''
import asyncio
import os

from oneiric.actions import ActionSpec
from oneiric.core import Candidate


class Step:
    """Log the start (one O_APPEND write), sleep, return a value of the upstream values."""

    spec = ActionSpec(side_effects=False, idempotent=True)

    async def invoke(self, payload, context):
        fd = os.open(os.environ["WF_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{context.run_id}/{context.node_id}/{context.attempt}\\n".encode())
        finally:
            os.close(fd)
        await asyncio.sleep(payload["sleep"])
        seed = int(context.node_id[1:]) + 7
        return {"v": (sum(payload["ups"]) * 31 + seed) % 1000003}


def register(resolver):
    resolver.register(Candidate("action", "k.step", "test", Step))
'''

#: node -> needs: fan-out, joins, a chain and a tail (20 nodes, 8 levels).
SHAPE: dict[str, list[str]] = {
    "n00": [], "n01": ["n00"], "n02": ["n00"], "n03": ["n00"], "n04": ["n00"],
    "n05": ["n01", "n02"], "n06": ["n03", "n04"], "n07": ["n05"], "n08": ["n07"],
    "n09": ["n08"], "n10": ["n06"], "n11": ["n06"], "n12": ["n06"], "n13": ["n06"],
    "n14": ["n09", "n10"], "n15": ["n11", "n12", "n13"], "n16": ["n14"], "n17": ["n15"],
    "n18": ["n16", "n17"], "n19": ["n18"],
}


def definition() -> dict[str, Any]:
    return {"id": "kill20", "version": 1, "max_concurrency": 4, "nodes": [
        {"id": n, "action": "k.step", "needs": needs,
         "input": {"sleep": "${input.sleep}",
                   "ups": [f"${{nodes.{m}.output.v}}" for m in needs] or ["${input.seed}"]}}
        for n, needs in SHAPE.items()]}


RUNNER = '''
import asyncio, json, sys
from oneiric.core import Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import SQLiteCheckpointStore, WorkflowEngine
import wf_kill_app

db, run_id, sleep = sys.argv[1], sys.argv[2], float(sys.argv[3])
resolver = Resolver()
wf_kill_app.register(resolver)
lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                             config=LifecycleConfig(grace_period=0, health_interval=0))

async def main():
    engine = WorkflowEngine(lifecycle, store=SQLiteCheckpointStore(db))
    engine.register(json.loads(sys.stdin.read()))
    result = await engine.run("kill20", {"sleep": sleep, "seed": 3}, run_id=run_id)
    print(json.dumps(result.outputs, sort_keys=True))

asyncio.run(main())
'''


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    (tmp_path / "wf_kill_app.py").write_text(APP)
    (tmp_path / "runner.py").write_text(RUNNER)
    workflows = tmp_path / "settings" / "workflows"
    workflows.mkdir(parents=True)
    (tmp_path / "settings" / "oneiric.toml").write_text("")
    (workflows / "kill20.json").write_text(json.dumps(definition()))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ.update(ONEIRIC_STATE_DIR=str(tmp_path / "state"),
                   ONEIRIC_CONFIG=str(tmp_path / "settings"),
                   ONEIRIC_APP="wf_kill_app:register", WF_LOG=str(tmp_path / "log"))
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    monkeypatch.setenv("WF_LOG", environ["WF_LOG"])
    monkeypatch.syspath_prepend(str(tmp_path))
    return environ


def log_of(env: dict[str, str], run_id: str) -> Counter[str]:
    """How many times each node of ``run_id`` started (the action's append log)."""
    path = Path(env["WF_LOG"])
    lines = path.read_text().split() if path.exists() else []
    return Counter(line.split("/")[1] for line in lines if line.split("/")[0] == run_id)


def node_states(db: Path, run_id: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT node_id, status FROM nodes WHERE run_id = ?",
                                 (run_id,)).fetchall())


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def start(env: dict[str, str], args: list[str], stdin: str | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.stdin = None  # communicate() would flush it
    return proc


def wait_for(predicate: Any, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: the process ended or timed out: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def check_resume(before: dict[str, str], first: Counter[str], total: Counter[str]) -> None:
    """Finished nodes never re-ran; in-flight ones ran exactly once more; pending ones once.

    A node checkpointed ``running`` may have been killed before its action wrote
    its line (the start checkpoint commits first), so it logged 0 or 1 times before.
    """
    for node in SHAPE:
        state, ran_before, ran_after = before[node], first[node], total[node] - first[node]
        if state == "succeeded":
            assert ran_before == 1 and ran_after == 0, (node, state, ran_before, ran_after)
        elif state == "running":
            assert ran_before <= 1 and ran_after == 1, (node, state, ran_before, ran_after)
        else:
            assert state == "pending" and ran_before == 0 and ran_after == 1, (node, state)


@pytest.fixture
def baseline(env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """The outputs of an uninterrupted run in its own file."""
    proc = start(env, [str(tmp_path / "runner.py"), str(tmp_path / "base.sqlite"), "base", "0"],
                 json.dumps(definition()))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    outputs: dict[str, Any] = json.loads(out)
    assert sorted(outputs) == sorted(SHAPE) and log_of(env, "base") == Counter(SHAPE.keys())
    return outputs


def test_kill_9_with_nodes_in_flight_then_cli_resume_in_a_new_process(
    env: dict[str, str], tmp_path: Path, baseline: dict[str, Any]
) -> None:
    db = tmp_path / "state" / "workflows.sqlite"
    proc = start(env, ["-m", "oneiric.cli", "workflow", "run", "kill20", "--run-id", "k1",
                       "--input", json.dumps({"sleep": 0.2, "seed": 3})])
    # kill once some nodes finished and others are in flight (started, not finished)
    def in_flight() -> bool:
        try:
            states = list(node_states(db, "k1").values()) if db.exists() else []
        except sqlite3.OperationalError:  # the file is being created
            return False
        return states.count("succeeded") >= 5 and "running" in states

    wait_for(in_flight, proc, "nodes in flight")
    kill(proc)
    assert integrity(db) == "ok"
    before = node_states(db, "k1")
    first = log_of(env, "k1")
    assert "running" in before.values() and "pending" in before.values()
    resumed = subprocess.run([sys.executable, "-m", "oneiric.cli", "workflow", "resume", "k1",
                              "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "succeeded"
    assert result["outputs"] == baseline  # equal to an uninterrupted run
    check_resume(before, first, log_of(env, "k1"))
    for node, state in result["nodes"].items():  # attempts: the store counted the in-flight one
        assert state["attempts"] == (2 if before[node] == "running" else 1), node


def test_kill_9_at_50_random_offsets_integrity_ok_and_every_resume_converges(
    env: dict[str, str], tmp_path: Path, baseline: dict[str, Any]
) -> None:
    from wf_kill_app import register  # type: ignore[import-not-found]

    from oneiric.core import Resolver
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager
    from oneiric.runtime import SQLiteCheckpointStore, WorkflowEngine

    db = tmp_path / "random.sqlite"
    rng = random.Random(1414)
    text = json.dumps(definition())
    killed_mid_run = 0
    for i in range(50):
        run_id = f"it{i}"
        proc = start(env, [str(tmp_path / "runner.py"), str(db), run_id, "0.004"], text)
        wait_for(lambda run_id=run_id: log_of(env, run_id), proc, f"iteration {i} started")
        time.sleep(rng.uniform(0, 0.06))  # the run takes ~0.05-0.1 s from its first node
        kill(proc)
        assert integrity(db) == "ok", i
        before = node_states(db, run_id)
        first = log_of(env, run_id)
        killed_mid_run += any(s != "succeeded" for s in before.values())

        async def resume(run_id: str = run_id) -> Any:
            resolver = Resolver()
            register(resolver)
            lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                         config=LifecycleConfig(grace_period=0,
                                                                health_interval=0))
            async with WorkflowEngine(lifecycle, store=SQLiteCheckpointStore(db)) as engine:
                engine.register(definition())
                result = await engine.resume(run_id)
            await lifecycle.shutdown()
            return result

        result = asyncio.run(resume())
        assert result.ok and result.outputs == baseline, (i, result.error)
        check_resume(before, first, log_of(env, run_id))
        assert integrity(db) == "ok", i
    assert killed_mid_run >= 25  # most kills landed while the run was unfinished


LOCKER = '''
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(2)
conn.execute("COMMIT")
print("released", flush=True)
'''


@pytest.mark.anyio
async def test_the_checkpoint_db_locked_by_another_process_for_2s_loses_nothing(
    env: dict[str, str], tmp_path: Path, baseline: dict[str, Any]
) -> None:
    from wf_kill_app import register

    from oneiric.core import Resolver
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager
    from oneiric.runtime import SQLiteCheckpointStore, WorkflowEngine

    db = tmp_path / "locked.sqlite"
    resolver = Resolver()
    register(resolver)
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    engine = WorkflowEngine(lifecycle, store=SQLiteCheckpointStore(db, busy_timeout=10))
    engine.register(definition())
    run = asyncio.ensure_future(engine.run("kill20", {"sleep": 0.1, "seed": 3}, run_id="L"))
    while sum(log_of(env, "L").values()) < 3:
        await asyncio.sleep(0.005)
    locker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCKER, str(db), stdout=asyncio.subprocess.PIPE)
    assert locker.stdout is not None
    assert await locker.stdout.readline() == b"locked\n"
    assert not run.done()  # the lock is held while the run still has nodes to checkpoint
    result = await run
    assert await locker.stdout.readline() == b"released\n"
    assert await locker.wait() == 0
    assert result.ok and result.outputs == baseline
    assert all(state.attempts == 1 for state in result.nodes.values())
    assert log_of(env, "L") == Counter(SHAPE.keys())  # every node ran once, none lost
    assert integrity(db) == "ok"
    await engine.aclose()
    await lifecycle.shutdown()
