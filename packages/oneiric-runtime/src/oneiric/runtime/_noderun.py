"""One node of a run: every attempt, checkpointed at start and end, under its retry policy.

The run loop (``_runloop``) runs one of these per node.  Each attempt renders
the node's input from the run's scope, invokes the action with the run's
idempotency key (``run_id/node_id``) and records exactly one outcome; a
retry (the node's own ``RetryPolicy``) is a new, checkpointed attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from oneiric.actions import (
    ActionFailed,
    ActionInputError,
    ActionOutputError,
    ActionTimeout,
    to_json,
)
from oneiric.core import ConfigError, RetryPolicy
from oneiric.core.telemetry import span

from ._errors import WorkflowError
from ._letter import scrub_error
from ._template import TemplateError

if TYPE_CHECKING:
    from ._engine import WorkflowEngine
    from ._runs import RunRecord
    from ._workflow import Node, Workflow

__all__ = ["Outputs", "run_node"]

_ONCE = RetryPolicy(max_attempts=1)
_NOT_RETRIED = (ActionInputError, ActionOutputError, TemplateError)


class Outputs(Mapping[str, Any]):
    """``${nodes.<id>.output...}``'s scope as a view of the outputs so far (no copy per node)."""

    __slots__ = ("_outputs",)

    def __init__(self, outputs: Mapping[str, Any]) -> None:
        self._outputs = outputs

    def __getitem__(self, node_id: str) -> Any:
        return {"output": self._outputs[node_id]}

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)


async def run_node(engine: WorkflowEngine, workflow: Workflow, record: RunRecord, node: Node,
                   done: int, scope: Mapping[str, Any], *,
                   started: bool = False) -> tuple[str, Any, int]:
    """Every attempt of one node; returns (status, output, attempts made).

    ``started``: the first attempt's start is recorded already (the run loop
    writes it with the step that made the node ready).  A success is returned,
    not written: the run loop records it with the starts it enables.
    """
    run_id = record.run_id
    policy = node.retry
    waits = list(policy.delays()) if policy is not None else []
    attempt = done
    while True:
        attempt += 1
        if started:
            started = False
        elif not engine.store.node_started(run_id, node.id, attempt):
            raise WorkflowError(f"run {run_id!r} node {node.id!r}: attempt {attempt} was "
                                "refused by the store (another executor?)")
        try:
            with span("oneiric.workflow.node", run_id=run_id, node=node.id,
                      action=node.action, attempt=attempt):
                payload = workflow.templates[node.id].render(scope)
                result = await engine.actions.invoke(
                    node.action, payload, timeout=node.timeout,
                    retry=_ONCE if policy is not None else None,
                    idempotency_key=f"{run_id}/{node.id}", run_id=run_id, node_id=node.id)
                output = to_json(result.value)  # Actions.invoke checked it is JSON already
                engine._check_json(output, f"node {node.id!r} output", shape=False)
        except asyncio.CancelledError:
            engine.store.node_finished(run_id, node.id, attempt, "cancelled", error="cancelled")
            raise
        except Exception as exc:
            timed_out = isinstance(exc, ActionTimeout)
            text = f"{type(exc).__name__}: {scrub_error(exc)}"
            retry = (policy is not None and attempt - done <= len(waits)
                     and not isinstance(exc, _NOT_RETRIED)
                     and not (isinstance(exc, ConfigError) and "output" in str(exc))
                     and policy.should_retry(exc.cause if isinstance(exc, ActionFailed)
                                             else exc))
            state = "timed_out" if timed_out else "failed"
            engine.store.node_finished(run_id, node.id, attempt, state, error=text)
            if not retry:
                return state, None, attempt
            await engine._sleep(waits[attempt - done - 1])
            continue
        return "succeeded", output, attempt  # recorded by the run loop (CheckpointStore.advance)

