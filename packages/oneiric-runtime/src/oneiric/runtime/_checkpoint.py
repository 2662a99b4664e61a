"""``CheckpointStore``: what the workflow engine needs from durable storage.

The engine's guarantees rest on four properties every implementation keeps
(``SQLiteCheckpointStore`` here, a Redis one in oneiric-fleet):

1. **A node's outcome is recorded exactly once.**  ``node_finished`` is a
   conditional update on (run, node, attempt) while that attempt is
   ``running``: a zombie attempt (an executor that lost its run) cannot
   overwrite a newer attempt's outcome.
2. **Start and end are durable before the engine goes on**: a start commits
   before the action is invoked, an outcome before dependents start and
   before ``run`` returns.  ``advance`` records successes and the starts they
   enable in one durable step (one commit per node on the hot path), all or
   nothing.
3. **One executor per run**: ``executor(run_id)`` holds an exclusive lock for
   as long as the engine executes the run (an OS-level lock for SQLite, so a
   dead executor's run is resumable at once from another process); a second
   holder gets ``RunLocked``.
4. **Creating a run never overwrites one**: ``create_run`` returns the
   existing record when the id exists (the run id is the idempotency key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from ._errors import RunLocked
from ._runs import NodeState, RunRecord

__all__ = ["CheckpointStore", "RunLocked"]


@runtime_checkable
class CheckpointStore(Protocol):
    """Durable runs and node states (see the module docstring for the guarantees)."""

    def create_run(self, record: RunRecord, nodes: Iterable[str]) -> tuple[RunRecord, bool]:
        """Insert ``record`` with every node ``pending``; ``(existing, False)`` if the id exists."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self, *, status: str | None = None, workflow_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Newest first."""
        ...

    def set_run(self, run_id: str, **changes: Any) -> RunRecord:
        """Update fields of the run record (``status``, ``error``, ``finished_at``,
        ``recoveries``, ``cancel_requested``, ``definition_hash``, ``version``); returns it."""
        ...

    def nodes(self, run_id: str) -> dict[str, NodeState]: ...

    def node_started(self, run_id: str, node_id: str, attempt: int) -> bool:
        """Mark ``running`` with ``attempt`` if the node is not settled ``succeeded`` and its
        recorded attempt is lower; ``False`` (nothing written) otherwise."""
        ...

    def node_finished(
        self, run_id: str, node_id: str, attempt: int, status: str, *,
        output: Any = None, error: str | None = None,
    ) -> bool:
        """Record the outcome only while (run, node, attempt) is ``running``; else ``False``."""
        ...

    def advance(
        self, run_id: str, *, succeeded: Sequence[tuple[str, int, Any]] = (),
        started: Sequence[tuple[str, int]] = (),
    ) -> bool:
        """Record ``succeeded`` outcomes ``(node, attempt, output)`` and ``started`` attempts
        ``(node, attempt)`` in one durable step, each under the condition of
        ``node_finished``/``node_started``; if any is refused nothing is written and the
        answer is ``False``."""
        ...

    def reset_nodes(self, run_id: str, node_ids: Iterable[str]) -> None:
        """Back to ``pending`` (keeping the attempt count), for a resume."""
        ...

    def skip_nodes(self, run_id: str, node_ids: Iterable[str], reason: str) -> None:
        """Mark ``skipped`` (with ``reason`` as the error) every listed node that is not
        ``succeeded``: an upstream node failed, so these never start (attempts unchanged)."""
        ...

    def executor(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the run's executor lock; ``RunLocked`` if another holder has it."""
        ...

    def executor_alive(self, run_id: str) -> bool:
        """True while some executor holds the run (in any process)."""
        ...

    def prune(self, older_than: float) -> int:
        """Delete finished runs last updated before ``older_than`` (POSIX seconds)."""
        ...

    def close(self) -> None: ...
