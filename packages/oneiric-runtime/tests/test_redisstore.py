"""RedisCheckpointStore against a real redis-server (each test owns one: ``private_redis``).

The four ``CheckpointStore`` guarantees on a network store: conditional
updates refuse a zombie attempt; a call returns once Redis applied it; one
executor per run through a renewed lease that a dead worker stops renewing;
``create_run`` never overwrites.  Time never decides an assertion: clocks are
injected, and lease expiry is polled for with a generous ceiling.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import (
    CheckpointStoreError,
    Node,
    RedisCheckpointStore,
    RunLocked,
    RunNotFound,
    RunRecord,
    Workflow,
    WorkflowEngine,
)
from oneiric.testing import PrivateRedis, poll_until

pytestmark = pytest.mark.live

T0 = 1_800_000_000.123456


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(private_redis: PrivateRedis, clock: Clock) -> Iterator[RedisCheckpointStore]:
    with RedisCheckpointStore(private_redis.url, fleet="shop", clock=clock) as made:
        yield made


def _record(run_id: str = "r1", **fields: Any) -> RunRecord:
    fields.setdefault("input", {"order": 7, "price": 0.1})
    return RunRecord(run_id, "orders", fields.pop("version", 1), "hash", **fields)


def test_a_run_round_trips_exactly_and_is_never_overwritten(
    store: RedisCheckpointStore, clock: Clock,
) -> None:
    created, fresh = store.create_run(_record(correlation_id="c-1"), ["a", "b"])
    assert fresh and created.created_at == T0 and created.input == {"order": 7, "price": 0.1}
    assert created.correlation_id == "c-1" and created.cancel_requested is False
    again, fresh = store.create_run(_record(input={"other": 1}), ["x"])
    assert not fresh and again == created  # the run id is the idempotency key
    assert list(store.nodes("r1")) == ["a", "b"]
    clock.now = T0 + 5
    updated = store.set_run("r1", status="failed", error="boom", cancel_requested=True,
                            finished_at=T0 + 5)
    assert (updated.status, updated.error, updated.cancel_requested) == ("failed", "boom", True)
    assert updated.updated_at == T0 + 5 and store.get_run("r1") == updated
    assert store.get_run("nope") is None
    with pytest.raises(RunNotFound, match="no workflow run 'nope' in fleet 'shop'"):
        store.set_run("nope", status="failed")


def test_list_runs_newest_first_with_filters(store: RedisCheckpointStore, clock: Clock) -> None:
    for i, workflow in enumerate(["a", "b", "a"]):
        clock.now = T0 + i
        store.create_run(RunRecord(f"r{i}", workflow, 1, "h", None), ["n"])
    assert [r.run_id for r in store.list_runs()] == ["r2", "r1", "r0"]
    assert [r.run_id for r in store.list_runs(workflow_id="a", limit=1)] == ["r2"]
    assert store.list_runs(status="failed") == []
    with pytest.raises(CheckpointStoreError, match="run status 'asleep' is not one of"):
        store.list_runs(status="asleep")


def test_node_states_keep_outputs_timestamps_and_refuse_a_zombie(
    store: RedisCheckpointStore, clock: Clock,
) -> None:
    store.create_run(_record(), ["a", "b"])
    assert store.node_started("r1", "a", 1)
    assert not store.node_started("r1", "a", 1)  # that attempt started already
    assert store.node_started("r1", "a", 2)  # a newer attempt (a resume)
    assert not store.node_finished("r1", "a", 1, "succeeded", output="late")  # the zombie
    clock.now = T0 + 1.5
    assert store.node_finished("r1", "a", 2, "succeeded", output={"n": [1, 2.5, None]})
    state = store.nodes("r1")["a"]
    assert (state.status, state.attempts, state.output) == ("succeeded", 2, {"n": [1, 2.5, None]})
    assert (state.started_at, state.finished_at) == (T0, T0 + 1.5)  # no float rounding
    assert not store.node_started("r1", "a", 3)  # a succeeded node never runs again
    assert store.node_started("r1", "b", 1)
    assert store.node_finished("r1", "b", 1, "failed", error="ValueError: bad")
    assert store.nodes("r1")["b"].error == "ValueError: bad"
    with pytest.raises(CheckpointStoreError, match="node outcome 'done' is not one of"):
        store.node_finished("r1", "b", 1, "done")


def test_reset_and_skip_leave_succeeded_nodes_alone(store: RedisCheckpointStore) -> None:
    store.create_run(_record(), ["a", "b", "c"])
    store.advance("r1", started=[("a", 1), ("b", 1)])
    store.advance("r1", succeeded=[("a", 1, 1)])
    store.node_finished("r1", "b", 1, "failed", error="x")
    store.skip_nodes("r1", ["a", "c"], "upstream node 'b' failed")
    nodes = store.nodes("r1")
    assert [nodes[n].status for n in "abc"] == ["succeeded", "failed", "skipped"]
    store.reset_nodes("r1", ["a", "b", "c", "d"])  # d: a node of a newer definition
    nodes = store.nodes("r1")
    assert list(nodes) == ["a", "b", "c", "d"]
    assert [(nodes[n].status, nodes[n].attempts) for n in "abcd"] == [
        ("succeeded", 1), ("pending", 1), ("pending", 0), ("pending", 0)]
    with pytest.raises(RunNotFound):
        store.skip_nodes("nope", ["a"], "x")
    with pytest.raises(RunNotFound):
        store.reset_nodes("nope", ["a"])


def test_one_executor_per_run_across_stores(private_redis: PrivateRedis) -> None:
    with RedisCheckpointStore(private_redis.url) as one, \
            RedisCheckpointStore(private_redis.url) as two:
        with one.executor("r1"):
            assert two.executor_alive("r1")
            with pytest.raises(RunLocked, match="another worker"), two.executor("r1"):
                pass
        assert not two.executor_alive("r1")
        with two.executor("r1"):
            assert one.executor_alive("r1")


def test_a_live_holder_keeps_its_lease_past_the_lease_time(private_redis: PrivateRedis) -> None:
    import time

    with RedisCheckpointStore(private_redis.url, lease=0.3) as store, store.executor("r1"):
        began = time.monotonic()
        # wait out several lease periods (a wait, not an assertion on speed)
        poll_until(lambda: time.monotonic() - began > 1.5, message="five lease periods")
        assert store.executor_alive("r1")  # the renewer kept extending it


def test_a_killed_holder_frees_the_run_after_its_lease(private_redis: PrivateRedis) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        from oneiric.runtime import RedisCheckpointStore
        store = RedisCheckpointStore({private_redis.url!r}, lease=1.0)
        with store.executor("r1"):
            print("held", flush=True)
            time.sleep(3600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with RedisCheckpointStore(private_redis.url) as store:
            assert store.executor_alive("r1")
            holder.kill()
            holder.wait(timeout=30)
            poll_until(lambda: not store.executor_alive("r1"), timeout=60,
                       message="the dead holder's lease expires")
            with store.executor("r1"):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_prune_removes_only_old_finished_runs(store: RedisCheckpointStore, clock: Clock) -> None:
    store.create_run(_record("old"), ["a"])
    store.create_run(_record("running"), ["a"])
    store.set_run("old", status="succeeded", finished_at=T0)
    clock.now = T0 + 100
    store.create_run(_record("new"), ["a"])
    store.set_run("new", status="failed", finished_at=T0 + 100)
    assert store.prune(T0 + 50) == 1
    assert store.get_run("old") is None and store.nodes("old") == {}
    assert {r.run_id for r in store.list_runs()} == {"running", "new"}


def test_unreachable_redis_is_one_line_with_the_url_scrubbed(
    private_redis: PrivateRedis,
) -> None:
    url = f"redis://user:s3cret@127.0.0.1:{private_redis.port}/0"
    private_redis.kill()
    store = RedisCheckpointStore(url)
    with pytest.raises(CheckpointStoreError) as info:
        store.get_run("r1")
    text = str(info.value)
    assert "Redis unreachable" in text and "s3cret" not in text and "\n" not in text
    assert exit_code_for(info.value) == exit_code_for(CheckpointStoreError("x"))
    store.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs url="),
    ({"url": "redis://x", "client": object()}, "not both"),
    ({"url": "redis://x", "lease": 0}, "lease must be more than 0"),
    ({"url": "redis://x", "fleet": "a b"}, "fleet"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RedisCheckpointStore(**kwargs)


@pytest.mark.anyio
async def test_the_engine_runs_on_redis(private_redis: PrivateRedis) -> None:
    from oneiric.core import Candidate, Resolver

    class Echo:
        from oneiric.actions import ActionSpec

        spec = ActionSpec(side_effects=False, idempotent=True)

        def invoke(self, payload: Any, context: Any) -> Any:
            return {"seen": payload, "node": context.node_id}

    resolver = Resolver()
    resolver.register(Candidate("action", "t.echo", "test", Echo))
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    nodes = [Node("a", "t.echo", input={"x": "${input.x}"}),
             Node("b", "t.echo", needs=["a"], input={"prev": "${nodes.a.output.seen}"}),
             Node("c", "t.echo", needs=["a"])]
    try:
        async with WorkflowEngine(lifecycle,
                                  store=RedisCheckpointStore(private_redis.url)) as engine:
            engine.register(Workflow("wf", nodes))
            result = await engine.run("wf", {"x": 3}, run_id="run-1")
            assert result.ok, result.error
            assert result.outputs["b"] == {"seen": {"prev": {"x": 3}}, "node": "b"}
            assert (await engine.run("wf", {"x": 3}, run_id="run-1")) == result  # idempotent
    finally:
        await lifecycle.shutdown()
