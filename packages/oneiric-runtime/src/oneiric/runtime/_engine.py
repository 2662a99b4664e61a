"""``WorkflowEngine``: durable DAG runs - a ready queue, checkpoints, resume, recovery.

The order of a run:

1. ``run(id, input, run_id=)`` validates the definition (action keys too) and
   creates the run record; an existing run id returns its result or resumes
   it - the run id is the idempotency key, never a second executor.
2. The executor holds the store's lock on the run for as long as it runs.  A
   node starts as soon as its needs succeeded (no level barrier), bounded by
   ``max_concurrency``; each attempt is checkpointed at start and at end
   (a conditional update on run, node and attempt) before anything depends
   on it.  Actions are invoked with ``idempotency_key = run_id/node_id``.
3. A failed node skips its descendants; independent branches finish.
4. ``resume`` re-runs only failed, skipped and in-flight nodes, refuses a
   changed definition unless forced to a new version, and counts recoveries
   of runs whose executor died (past the cap the run is ``dead``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from oneiric.actions import (
    Actions,
    find_non_json,
)
from oneiric.core import Candidate, ConfigError, OneiricError
from oneiric.core.helpers import one_line, parse_duration, uuid4_text
from oneiric.core.telemetry import span
from oneiric.lifecycle import LifecycleManager

from ._checkpoint import CheckpointStore
from ._definitions import DOMAIN, from_candidate
from ._errors import DefinitionChanged, RunLocked, RunNotFound, WorkflowError
from ._plan import Plan, plan
from ._runloop import RunLoop
from ._runs import FINISHED_RUN_STATUSES, RERUN_STATUSES, NodeState, RunRecord, RunResult
from ._workflow import Workflow

__all__ = ["DEFAULT_RECOVERY_CAP", "DEFAULT_RETENTION", "WorkflowEngine"]

DEFAULT_RECOVERY_CAP = 5
#: Finished runs older than this (seconds; 14 days) are pruned by ``prune()``.
DEFAULT_RETENTION = 14 * 86400.0
DEFAULT_MAX_OUTPUT_BYTES = 1 << 20
_PENDING = NodeState()
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}", re.ASCII)


class WorkflowEngine:
    """Run, resume, cancel and inspect workflow runs of a ``LifecycleManager``.

    Usable right after construction; the checkpoint store opens on first use
    (``store=None``: ``SQLiteCheckpointStore(<state dir>/workflows.sqlite)``).
    ``sleep``/``rng`` drive retry waits (tests inject them).  ``retention``
    (seconds or ``"14d"``; ``None`` keeps every run) is how long ``prune`` keeps
    finished runs.
    """

    def __init__(
        self,
        lifecycle: LifecycleManager,
        *,
        store: Any = None,
        max_concurrency: int = 16,
        state_dir: Any = None,
        recovery_cap: int = DEFAULT_RECOVERY_CAP,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.time,
        retention: float | str | None = DEFAULT_RETENTION,
    ) -> None:
        for name, value in (("max_concurrency", max_concurrency), ("recovery_cap", recovery_cap),
                            ("max_output_bytes", max_output_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"WorkflowEngine {name} must be an integer >= 1, got {value!r}")
        self.retention = (None if retention is None
                          else parse_duration(retention, what="WorkflowEngine retention"))
        if self.retention is not None and self.retention <= 0:
            raise ConfigError(f"WorkflowEngine retention must be more than 0 seconds or None "
                              f"(keep every run), got {retention!r}")
        self.lifecycle = lifecycle
        self.actions = Actions(lifecycle)
        self.max_concurrency = max_concurrency
        self.recovery_cap = recovery_cap
        self.max_output_bytes = max_output_bytes
        self._store = store
        self._state_dir = state_dir
        self._sleep = sleep or asyncio.sleep
        self._clock = clock
        self._registered: dict[str, Workflow] = {}
        self._built: dict[str, tuple[Candidate, Workflow]] = {}  # resolver winners, built once
        self._running: dict[str, asyncio.Event] = {}  # run id -> cancel requested here
        self._finished: dict[str, asyncio.Event] = {}  # run id -> set when its executor ends

    # ------------------------------------------------------------ definitions

    @property
    def store(self) -> CheckpointStore:
        if self._store is None:
            from oneiric.core import state_dir

            from ._sqlitestore import DEFAULT_CHECKPOINTS, SQLiteCheckpointStore

            self._store = SQLiteCheckpointStore(Path(state_dir(self._state_dir)) /
                                                DEFAULT_CHECKPOINTS)
        store: CheckpointStore = self._store
        return store

    def register(self, workflow: Workflow | Mapping[str, Any]) -> Workflow:
        """Add a definition in code (a ``Workflow`` or the file shape); validated now."""
        if not isinstance(workflow, Workflow):
            workflow = Workflow.from_mapping(workflow)
        workflow.check_actions(self.lifecycle.resolver.keys("action"))
        self._registered[workflow.id] = workflow
        return workflow

    def get(self, workflow_id: str) -> Workflow:
        """The definition: registered in code, else the resolver's ``workflow`` winner."""
        found = self._registered.get(workflow_id)
        if found is not None:
            return found
        candidate = self.lifecycle.resolver.resolve(DOMAIN, workflow_id)  # NotRegisteredError
        built = self._built.get(workflow_id)
        if built is not None and built[0] is candidate:
            return built[1]  # the same registration: its definition was validated already
        workflow = from_candidate(candidate)
        self._built[workflow_id] = (candidate, workflow)
        return workflow

    def workflows(self) -> list[str]:
        """Every workflow id this engine can run (code and resolver), sorted."""
        return sorted(set(self._registered) | set(self.lifecycle.resolver.keys(DOMAIN)))

    def plan(self, workflow_id: str) -> Plan:
        return plan(self.get(workflow_id))

    # ------------------------------------------------------------------ runs

    async def run(
        self,
        workflow_id: str,
        input: Any = None,
        *,
        run_id: str | None = None,
        correlation_id: str | None = None,
    ) -> RunResult:
        """Run ``workflow_id`` to the end; an existing ``run_id`` returns or resumes that run."""
        workflow = self.get(workflow_id)
        workflow.check_actions(self.lifecycle.resolver.keys("action"))
        self._check_json(input, "run input")
        if run_id is None:
            run_id = uuid4_text()
        elif not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise ConfigError(f"run id {run_id!r} is not valid; use 1-128 characters of "
                              "letters, digits, '_', '.', ':', '/', '-'")
        now = self._clock()
        record = RunRecord(run_id, workflow.id, workflow.version, workflow.definition_hash(),
                           input, "running", now, now, correlation_id=correlation_id)
        stored, created = self.store.create_run(record, workflow.order)
        if not created:
            if stored.workflow_id != workflow.id:
                raise WorkflowError(f"run {run_id!r} belongs to workflow "
                                    f"{stored.workflow_id!r}, not {workflow.id!r}")
            if stored.status in FINISHED_RUN_STATUSES:
                return self.status(run_id)
            finished = self._finished.get(run_id)
            if finished is not None:  # executing here: wait for that executor, never a second
                await finished.wait()
                return self.status(run_id)
            return await self.resume(run_id)
        return await self._execute(workflow, stored, fresh=True)

    async def resume(self, run_id: str, *, force: bool = False) -> RunResult:
        """Re-run the failed, skipped and in-flight nodes of a run; never a succeeded one."""
        record = self._record(run_id)
        if record.status == "succeeded":
            return self.status(run_id)
        if record.status == "dead":
            raise WorkflowError(f"run {run_id!r} is dead after {record.recoveries} recoveries; "
                                "start a new run (a poison run is not resumed again)")
        workflow = self.get(record.workflow_id)
        current = workflow.definition_hash()
        if current != record.definition_hash:
            if not force:
                raise DefinitionChanged(
                    f"run {run_id!r} started with another definition of {workflow.id!r} "
                    f"(v{record.version}); resume it with force=True after raising the "
                    "version, or start a new run")
            if workflow.version <= record.version:
                raise DefinitionChanged(
                    f"forcing run {run_id!r} onto a changed definition needs a new version "
                    f"(now v{workflow.version}, the run has v{record.version}); raise version")
            self.store.set_run(run_id, definition_hash=current, version=workflow.version)
        if run_id in self._running or self.store.executor_alive(run_id):
            raise RunLocked(f"run {run_id!r} is being executed; wait for it or cancel it")
        if record.status == "running":  # its executor died: this is a recovery
            recoveries = record.recoveries + 1
            if recoveries > self.recovery_cap:
                self.store.set_run(run_id, status="dead", finished_at=self._clock(),
                                   recoveries=recoveries,
                                   error=f"recovered {self.recovery_cap} times without finishing")
                return self.status(run_id)
            record = self.store.set_run(run_id, recoveries=recoveries)
        again = [n for n, s in self.store.nodes(run_id).items() if s.status in RERUN_STATUSES]
        self.store.reset_nodes(run_id, again)
        record = self.store.set_run(run_id, status="running", error=None, finished_at=None,
                                    cancel_requested=False)
        return await self._execute(workflow, record)

    async def recover(self) -> list[RunResult]:
        """Resume every ``running`` run whose executor died (at start: a host service)."""
        from oneiric.core import get_logger

        results: list[RunResult] = []
        for record in self.store.list_runs(status="running"):
            if record.run_id in self._running or self.store.executor_alive(record.run_id):
                continue
            try:
                results.append(await self.resume(record.run_id))
            except (OneiricError, WorkflowError) as exc:
                get_logger("oneiric.runtime.workflows").error(
                    "run not recovered", run_id=record.run_id, error=one_line(exc))
        return results

    async def cancel(self, run_id: str) -> RunResult:
        """Stop a run: in-flight nodes are cancelled, pending ones never start."""
        record = self._record(run_id)
        if record.status in FINISHED_RUN_STATUSES:
            return self.status(run_id)
        self.store.set_run(run_id, cancel_requested=True)
        flag = self._running.get(run_id)
        if flag is not None:
            flag.set()
            while run_id in self._running:
                await asyncio.sleep(0.005)
        elif not self.store.executor_alive(run_id):
            self._settle_cancelled(run_id)
        return self.status(run_id)

    def status(self, run_id: str) -> RunResult:
        record = self._record(run_id)
        nodes = self.store.nodes(run_id)
        outputs = {n: s.output for n, s in nodes.items() if s.status == "succeeded"}
        return RunResult(run_id, record.status, outputs, nodes, record.workflow_id, record.error)

    def prune(self) -> int:
        """Delete finished runs last updated more than ``retention`` ago; how many.

        Running runs are never pruned; ``retention=None`` keeps everything.  The
        host's workflow service calls this at start and daily.
        """
        if self.retention is None:
            return 0
        return self.store.prune(self._clock() - self.retention)

    def runs(self, *, status: str | None = None, workflow_id: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        return list(self.store.list_runs(status=status, workflow_id=workflow_id, limit=limit))

    async def aclose(self) -> None:
        if self._store is not None:
            self._store.close()

    async def __aenter__(self) -> WorkflowEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------- executing

    def _record(self, run_id: str) -> RunRecord:
        record = self.store.get_run(run_id)
        if record is None:
            raise RunNotFound(f"no workflow run {run_id!r}; list runs with 'oneiric workflow runs'")
        return record

    def _check_json(self, value: Any, what: str, *, shape: bool = True) -> str:
        """``value`` as compact JSON, refused when not JSON or over the size cap.

        ``shape=False`` skips the walk for a value already checked (an action's
        output, checked by ``Actions.invoke``): only the size is left to check.
        """
        kind = type(value)
        if not shape and (value is None or kind is bool):  # the common no-op outputs:
            text = "null" if value is None else "true" if value else "false"  # no encoder
        else:
            bad = find_non_json(value, allow_bytes=False) if shape else None
            if bad is not None:  # (json.dumps alone would silently turn a key 1 into "1")
                raise ConfigError(f"{what} is not JSON at {bad}; pass JSON values "
                                  "(objects with string keys, finite numbers; bytes as "
                                  "{\"base64\": ...})")
            try:
                text = json.dumps(value, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{what} is not JSON: {one_line(exc)}; pass JSON values "
                                  "(bytes as {\"base64\": ...})") from None
        if len(text) > self.max_output_bytes:
            raise ConfigError(f"{what} is {len(text)} bytes, over the "
                              f"{self.max_output_bytes}-byte cap; pass a reference instead")
        return text

    def _settle_cancelled(self, run_id: str) -> None:
        nodes = self.store.nodes(run_id)
        open_ = [n for n, s in nodes.items() if s.status in ("pending", "running")]
        self.store.skip_nodes(run_id, open_, "run cancelled")
        self.store.set_run(run_id, status="cancelled", finished_at=self._clock(),
                           error="cancelled")

    async def _execute(self, workflow: Workflow, record: RunRecord, *,
                       fresh: bool = False) -> RunResult:
        run_id = record.run_id
        flag = asyncio.Event()
        finished = asyncio.Event()
        with self.store.executor(run_id):
            self._running[run_id] = flag
            self._finished[run_id] = finished
            try:
                with span("oneiric.workflow.run", new_trace=True, workflow=workflow.id,
                          run_id=run_id, correlation_id=record.correlation_id):
                    await self._drive(workflow, record, flag, fresh)
            finally:
                del self._running[run_id]
                del self._finished[run_id]
                finished.set()
        return self.status(run_id)

    async def _drive(self, workflow: Workflow, record: RunRecord, flag: asyncio.Event,
                     fresh: bool) -> None:
        run_id = record.run_id
        # a run just created has every node pending: no need to read them back
        states = ({n: _PENDING for n in workflow.order} if fresh
                  else self.store.nodes(run_id))
        limit = min(workflow.max_concurrency or self.max_concurrency, self.max_concurrency)
        queue = RunLoop(self, workflow, record, flag, states, limit)
        try:
            cancelled = await queue.run()
        except BaseException:  # the executor itself is cancelled (shutdown, SIGTERM)
            await queue.cancel_tasks()  # each records "cancelled"; a resume runs them again
            raise
        if cancelled:
            self._settle_cancelled(run_id)
            return
        status = queue.status
        failed = [n for n in workflow.order if status[n] != "succeeded"]
        if failed:
            first = next((n for n in workflow.order if status[n] in ("failed", "timed_out")),
                         failed[0])
            error = self.store.nodes(run_id)[first].error
            self.store.set_run(run_id, status="failed", finished_at=self._clock(),
                               error=f"node {first!r} {status[first]}: {error}")
        else:
            self.store.set_run(run_id, status="succeeded", finished_at=self._clock(), error=None)
