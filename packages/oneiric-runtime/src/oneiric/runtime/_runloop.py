"""The ready queue of one run: which node starts when, and one checkpoint per step.

A node enters the queue when its last need succeeds (counters, not a scan of
the graph per completion) and starts as soon as a slot is free - no barrier
per level.  Each node is a task (eager on 3.12+), its completion queued for
the loop (one wake-up, not a ``wait`` over every task); the only node that can
run is awaited in the engine's task instead (``InlineRun``: a chain pays no
trip through the event loop on 3.11).

**One durable step per node.**  A node's success is not written by the node:
the loop records it *together with the starts it enables* in one
``CheckpointStore.advance`` (one transaction), before any of those nodes
runs.  Guarantee 2 of the store holds - an outcome is durable before a
dependent starts, a start before its action is invoked - at one commit per
node instead of two.  A success not yet written when the process dies is an
in-flight node: a resume runs it once more, as it would one killed mid-action.
Failures, retries and cancellations are written by the node itself
(``run_node``): they are rare and need their own record at once.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from oneiric.core import OneiricError
from oneiric.core.helpers import start_task

from ._errors import WorkflowError
from ._inline import InlineRun
from ._noderun import Outputs, run_node

if TYPE_CHECKING:
    from ._engine import WorkflowEngine
    from ._runs import NodeState, RunRecord
    from ._workflow import Workflow

__all__ = ["RunLoop"]

#: 3.12+ starts node tasks eagerly (no trip through the loop): no need to run one inline.
_EAGER_TASKS = sys.version_info >= (3, 12)

_Result = tuple[str, Any, int]  # (status, output, attempts made), as run_node returns it


class RunLoop:
    """Execute the open nodes of one run; ``await run()`` says whether it was cancelled."""

    def __init__(self, engine: WorkflowEngine, workflow: Workflow, record: RunRecord,
                 flag: asyncio.Event, states: dict[str, NodeState], limit: int) -> None:
        self.engine = engine
        self.store = engine.store
        self.workflow = workflow
        self.record = record
        self.run_id = record.run_id
        self.flag = flag  # set: the run is cancelled (here, or in the store by another process)
        self.limit = limit
        self.status = {n: s.status for n, s in states.items()}
        self.attempts = {n: s.attempts for n, s in states.items()}
        self.outputs = {n: s.output for n, s in states.items() if s.status == "succeeded"}
        self.tasks: dict[asyncio.Task[_Result], str] = {}
        self._done: deque[tuple[str, asyncio.Task[_Result]]] = deque()
        self._succeeded: list[tuple[str, int, Any]] = []  # settled, not yet written
        self._inline: InlineRun[_Result] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._scope = {"input": record.input, "nodes": Outputs(self.outputs)}
        for node_id in workflow.order:  # a resume: descendants of a still-failed node skip
            if self.status[node_id] in ("failed", "timed_out", "skipped"):
                self.skip_below(node_id)
        status = self.status
        self._waiting = {n: sum(1 for m in workflow.by_id[n].needs if status[m] != "succeeded")
                         for n in workflow.order}
        self._ready = [n for n in workflow.order
                       if status[n] == "pending" and self._waiting[n] == 0]
        self._ready.reverse()  # pop() from the end keeps definition order

    # ------------------------------------------------------------------ run

    async def run(self) -> bool:
        """Run until nothing is left to start or wait for; True when cancelled."""
        watcher = asyncio.ensure_future(self._watch_cancel())
        flagged = asyncio.ensure_future(self.flag.wait())
        flagged.add_done_callback(lambda _f: self._on_cancel())
        try:
            return await self._loop()
        finally:
            watcher.cancel()
            flagged.cancel()
            if self._succeeded:  # settled before a cancel or a shutdown: never lost
                self._advance([])

    async def cancel_tasks(self) -> None:
        """The executor itself is cancelled: cancel every node task (each records it)."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks)

    async def _loop(self) -> bool:
        loop = asyncio.get_running_loop()
        cancelled = False
        while True:
            if not cancelled and self.flag.is_set():
                cancelled = True
                for task in self.tasks:
                    task.cancel()
            launch: list[str] = []
            while self._ready and not cancelled and len(self.tasks) + len(launch) < self.limit:
                node_id = self._ready.pop()
                if self.status[node_id] == "pending":
                    self.status[node_id] = "running"
                    launch.append(node_id)
            if launch or self._succeeded:
                self._advance(launch)
            if (len(launch) == 1 and not self.tasks and not self._done
                    and not _EAGER_TASKS):
                await self._run_inline(launch[0])
                continue
            for node_id in launch:
                self._start(node_id)
            if not self._done:
                if not self.tasks:
                    return cancelled
                self._wake = loop.create_future()
                await self._wake
                continue
            while self._done:
                node_id, finished = self._done.popleft()
                del self.tasks[finished]
                self._settle(node_id, None if finished.cancelled() else finished.result())

    def _node(self, node_id: str) -> Any:
        """``run_node`` for the next attempt of ``node_id`` (its start already written)."""
        return run_node(self.engine, self.workflow, self.record, self.workflow.by_id[node_id],
                        self.attempts[node_id], self._scope, started=True)

    def _start(self, node_id: str) -> None:
        # a task per node (eager on 3.12+: one that never suspends is done at once);
        # never a step here and the rest elsewhere (see oneiric.core.helpers.run_eagerly)
        task = start_task(self._node(node_id))
        self.tasks[task] = node_id
        if task.done():
            self._done.append((node_id, task))
        else:
            task.add_done_callback(self._settle_later)

    async def _run_inline(self, node_id: str) -> None:
        """The only node that can run (a chain), awaited here: no trip through the loop.

        It may bind timeouts to this task, which awaits nothing else meanwhile
        (see ``_inline``); a cancel of the run cancels the node, not the engine.
        """
        run = self._inline = InlineRun(self._node(node_id))
        me = asyncio.current_task()
        try:
            result: _Result | None = await run.run()
        except asyncio.CancelledError:
            if not run.cancelled or (me is not None and me.cancelling()):
                raise  # the engine itself is cancelled (shutdown, SIGTERM)
            result = None
        finally:
            self._inline = None
        self._settle(node_id, result)

    # ------------------------------------------------------------- settling

    def _settle_later(self, task: asyncio.Task[_Result]) -> None:
        self._done.append((self.tasks[task], task))
        self._wakeup()

    def _wakeup(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _on_cancel(self) -> None:
        if self._inline is not None:
            self._inline.cancel()  # the node awaited in this task: cancel it, not the engine
        self._wakeup()

    def _settle(self, node_id: str, result: _Result | None) -> None:
        status = self.status
        if result is None:
            status[node_id] = "cancelled"
            return
        node_status, output, attempts_made = result
        status[node_id] = node_status
        self.attempts[node_id] = attempts_made
        if node_status != "succeeded":
            self.skip_below(node_id)
            return
        self._succeeded.append((node_id, attempts_made, output))
        self.outputs[node_id] = output
        fresh = []
        for child in self.workflow.children[node_id]:
            self._waiting[child] -= 1
            if self._waiting[child] == 0 and status[child] == "pending":
                fresh.append(child)
        self._ready.extend(reversed(fresh))

    def _advance(self, launch: list[str]) -> None:
        """Write the successes settled so far and the starts of ``launch`` in one step."""
        succeeded, self._succeeded = self._succeeded, []
        if not self.store.advance(self.run_id, succeeded=succeeded,
                                  started=[(n, self.attempts[n] + 1) for n in launch]):
            raise WorkflowError(
                f"run {self.run_id!r}: the store refused to record "
                f"{', '.join(repr(n) for n, _a, _o in succeeded) or 'no outcome'} and start "
                f"{', '.join(repr(n) for n in launch) or 'nothing'} (another executor?)")

    def skip_below(self, node_id: str) -> None:
        """Mark every pending descendant of ``node_id`` skipped (it failed or was skipped)."""
        status = self.status
        below = [d for d in self.workflow.order
                 if d in self.workflow.descendants(node_id) and status[d] == "pending"]
        if below:
            for d in below:
                status[d] = "skipped"
            self.store.skip_nodes(self.run_id, below,
                                  f"upstream node {node_id!r} {status[node_id]}")

    async def _watch_cancel(self) -> None:
        """Set the flag when the store says another process asked to cancel the run."""
        while not self.flag.is_set():
            await asyncio.sleep(0.25)
            try:
                record = self.store.get_run(self.run_id)
            except OneiricError:  # locked for a moment: ask again next time
                continue
            if record is not None and record.cancel_requested:
                self.flag.set()
