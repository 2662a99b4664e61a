"""Workflow runs as data: statuses, one node's state, a run's record and its result.

Shared by the engine and every ``CheckpointStore`` (SQLite here, Redis in
oneiric-fleet), so a store stores exactly what the engine means and nothing
is translated between them.  All JSON-ready (``as_dict``); outputs are JSON
values only - never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oneiric.core.helpers import format_timestamp

__all__ = [
    "NODE_STATUSES",
    "RUN_STATUSES",
    "NodeState",
    "RunRecord",
    "RunResult",
]

#: A run: ``running`` until every node is settled, then ``succeeded`` or ``failed``;
#: ``cancelled`` by ``cancel``; ``dead`` after the recovery cap.
RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "dead")
#: A node: ``pending`` -> ``running`` -> one of the settled states.
NODE_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "timed_out", "cancelled")
#: Node states a resume runs again (a ``succeeded`` node never runs twice).
RERUN_STATUSES = frozenset({"pending", "running", "failed", "skipped", "timed_out", "cancelled"})
FINISHED_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "dead"})


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node of one run: its status, how many attempts started, its output or error."""

    status: str = "pending"
    attempts: int = 0
    output: Any = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "output": self.output,
            "error": self.error,
            "started_at": format_timestamp(self.started_at) if self.started_at else None,
            "finished_at": format_timestamp(self.finished_at) if self.finished_at else None,
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a store keeps about a run besides its nodes.

    ``definition_hash`` gates resume (a changed definition is refused);
    ``recoveries`` counts resumes of a run whose executor died (the cap makes
    it ``dead``); ``cancel_requested`` reaches an executor in another process.
    """

    run_id: str
    workflow_id: str
    version: int
    definition_hash: str
    input: Any
    status: str = "running"
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    recoveries: int = 0
    cancel_requested: bool = False
    correlation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "version": self.version,
            "definition_hash": self.definition_hash,
            "input": self.input,
            "status": self.status,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
            "finished_at": format_timestamp(self.finished_at) if self.finished_at else None,
            "error": self.error,
            "recoveries": self.recoveries,
            "cancel_requested": self.cancel_requested,
            "correlation_id": self.correlation_id,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """``run``/``resume``/``status``: the run id, its status, outputs and every node's state."""

    run_id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    workflow_id: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "status": self.status,
            "error": self.error,
            "outputs": self.outputs,
            "nodes": {k: v.as_dict() for k, v in self.nodes.items()},
        }
