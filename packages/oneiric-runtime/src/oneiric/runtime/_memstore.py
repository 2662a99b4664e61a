"""``MemoryCheckpointStore``: the ``CheckpointStore`` guarantees within one process.

For tests, benchmarks and short-lived jobs where a run need not survive its
process: the same conditional updates and one-executor rule as the SQLite
store, with no durability (nothing is written anywhere).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ._errors import RunLocked
from ._runs import FINISHED_RUN_STATUSES, NodeState, RunRecord

__all__ = ["MemoryCheckpointStore"]

_RUN_FIELDS = frozenset({"status", "error", "finished_at", "recoveries", "cancel_requested",
                         "definition_hash", "version"})


class MemoryCheckpointStore:
    """Runs and node states in dictionaries; ``executor`` is an in-process lock per run."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._runs: dict[str, RunRecord] = {}
        self._nodes: dict[str, dict[str, NodeState]] = {}
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def create_run(self, record: RunRecord, nodes: Iterable[str]) -> tuple[RunRecord, bool]:
        with self._lock:
            existing = self._runs.get(record.run_id)
            if existing is not None:
                return existing, False
            self._runs[record.run_id] = record
            self._nodes[record.run_id] = {n: NodeState() for n in nodes}
            return record, True

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def list_runs(self, *, status: str | None = None, workflow_id: str | None = None,
                  limit: int | None = None) -> list[RunRecord]:
        runs = [r for r in self._runs.values()
                if (status is None or r.status == status)
                and (workflow_id is None or r.workflow_id == workflow_id)]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[:limit] if limit is not None else runs

    def set_run(self, run_id: str, **changes: Any) -> RunRecord:
        unknown = set(changes) - _RUN_FIELDS
        if unknown:
            raise TypeError(f"set_run: unknown field {sorted(unknown)[0]!r}")
        with self._lock:
            record = dataclasses.replace(self._runs[run_id], updated_at=self._clock(), **changes)
            self._runs[run_id] = record
            return record

    def nodes(self, run_id: str) -> dict[str, NodeState]:
        return dict(self._nodes.get(run_id, {}))

    def node_started(self, run_id: str, node_id: str, attempt: int) -> bool:
        with self._lock:
            state = self._nodes[run_id][node_id]
            if state.status == "succeeded" or state.attempts >= attempt:
                return False
            self._nodes[run_id][node_id] = NodeState("running", attempt,
                                                     started_at=self._clock())
            return True

    def node_finished(self, run_id: str, node_id: str, attempt: int, status: str, *,
                      output: Any = None, error: str | None = None) -> bool:
        with self._lock:
            state = self._nodes[run_id][node_id]
            if state.status != "running" or state.attempts != attempt:
                return False
            self._nodes[run_id][node_id] = NodeState(  # not replace(): this is per node
                status, attempt, output, error, state.started_at, self._clock())
            return True

    def advance(
        self, run_id: str, *, succeeded: Sequence[tuple[str, int, Any]] = (),
        started: Sequence[tuple[str, int]] = (),
    ) -> bool:
        with self._lock:
            nodes = self._nodes[run_id]
            for node_id, attempt, _output in succeeded:
                state = nodes[node_id]
                if state.status != "running" or state.attempts != attempt:
                    return False
            for node_id, attempt in started:
                state = nodes[node_id]
                if state.status == "succeeded" or state.attempts >= attempt:
                    return False
            now = self._clock()
            for node_id, attempt, output in succeeded:
                nodes[node_id] = NodeState("succeeded", attempt, output, None,
                                           nodes[node_id].started_at, now)
            for node_id, attempt in started:
                nodes[node_id] = NodeState("running", attempt, started_at=now)
            return True

    def reset_nodes(self, run_id: str, node_ids: Iterable[str]) -> None:
        with self._lock:
            nodes = self._nodes[run_id]
            for node_id in node_ids:
                nodes[node_id] = NodeState("pending", nodes[node_id].attempts)

    def skip_nodes(self, run_id: str, node_ids: Iterable[str], reason: str) -> None:
        with self._lock:
            nodes = self._nodes[run_id]
            for node_id in node_ids:
                if nodes[node_id].status != "succeeded":
                    nodes[node_id] = NodeState("skipped", nodes[node_id].attempts, error=reason)

    @contextlib.contextmanager
    def executor(self, run_id: str) -> Iterator[None]:
        with self._lock:
            if run_id in self._held:
                raise RunLocked(f"run {run_id!r} is being executed; wait for it or cancel it")
            self._held.add(run_id)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(run_id)

    def executor_alive(self, run_id: str) -> bool:
        return run_id in self._held

    def prune(self, older_than: float) -> int:
        with self._lock:
            gone = [r for r, rec in self._runs.items()
                    if rec.status in FINISHED_RUN_STATUSES and rec.updated_at < older_than]
            for run_id in gone:
                del self._runs[run_id]
                del self._nodes[run_id]
            return len(gone)

    def close(self) -> None:
        return None
