"""The workflow engine's semantics (issue #14 acceptance), in process.

Actions are small real classes on a real resolver and lifecycle; the store
is ``MemoryCheckpointStore`` here (the SQLite store and kill -9 have their
own tests).  Retry waits go through an injected sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from oneiric.actions import ActionContext, ActionSpec
from oneiric.core import Candidate, NotRegisteredError, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import (
    DefinitionChanged,
    MemoryCheckpointStore,
    Node,
    RunNotFound,
    Workflow,
    WorkflowDefinitionError,
    WorkflowEngine,
)

pytestmark = pytest.mark.anyio


class Log:
    """What every test action did, shared through the class (actions are built by the lifecycle)."""

    calls: ClassVar[list[tuple[str, Any]]] = []
    gates: ClassVar[dict[str, asyncio.Event]] = {}
    failures: ClassVar[dict[str, int]] = {}
    running = 0
    peak = 0


class Echo:
    spec = ActionSpec(side_effects=False, idempotent=True)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        Log.calls.append((context.node_id or "", payload))
        Log.running += 1
        Log.peak = max(Log.peak, Log.running)
        try:
            name = payload.get("gate") if isinstance(payload, dict) else None
            if name:
                await Log.gates[name].wait()
            else:
                await asyncio.sleep(0)
        finally:
            Log.running -= 1
        left = Log.failures.get(context.node_id or "", 0)
        if left:
            Log.failures[context.node_id or ""] = left - 1
            raise ConnectionError(f"{context.node_id} failed")
        return {"node": context.node_id, "attempt": context.attempt, "payload": payload,
                "key": context.idempotency_key}


class Forever:
    spec = ActionSpec(side_effects=False, idempotent=True)
    cancelled: ClassVar[list[str]] = []

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            Forever.cancelled.append(context.node_id or "")
            raise


class NotJson:
    spec = ActionSpec(side_effects=False)

    def invoke(self, payload: Any, context: ActionContext) -> Any:
        return {"when": {1, 2}}


@pytest.fixture(autouse=True)
def reset_log() -> None:
    Log.calls = []
    Log.gates = {}
    Log.failures = {}
    Log.running = Log.peak = 0
    Forever.cancelled = []


@pytest.fixture
async def engine() -> Any:
    resolver = Resolver()
    for key, factory in {"t.echo": Echo, "t.forever": Forever, "t.notjson": NotJson}.items():
        resolver.register(Candidate("action", key, "test", factory))
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    made = WorkflowEngine(lifecycle, store=MemoryCheckpointStore(), sleep=no_wait)
    made.waits = waits  # type: ignore[attr-defined]
    yield made
    await lifecycle.shutdown()


def chain(workflow_id: str = "wf", n: int = 3, **node: Any) -> Workflow:
    nodes = [Node("n0", "t.echo", input={"x": "${input.x}"}, **node)]
    nodes += [Node(f"n{i}", "t.echo", needs=[f"n{i - 1}"],
                   input={"prev": f"${{nodes.n{i - 1}.output.payload}}"}) for i in range(1, n)]
    return Workflow(workflow_id, nodes)


async def test_a_chain_runs_in_order_and_passes_outputs_downstream(engine: Any) -> None:
    engine.register(chain())
    result = await engine.run("wf", {"x": 7}, run_id="r1")
    assert result.ok and result.status == "succeeded"
    assert [c[0] for c in Log.calls] == ["n0", "n1", "n2"]
    assert result.outputs["n0"]["payload"] == {"x": 7}
    assert result.outputs["n2"]["payload"] == {"prev": {"prev": {"x": 7}}}
    assert result.outputs["n1"]["key"] == "r1/n1"  # idempotency key = run_id/node_id
    assert {n: s.attempts for n, s in result.nodes.items()} == {"n0": 1, "n1": 1, "n2": 1}


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Workflow("wf", []), "has no nodes"),
        (lambda: Workflow("wf", [Node("a", "t.echo"), Node("a", "t.echo")]),
         "duplicate node id 'a'"),
        (lambda: Workflow("wf", [Node("a", "t.echo", needs=["a"])]), "node 'a' needs itself"),
        (lambda: Workflow("wf", [Node("a", "t.echo", needs=["ghost"])]),
         "needs 'ghost', which is not a node"),
        (lambda: Workflow("wf", [Node("a", "t.echo", needs=["c"]), Node("b", "t.echo", needs=["a"]),
                                 Node("c", "t.echo", needs=["b"])]), "cycle a -> b -> c -> a"),
        (lambda: Workflow("wf", [Node("a", "t.echo"), Node("b", "t.echo",
                                                           input="${nodes.a.output}")]),
         "node 'a' is not upstream of 'b'"),
        (lambda: Workflow("wf", [Node("a", "t.echo", input="${nodes.zz.output}")]),
         "no node 'zz'"),
        (lambda: Workflow("wf", [Node("a", "t.echo", input="${env.HOME}")]),
         "references start with input or nodes"),
        (lambda: Workflow("wf", [Node("a", "t.echo", input="${input.x")]),
         "unterminated reference"),
        (lambda: Workflow("wf", [Node("a", "t.echo", timeout="soon")]), "timeout"),
        (lambda: Workflow("wf", [Node("a", "t.echo", retry={"attempts": 3})]),
         "unknown field 'attempts'"),
        (lambda: Workflow("Bad Id", [Node("a", "t.echo")]), "invalid workflow id name"),
        (lambda: Workflow.from_mapping({"id": "wf", "nodes": [{"id": "a"}]}),
         "nodes[0]: action is required"),
        (lambda: Workflow.from_mapping({"id": "wf", "nodes": [], "extra": 1}),
         "unknown field 'extra'"),
    ],
)
async def test_every_definition_error_is_one_line_and_writes_no_run(
    engine: Any, build: Any, fragment: str
) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        engine.register(build())
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert engine.runs() == []


async def test_unknown_action_key_is_refused_before_a_run(engine: Any) -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"node 'a' -> 't.nosuch'"):
        engine.register(Workflow("wf", [Node("a", "t.nosuch")]))
    with pytest.raises(NotRegisteredError):
        await engine.run("nosuch-workflow")
    assert engine.runs() == []


async def test_two_concurrent_runs_of_one_workflow_are_isolated(engine: Any) -> None:
    engine.register(chain())
    first, second = await asyncio.gather(engine.run("wf", {"x": 1}), engine.run("wf", {"x": 2}))
    assert first.run_id != second.run_id
    assert first.outputs["n2"]["payload"] == {"prev": {"prev": {"x": 1}}}
    assert second.outputs["n2"]["payload"] == {"prev": {"prev": {"x": 2}}}


async def test_the_same_run_id_twice_at_once_has_one_executor(engine: Any) -> None:
    engine.register(Workflow("wf", [Node("a", "t.echo", input={"gate": "g"})]))
    Log.gates["g"] = asyncio.Event()
    first = asyncio.ensure_future(engine.run("wf", run_id="same"))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(engine.run("wf", run_id="same"))
    await asyncio.sleep(0.01)
    Log.gates["g"].set()
    a, b = await asyncio.gather(first, second)
    assert a.ok and b.ok and len(Log.calls) == 1
    again = await engine.run("wf", run_id="same")  # finished: its result, nothing re-run
    assert again.ok and len(Log.calls) == 1


async def test_fail_twice_then_succeed_downstream_sees_attempt_three(engine: Any) -> None:
    engine.register(Workflow("wf", [
        Node("flaky", "t.echo", retry={"max_attempts": 3, "initial": 0.5, "jitter": 0}),
        Node("after", "t.echo", needs=["flaky"], input="${nodes.flaky.output.attempt}"),
    ]))
    Log.failures["flaky"] = 2
    result = await engine.run("wf")
    assert result.ok
    assert result.nodes["flaky"].attempts == 3
    assert result.outputs["after"]["payload"] == 1  # the action's own attempt inside node try 3
    assert engine.waits == [0.5, 1.0]
    assert [c[0] for c in Log.calls] == ["flaky", "flaky", "flaky", "after"]


async def test_terminal_failure_skips_descendants_and_resume_reruns_only_those(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [
        Node("a", "t.echo"), Node("bad", "t.echo", needs=["a"]),
        Node("below", "t.echo", needs=["bad"]), Node("side", "t.echo", needs=["a"]),
    ]))
    Log.failures["bad"] = 1
    result = await engine.run("wf", run_id="r")
    assert result.status == "failed"
    states = {n: s.status for n, s in result.nodes.items()}
    assert states == {"a": "succeeded", "bad": "failed", "below": "skipped", "side": "succeeded"}
    assert "upstream node 'bad' failed" in (result.nodes["below"].error or "")
    Log.calls = []
    resumed = await engine.resume("r")
    assert resumed.ok
    assert sorted(c[0] for c in Log.calls) == ["bad", "below"]
    assert resumed.nodes["bad"].attempts == 2


async def test_node_timeout_cancels_the_action_for_real(engine: Any) -> None:
    engine.register(Workflow("wf", [Node("slow", "t.forever", timeout="50ms")]))
    result = await engine.run("wf")
    assert result.status == "failed" and result.nodes["slow"].status == "timed_out"
    assert Forever.cancelled == ["slow"]


async def test_non_json_output_fails_that_node_and_is_never_pickled(engine: Any) -> None:
    engine.register(Workflow("wf", [Node("bad", "t.notjson", retry={"max_attempts": 3}),
                                    Node("ok", "t.echo")]))
    result = await engine.run("wf")
    assert result.nodes["bad"].status == "failed" and result.nodes["bad"].attempts == 1
    assert "JSON" in (result.nodes["bad"].error or "")
    assert result.nodes["ok"].status == "succeeded"


async def test_wide_dag_respects_max_concurrency(engine: Any) -> None:
    engine.register(Workflow("wide", [Node(f"n{i}", "t.echo") for i in range(100)],
                             max_concurrency=4))
    for i in range(100):
        Log.gates[f"g{i}"] = asyncio.Event()
    result_task = asyncio.ensure_future(engine.run("wide"))
    await asyncio.sleep(0.01)
    assert Log.running <= 4
    result = await result_task
    assert result.ok and len(Log.calls) == 100 and Log.peak == 4


async def test_a_fast_branch_child_starts_before_a_slow_sibling_ends(engine: Any) -> None:
    Log.gates["slow"] = asyncio.Event()
    engine.register(Workflow("wf", [
        Node("slow", "t.echo", input={"gate": "slow"}),
        Node("fast", "t.echo"),
        Node("fast-child", "t.echo", needs=["fast"]),
    ]))
    running = asyncio.ensure_future(engine.run("wf"))
    for _ in range(200):
        if any(c[0] == "fast-child" for c in Log.calls):
            break
        await asyncio.sleep(0.005)
    assert any(c[0] == "fast-child" for c in Log.calls)  # no level barrier
    assert Log.running == 1  # ... while the slow sibling still holds its gate
    Log.gates["slow"].set()
    assert (await running).ok


async def test_a_poison_run_becomes_dead_after_the_recovery_cap(engine: Any) -> None:
    engine.register(Workflow("wf", [Node("hang", "t.forever")]))
    task = asyncio.ensure_future(engine.run("wf", run_id="poison"))
    await asyncio.sleep(0.01)
    task.cancel()  # the executor dies; the run stays "running"
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(engine.recovery_cap):
        recovering = asyncio.ensure_future(engine.recover())
        await asyncio.sleep(0.01)
        recovering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recovering
    assert engine.store.get_run("poison").recoveries == engine.recovery_cap
    (dead,) = await engine.recover()
    assert dead.status == "dead" and "recovered 5 times" in (dead.error or "")
    assert await engine.recover() == []  # skipped at start from now on


async def test_resume_refuses_a_changed_definition_unless_forced_to_a_new_version(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [Node("a", "t.echo")]))
    Log.failures["a"] = 1
    assert (await engine.run("wf", run_id="r")).status == "failed"
    engine.register(Workflow("wf", [Node("a", "t.echo", input={"v": 2})]))
    with pytest.raises(DefinitionChanged, match="started with another definition"):
        await engine.resume("r")
    with pytest.raises(DefinitionChanged, match="needs a new version"):
        await engine.resume("r", force=True)
    engine.register(Workflow("wf", [Node("a", "t.echo", input={"v": 2})], version=2))
    assert (await engine.resume("r", force=True)).ok


async def test_cancel_stops_in_flight_and_pending_nodes(engine: Any) -> None:
    engine.register(Workflow("wf", [Node("hang", "t.forever"), Node("after", "t.echo",
                                                                   needs=["hang"])]))
    running = asyncio.ensure_future(engine.run("wf", run_id="c"))
    await asyncio.sleep(0.01)
    cancelled = await engine.cancel("c")
    assert cancelled.status == "cancelled"
    assert cancelled.nodes["hang"].status == "cancelled", cancelled.nodes["hang"]
    assert cancelled.nodes["after"].status == "skipped"
    assert (await running).status == "cancelled"
    assert Forever.cancelled == ["hang"]


async def test_unknown_run_and_bad_input(engine: Any) -> None:
    from oneiric.core import ConfigError

    with pytest.raises(RunNotFound):
        engine.status("nope")
    engine.register(chain())
    with pytest.raises(ConfigError, match="run input is not JSON"):
        await engine.run("wf", {"x": {1, 2}})
    with pytest.raises(ConfigError, match="run id"):
        await engine.run("wf", {"x": 1}, run_id="bad id with spaces")


async def test_plan_text_json_and_mermaid(engine: Any) -> None:
    engine.register(Workflow("wf", [
        Node("a", "t.echo"), Node("b", "t.echo", needs=["a"]), Node("c", "t.echo", needs=["a"]),
        Node("d", "t.echo", needs=["b", "c"]), Node("e", "t.echo"),
    ]))
    plan = engine.plan("wf")
    assert plan.levels == (("a", "e"), ("b", "c"), ("d",))
    assert plan.critical_path == ("a", "b", "d")
    data = plan.as_dict()
    assert data["order"] == ["a", "e", "b", "c", "d"] and len(data["definition_hash"]) == 64
    assert "critical path (3): a -> b -> d" in plan.as_text()
    mermaid = plan.as_mermaid()
    assert mermaid.startswith("flowchart TD") and "n0 --> n1" in mermaid


class OwnTimeout:
    spec = ActionSpec(side_effects=False)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(3600)


async def test_attack_an_actions_own_timeout_cancels_the_action_not_the_engine(
    engine: Any,
) -> None:
    """Nodes must not start in the engine's task and continue in another (see the dispatcher)."""
    engine.lifecycle.resolver.register(Candidate("action", "t.own-timeout", "test", OwnTimeout))
    engine.register(Workflow("wf", [Node("a", "t.own-timeout"), Node("b", "t.echo")]))
    result = await asyncio.wait_for(engine.run("wf"), 30)
    assert result.nodes["a"].status == "failed"
    assert "TimeoutError" in (result.nodes["a"].error or "")
    assert result.nodes["b"].status == "succeeded"


