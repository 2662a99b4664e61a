"""Workflow runs on Redis across real worker processes (issue 15 acceptance, runtime part).

* A worker SIGKILLed mid-node: another worker takes the run over after
  ``min_idle``; finished nodes never run again, the in-flight node runs once
  more, and the outputs equal an uninterrupted run.
* A live worker running a node longer than ``min_idle`` keeps it: the other
  worker never runs it.

Workers are separate Python processes (``WORKER`` below) logging every node
start to a file; the test reads that log and the shared Redis store.  Nothing
asserts on time: waits poll with generous ceilings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.runtime import RedisCheckpointStore
from oneiric.testing import PrivateRedis, poll_until

pytestmark = pytest.mark.live

CEILING = 90.0

#: A worker: the action ``t.step`` logs "<node> <worker>" at start, blocks on the node named
#: by BLOCK_NODE until the gate file exists, and returns a value computed from its input.
WORKER = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from pathlib import Path
    from oneiric.actions import ActionSpec
    from oneiric.core import Candidate, Resolver
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager
    from oneiric.runtime import (Node, RedisCheckpointStore, RedisRunQueue, Workflow,
                                 WorkflowEngine)

    url, log, gate, name = sys.argv[1:5]
    block_node = os.environ.get("BLOCK_NODE", "")

    class Step:
        spec = ActionSpec(side_effects=False, idempotent=True)

        async def invoke(self, payload, context):
            with open(log, "a") as f:
                f.write(f"{context.node_id} {name}\\n")
            if context.node_id == block_node:
                while not Path(gate).exists():
                    await asyncio.sleep(0.02)
            return {"sum": sum(payload.get("values", [])) + payload.get("add", 0)}

    def workflow():
        nodes = [Node("n0", "t.step", input={"add": "${input.seed}"})]
        for i in range(1, 8):
            nodes.append(Node(f"n{i}", "t.step", needs=[f"n{i - 1}"],
                              input={"values": [f"${{nodes.n{i - 1}.output.sum}}"], "add": i}))
        nodes.append(Node("side", "t.step", needs=["n0"], input={"add": 100}))
        return Workflow("pipeline", nodes)

    async def main():
        resolver = Resolver()
        resolver.register(Candidate("action", "t.step", "test", Step))
        lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                     config=LifecycleConfig(grace_period=0, health_interval=0))
        store = RedisCheckpointStore(url, fleet="t", lease=float(os.environ["LEASE"]))
        engine = WorkflowEngine(lifecycle, store=store)
        engine.register(workflow())
        queue = RedisRunQueue(engine, url, fleet="t", consumer=name,
                              min_idle=float(os.environ["MIN_IDLE"]), block=0.2)
        if os.environ.get("SUBMIT"):
            await queue.submit("pipeline", {"seed": 5}, run_id=os.environ["SUBMIT"])
        print("serving", flush=True)
        await queue.serve()

    asyncio.run(main())
""")


class Workers:
    """Start worker processes; SIGKILL them; read their node log."""

    def __init__(self, tmp: Path, redis_url: str) -> None:
        self.script = tmp / "worker.py"
        self.script.write_text(WORKER)
        self.log = tmp / "nodes.log"
        self.gate = tmp / "gate"
        self.url = redis_url
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, name: str, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(self.script), self.url, str(self.log), str(self.gate), name],
            env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "serving"
        return proc

    def starts(self) -> list[tuple[str, str]]:
        if not self.log.exists():
            return []
        return [tuple(line.split()) for line in self.log.read_text().splitlines()]  # type: ignore[misc]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def workers(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[Workers]:
    made = Workers(tmp_path, private_redis.url)
    try:
        yield made
    finally:
        made.stop()


def _expected_outputs() -> dict[str, Any]:
    outputs: dict[str, Any] = {"n0": {"sum": 5}, "side": {"sum": 100}}
    for i in range(1, 8):
        outputs[f"n{i}"] = {"sum": outputs[f"n{i - 1}"]["sum"] + i}
    return outputs


