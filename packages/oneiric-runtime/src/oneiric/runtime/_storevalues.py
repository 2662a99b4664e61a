"""Values the SQLite checkpoint store accepts, checked before anything is written.

Each check raises ``CheckpointStoreError`` (category ``invalid``) in one line
naming the value and what to pass instead: a bad value never reaches SQLite,
so a write is never half-applied and never fails with a raw ``sqlite3`` error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from oneiric.core.helpers import one_line

from ._errors import CheckpointStoreError
from ._runs import NODE_STATUSES, RUN_STATUSES, RunRecord

#: The outcomes ``node_finished`` records.
SETTLED_NODE_STATUSES = frozenset(NODE_STATUSES) - {"pending", "running"}

#: What ``set_run`` may change (everything else of a run is fixed at creation).
SET_FIELDS = frozenset({"status", "error", "finished_at", "recoveries", "cancel_requested",
                        "definition_hash", "version", "correlation_id"})

__all__ = ["_count", "_invalid", "_json", "_prose", "_stamp", "_text", "check_listing",
           "check_new_run", "check_outcome", "check_run_changes"]


def _invalid(message: str) -> CheckpointStoreError:
    return CheckpointStoreError(message, category="invalid")


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise _invalid(f"{what} is not JSON ({one_line(exc)}); return JSON values only "
                       "(objects, arrays, strings, finite numbers, booleans, null)") from None


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{what} must be a non-empty string, got {value!r}")
    return value


def _count(value: object, what: str = "attempt", least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _invalid(f"{what} must be an integer >= {least}, got {value!r}")
    return value


def _prose(value: object, what: str, *, optional: bool = True) -> str | None:
    """Free text (an error, a reason): a string, lone surrogates escaped so SQLite takes it."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a string{' or None' if optional else ''}, "
                       f"got {type(value).__name__}")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _stamp(value: object, what: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{what} must be POSIX seconds or None, got {value!r}")
    return float(value)


def check_new_run(record: object, nodes: Iterable[str] | str) -> tuple[list[str], str]:
    """``create_run``'s arguments checked: (node ids in order, the input as JSON)."""
    if not isinstance(record, RunRecord):
        raise _invalid(f"create_run needs a RunRecord, got {type(record).__name__}")
    _text(record.run_id, "run id")
    _text(record.workflow_id, "workflow id")
    if record.status not in RUN_STATUSES:
        raise _invalid(f"run status {record.status!r} is not one of {', '.join(RUN_STATUSES)}")
    node_ids = [nodes] if isinstance(nodes, str) else list(nodes)
    for node_id in node_ids:
        _text(node_id, f"node id of run {record.run_id!r}")
    if len(set(node_ids)) != len(node_ids):
        raise _invalid(f"run {record.run_id!r} names a node twice: {node_ids!r}")
    return node_ids, _json(record.input, f"the input of run {record.run_id!r}")


def check_run_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``set_run``'s changes checked and normalised (``cancel_requested`` a bool)."""
    unknown = sorted(set(changes) - SET_FIELDS)
    if unknown:
        raise _invalid(f"set_run cannot change {', '.join(unknown)}; it changes "
                       f"{', '.join(sorted(SET_FIELDS))}")
    values = dict(changes)
    if "status" in values and values["status"] not in RUN_STATUSES:
        raise _invalid(f"run status {values['status']!r} is not one of {RUN_STATUSES}")
    if "finished_at" in values:
        values["finished_at"] = _stamp(values["finished_at"], "finished_at")
    for name in ("recoveries", "version"):
        if name in values:
            _count(values[name], name, 0)
    if "cancel_requested" in values:
        values["cancel_requested"] = bool(values["cancel_requested"])
    for name in ("error", "correlation_id", "definition_hash"):
        if name in values:
            values[name] = _prose(values[name], name, optional=name != "definition_hash")
    return values


def check_outcome(run_id: str, node_id: str, attempt: object, status: str, output: Any,
                  error: object) -> tuple[int, str | None, str | None]:
    """``node_finished``'s arguments checked: (attempt, output as JSON or None, error)."""
    checked = _count(attempt)
    if status not in SETTLED_NODE_STATUSES:
        raise _invalid(f"node outcome {status!r} is not one of "
                       f"{', '.join(sorted(SETTLED_NODE_STATUSES))}")
    output_json = None if output is None else _json(
        output, f"the output of node {node_id!r} of run {run_id!r}")
    return checked, output_json, _prose(error, "node error")


def check_listing(status: str | None, limit: int | None) -> None:
    """``list_runs``'s filters checked."""
    if status is not None and status not in RUN_STATUSES:
        raise _invalid(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    if limit is not None:
        _count(limit, "limit", 0)
