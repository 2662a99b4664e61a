"""The only node that can run is awaited in the engine's task (``InlineRun``).

What a task per node gave a node must survive: its own context, a timeout
bound to the task that runs all of it, cancellation of the node alone, and
the engine's own cancellation reaching the node.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from oneiric.actions import ActionContext, ActionSpec
from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import MemoryCheckpointStore, Node, Workflow, WorkflowEngine
from oneiric.runtime._inline import InlineRun
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


class SetsMark:
    """Sets a context variable and never resets it; reports what it saw first."""

    spec = ActionSpec(side_effects=False, idempotent=True)

    def invoke(self, payload: Any, context: ActionContext) -> Any:
        seen = MARK.get()
        MARK.set(f"set by {context.node_id}")
        return {"seen": seen}


class Stubborn:
    """Swallows the first cancellation (a badly written action) and returns."""

    spec = ActionSpec(side_effects=False, idempotent=True)
    swallowed = 0

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            Stubborn.swallowed += 1
        return {"stubborn": True}


class Slow:
    spec = ActionSpec(side_effects=False, idempotent=True)
    cancelled = 0

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            Slow.cancelled += 1
            raise


def _status(engine: WorkflowEngine, run_id: str, node_id: str) -> str | None:
    if engine.store.get_run(run_id) is None:
        return None
    return engine.store.nodes(run_id)[node_id].status


@pytest.fixture
async def engine() -> Any:
    resolver = Resolver()
    for key, factory in {"t.mark": SetsMark, "t.stubborn": Stubborn, "t.slow": Slow}.items():
        resolver.register(Candidate("action", key, "test", factory))
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    Stubborn.swallowed = Slow.cancelled = 0
    yield WorkflowEngine(lifecycle, store=MemoryCheckpointStore())
    await lifecycle.shutdown()


async def test_a_context_variable_set_by_a_node_never_reaches_the_next_node_or_the_caller(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [Node("a", "t.mark"), Node("b", "t.mark", needs=["a"])]))
    MARK.set("caller")
    result = await engine.run("wf", run_id="ctx")
    assert result.ok
    assert result.outputs == {"a": {"seen": "caller"}, "b": {"seen": "caller"}}
    assert MARK.get() == "caller"


async def test_a_timeout_inside_a_chain_node_fails_that_node_and_the_engine_goes_on(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [Node("a", "t.mark"),
                                    Node("slow", "t.slow", needs=["a"], timeout="30ms")]))
    result = await engine.run("wf", run_id="t")
    assert result.status == "failed" and result.nodes["slow"].status == "timed_out"
    assert Slow.cancelled == 1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_cancelling_the_engine_reaches_the_inline_node_and_propagates(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [Node("slow", "t.slow")]))
    running = asyncio.ensure_future(engine.run("wf", run_id="sigterm"))
    await apoll_until(lambda: _status(engine, "sigterm", "slow") == "running",
                      message="the node is running")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert Slow.cancelled == 1
    assert engine.store.nodes("sigterm")["slow"].status == "cancelled"  # a resume re-runs it


async def test_a_node_swallowing_the_run_cancel_leaves_no_stray_cancellation(
    engine: Any,
) -> None:
    engine.register(Workflow("wf", [Node("s", "t.stubborn"), Node("after", "t.mark",
                                                                  needs=["s"])]))
    running = asyncio.ensure_future(engine.run("wf", run_id="stub"))
    await apoll_until(lambda: _status(engine, "stub", "s") == "running",
                      message="the node is running")
    await engine.cancel("stub")
    result = await running  # no CancelledError escapes into the engine's caller
    assert Stubborn.swallowed == 1
    assert result.status == "cancelled"
    assert result.nodes["after"].status == "skipped"  # nothing started after the cancel
    await asyncio.sleep(0.01)  # and this task is not cancelled later either


async def test_inline_run_passes_values_and_exceptions_like_await() -> None:
    async def child(fut: asyncio.Future[int]) -> int:
        return await fut + 1

    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, 41)
    assert await InlineRun(child(fut)).run() == 42

    async def fails() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await InlineRun(fails()).run()


async def test_inline_run_cancel_before_the_first_step_cancels_at_once() -> None:
    started = []

    async def body() -> None:
        started.append(True)
        await asyncio.sleep(0)

    run = InlineRun(body())
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run.run()
    assert run.cancelled and started == []