async def test_one_trace_per_run_linked_to_the_triggering_event(
    engine: Any, spans: Any
) -> None:
    """event -> workflow -> node -> action: the run is its own trace, the event a link."""
    from oneiric.runtime import EventDispatcher

    engine.register(chain(n=2))
    dispatcher = EventDispatcher(engine.lifecycle, dead_letters=False)

    async def start(event: Any, context: Any) -> None:
        await engine.run("wf", {"x": 1}, run_id="traced")

    dispatcher.subscribe("starter", start, topics="orders.paid")
    await dispatcher.emit("orders.paid", {})
    finished = {s.name: s for s in spans.get_finished_spans()}
    handle, run = finished["oneiric.event.handle"], finished["oneiric.workflow.run"]
    nodes = [s for s in spans.get_finished_spans() if s.name == "oneiric.workflow.node"]
    actions = [s for s in spans.get_finished_spans() if s.name == "oneiric.action.invoke"]
    assert run.parent is None and run.context.trace_id != handle.context.trace_id
    assert [link.context.span_id for link in run.links] == [handle.context.span_id]
    assert {n.context.trace_id for n in nodes} == {run.context.trace_id}
    assert {n.parent.span_id for n in nodes} == {run.context.span_id}
    assert {a.context.trace_id for a in actions} == {run.context.trace_id}
    assert {a.parent.span_id for a in actions} <= {n.context.span_id for n in nodes}
    await dispatcher.aclose()
