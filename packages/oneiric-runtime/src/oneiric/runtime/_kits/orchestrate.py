"""``workflow.orchestrate`` (provider ``builtin``): run a workflow from an action call.

Payload ``{"workflow", "input"?, "run_id"?, "wait"?: true}``:

- ``wait: true`` (the default) runs it on the invoking lifecycle's engine
  (``engine_for``: the one the host recovers and the CLI reads) and returns
  ``RunResult.as_dict()`` - a failed run is a result with ``status: failed``,
  not an error: the run's outcome is data the caller decides on.
- ``wait: false`` starts it in a background task and returns ``{"run_id",
  "status"}`` once the run is recorded.  The task is held by the engine's
  owner (``_host.background_runs``: a set per resolver, so it is never garbage
  collected mid-run) and cancelled by the host's workflow service at shutdown;
  its nodes are then checkpointed ``cancelled`` and the next start recovers
  the run.

The run id defaults to the call's ``idempotency_key`` (hashed when it is not
a valid run id), so a repeated call - an automation redelivering its event, a
parent workflow's node resumed after a crash - returns or resumes the same run
instead of starting a second one: the run id is the idempotency key.

Bad payload fields, an unknown workflow and input that is not JSON are
``ActionInputError`` naming the field (never retried); an invalid definition
is ``WorkflowDefinitionError``; a run another executor holds or whose
definition changed is ``RunLocked``/``DefinitionChanged`` (refused).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from oneiric.actions import ActionContext, ActionInputError, ActionSpec
from oneiric.core import ConfigError, NotRegisteredError

from .._errors import WorkflowDefinitionError
from ._common import RuntimeKit, fields_of, take

__all__ = ["Orchestrate"]

KEY = "workflow.orchestrate"
_FIELDS = frozenset({"workflow", "input", "run_id", "wait"})
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}", re.ASCII)


def default_run_id(idempotency_key: str) -> str:
    """The call's idempotency key as a run id (a stable digest when it does not fit one)."""
    if _RUN_ID.fullmatch(idempotency_key):
        return idempotency_key
    return "key-" + hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()


class Orchestrate(RuntimeKit):
    """Run (or start) one workflow on the invoking lifecycle's engine."""

    spec = ActionSpec(
        description="Run a workflow (wait for its result) or start it in the background",
        idempotent=True,  # the run id is the idempotency key: a repeat returns or resumes it
        side_effects=True,
        timeout=None,  # a run takes as long as its nodes; the caller's timeout bounds it
    )

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, _FIELDS)
        workflow_id = take(fields, KEY, "workflow", str)
        run_input = fields.get("input")
        run_id = take(fields, KEY, "run_id", str, default=None)
        wait = take(fields, KEY, "wait", bool, default=True)
        if run_id is None:
            run_id = default_run_id(context.idempotency_key)
        elif not _RUN_ID.fullmatch(run_id):
            raise ActionInputError(
                f"action {KEY!r}: payload field run_id {run_id!r} is not valid; use 1-128 "
                "characters of letters, digits, '_', '.', ':', '/', '-'", path="run_id")
        from .._host import background_runs, engine_for

        lifecycle = self.lifecycle(context)
        engine = engine_for(lifecycle)
        try:
            engine.get(workflow_id)
        except NotRegisteredError:
            raise ActionInputError(
                f"action {KEY!r}: no workflow {workflow_id!r}; known: "
                f"{', '.join(engine.workflows()) or 'none'}", path="workflow") from None
        run = engine.run(workflow_id, run_input, run_id=run_id)
        if wait:
            try:
                result = await run
            except WorkflowDefinitionError:
                raise
            except ConfigError as exc:  # bad input: the engine validated it before running
                raise ActionInputError(f"action {KEY!r}: {exc}", path="input") from None
            return result.as_dict()
        task: asyncio.Task[Any] = asyncio.ensure_future(run)
        held = background_runs(lifecycle)
        held.add(task)
        task.add_done_callback(held.discard)
        # the run's synchronous prefix validates and records it; let it get that far, so
        # bad input is this call's error and the returned run id can be looked up at once
        while not task.done() and engine.store.get_run(run_id) is None:
            await asyncio.sleep(0)
        if task.done():
            held.discard(task)  # its done callback runs later; nothing is running
        if task.done() and not task.cancelled():
            error = task.exception()
            if isinstance(error, ConfigError) and not isinstance(error, WorkflowDefinitionError):
                raise ActionInputError(f"action {KEY!r}: {error}", path="input") from None
            if error is not None:
                raise error
        task.add_done_callback(_log_failure)
        record = engine.store.get_run(run_id)
        return {"run_id": run_id, "status": record.status if record is not None else "running"}


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A background run's error would otherwise vanish with its task: log it."""
    if task.cancelled() or task.exception() is None:
        return
    from oneiric.core import get_logger
    from oneiric.core.helpers import one_line

    get_logger("oneiric.runtime.workflows").error(
        "background workflow run failed", error=one_line(task.exception()))  # type: ignore[arg-type]