def _finished(store: RedisCheckpointStore, run_id: str) -> Any:
    record = store.get_run(run_id)
    return record if record is not None and record.status != "running" else None


def test_a_killed_worker_s_run_is_taken_over_and_completes_with_the_same_outputs(
    workers: Workers, private_redis: PrivateRedis,
) -> None:
    timing = {"LEASE": "1.0", "MIN_IDLE": "1.0"}
    first = workers.start("A", SUBMIT="run-1", BLOCK_NODE="n4", **timing)
    poll_until(lambda: ("n4", "A") in workers.starts(), timeout=CEILING,
               message="worker A is inside node n4")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    before = workers.starts()
    workers.gate.touch()  # the taken-over node may finish now
    workers.start("B", **timing)
    with RedisCheckpointStore(private_redis.url, fleet="t") as store:
        record = poll_until(lambda: _finished(store, "run-1"), timeout=CEILING,
                            message="worker B finishes the run")
        assert record.status == "succeeded", record.error
        assert record.recoveries == 1
        nodes = store.nodes("run-1")
        assert {n: s.output for n, s in nodes.items()} == _expected_outputs()
    after = workers.starts()[len(before):]
    finished_by_a = {node for node, _ in before if node != "n4"}
    assert all(worker == "B" for _, worker in after)
    assert not finished_by_a & {node for node, _ in after}  # never run again
    assert [node for node, _ in after].count("n4") == 1  # in flight: exactly once more
    assert nodes["n4"].attempts == 2


def test_a_live_worker_s_long_node_is_never_taken(
    workers: Workers, private_redis: PrivateRedis,
) -> None:
    timing = {"LEASE": "0.5", "MIN_IDLE": "0.5"}
    workers.start("A", SUBMIT="run-2", BLOCK_NODE="n2", **timing)
    poll_until(lambda: ("n2", "A") in workers.starts(), timeout=CEILING,
               message="worker A is inside node n2")
    workers.start("B", **timing)
    began = time.monotonic()
    # several claim rounds of B go by while A's node runs (a wait, not an assertion on speed)
    poll_until(lambda: time.monotonic() - began > 4.0, timeout=CEILING, message="8 x min_idle")
    workers.gate.touch()
    with RedisCheckpointStore(private_redis.url, fleet="t") as store:
        record = poll_until(lambda: _finished(store, "run-2"), timeout=CEILING,
                            message="the run finishes")
        assert record.status == "succeeded" and record.recoveries == 0
        assert {n: s.output for n, s in store.nodes("run-2").items()} == _expected_outputs()
    starts = workers.starts()
    assert sorted(node for node, _ in starts) == sorted(_expected_outputs())  # each once
    assert {worker for _, worker in starts} == {"A"}


def test_submit_refuses_an_unknown_workflow_and_bad_settings(private_redis: PrivateRedis) -> None:
    import asyncio

    from oneiric.core import ConfigError, Resolver
    from oneiric.lifecycle import LifecycleManager
    from oneiric.runtime import RedisRunQueue, WorkflowEngine

    lifecycle = LifecycleManager(Resolver(), activity_store=False, write_status=False)
    engine = WorkflowEngine(lifecycle, store=RedisCheckpointStore(private_redis.url, lease=30))
    with pytest.raises(ConfigError, match="below the checkpoint store's lease"):
        RedisRunQueue(engine, private_redis.url, min_idle=5)
    with pytest.raises(ConfigError, match="max_runs must be an integer"):
        RedisRunQueue(engine, private_redis.url, max_runs=0)
    queue = RedisRunQueue(engine, private_redis.url)

    async def submit() -> None:
        try:
            await queue.submit("nope", {})
        finally:
            await queue.aclose()

    from oneiric.core import NotRegisteredError

    with pytest.raises(NotRegisteredError):
        asyncio.run(submit())
    assert json.dumps(queue.stats) == '{"executed": 0, "claimed": 0, "locked": 0}'
