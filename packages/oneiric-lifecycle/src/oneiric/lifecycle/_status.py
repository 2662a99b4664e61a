"""The status document: what each key runs, what it should run, and why they differ.

``LifecycleManager.status()`` returns it and the manager writes it, atomically,
to ``<state dir>/status/<pid>.json`` so that ``oneiric status`` (another
process) can read it.  Shape (version 1; times are ISO-8601 UTC strings)::

    {
      "version": 1, "pid": 1234, "host": "web-1", "started_at": ..., "written_at": ...,
      "config": [{"config_dir", "mode", "error", "error_at", "applied_at", "reloads"}],
      "activity": {"path": str | null, "error": str | null},
      "keys": [{
        "domain", "key", "tenant",
        "winner": provider | null, "winner_source", "winner_error": str | null,
        "bound": provider | null, "bound_source", "bound_at",
        "differs": bool, "reason": str | null,
        "activity": {"state": "active" | "paused" | "draining", "note", "actor", "at",
                     "in_flight": int, "drained": bool | null},
        "deferred": str | null,
        "swaps": int, "failures": int,
        "recent_failures": [{"at", "provider", "kind", "error_type", "error", "reason"}],
        "swap_latency": {"count", "mean_s", "p50_s", "p99_s", "max_s", "buckets": {...}},
        "last_health": {"ok", "detail", "at"} | null,
        "post_swap_errors": [str], "component_errors": [str],
        "settings": {...redacted...} | null
      }]
    }

Secrets in provider settings are replaced by ``**********`` (``oneiric.core.redact``).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import Candidate, get_logger

if TYPE_CHECKING:
    from ._activity import ActivityRecord
    from ._slot import Slot

__all__ = ["STATUS_DIR", "iso", "key_status", "read_snapshots", "snapshot_path", "write_snapshot"]

_log = get_logger("oneiric.lifecycle.status")

STATUS_DIR = "status"
STATUS_VERSION = 1


def iso(at: float | None) -> str | None:
    """Epoch seconds as an ISO-8601 UTC string."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat()


def _redacted(settings: Any) -> Any:
    if settings is None:
        return None
    from oneiric.core import redact  # pydantic is loaded already if settings exist

    return json.loads(json.dumps(redact(settings), default=str))


def _reason(
    slot: Slot,
    winner: Candidate | None,
    winner_error: str | None,
    registered: bool,
    activity: ActivityRecord | None,
) -> tuple[bool, str | None]:
    bound = slot.current
    if bound is None:
        if slot.failures:
            last = slot.failures[-1]
            return True, f"not bound: activation failed ({last.kind}: {last.error})"
        return True, "not bound"
    if slot.override is not None:
        return True, "override in force (LifecycleManager.override)"
    if winner_error is not None:
        return True, f"winner unavailable: {winner_error}"
    assert bound.candidate is not None
    if winner is not None and winner == bound.candidate:
        return False, None
    if not registered:
        return True, "orphaned: its candidate was removed from the resolver; it keeps serving"
    if slot.deferred is not None:
        state = activity.state if activity is not None else "paused"
        return True, f"{state}: swap deferred until resume ({slot.deferred})"
    failure = slot.auto_failure
    if failure is not None and winner is not None and failure.provider == winner.provider:
        return True, f"failed swap to {failure.provider} at {iso(failure.at)}: {failure.error}"
    if slot.manual is not None:
        provider, at = slot.manual
        return True, f"manual swap to {provider} at {iso(at)}"
    if slot.sticky_since is not None:
        return True, (
            f"sticky since {iso(slot.sticky_since)}: swap_policy is sticky, so a better "
            "candidate does not replace the bound one (swap explicitly or set greedy)"
        )
    return True, "bound candidate differs from the winner"


def key_status(
    slot: Slot,
    *,
    winner: Candidate | None,
    winner_error: str | None,
    registered: bool,
    activity: ActivityRecord | None,
) -> dict[str, Any]:
    """The status entry of one slot (JSON-serializable, secrets redacted)."""
    bound = slot.current
    differs, reason = _reason(slot, winner, winner_error, registered, activity)
    in_flight = slot.in_flight()
    state = activity.state if activity is not None else "active"
    health = slot.last_health
    return {
        "domain": slot.domain,
        "key": slot.key,
        "tenant": slot.tenant,
        "winner": winner.provider if winner is not None else None,
        "winner_source": str(winner.source) if winner is not None else None,
        "winner_error": winner_error,
        "bound": bound.provider if bound is not None else None,
        "bound_source": (
            str(bound.candidate.source) if bound is not None and bound.candidate else None
        ),
        "bound_at": iso(bound.bound_at) if bound is not None else None,
        "differs": differs,
        "reason": reason,
        "activity": {
            "state": state,
            "note": activity.note if activity is not None else "",
            "actor": activity.actor if activity is not None else "",
            "at": iso(activity.at) if activity is not None else None,
            "in_flight": in_flight,
            "drained": (in_flight == 0) if state == "draining" else None,
        },
        "deferred": slot.deferred,
        "swaps": slot.swaps,
        "failures": slot.failure_count,
        "recent_failures": [
            {**f.as_dict(), "at": iso(f.at)} for f in slot.failures
        ],
        "swap_latency": slot.latency.as_dict(),
        "last_health": (
            {**health[0].as_dict(), "at": iso(health[1])} if health is not None else None
        ),
        "post_swap_errors": list(slot.post_swap_errors),
        "component_errors": list(slot.component_errors),
        "settings": _redacted(bound.settings) if bound is not None else None,
    }


def document(
    keys: list[dict[str, Any]],
    *,
    started_at: float,
    written_at: float,
    config: list[dict[str, Any]],
    activity: dict[str, Any],
) -> dict[str, Any]:
    return {
        "version": STATUS_VERSION,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": iso(started_at),
        "written_at": iso(written_at),
        "config": config,
        "activity": activity,
        "keys": keys,
    }


def snapshot_path(state_dir: Path, pid: int | None = None) -> Path:
    """``<state dir>/status/<pid>.json``."""
    return state_dir / STATUS_DIR / f"{pid if pid is not None else os.getpid()}.json"


def write_snapshot(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically (temp file + rename): readers never see half."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_snapshots(state_dir: Path, *, include_stale: bool = False) -> list[dict[str, Any]]:
    """Every status snapshot in ``state_dir`` (for the CLI), each with ``"alive"`` added.

    Snapshots of processes that no longer run are skipped unless ``include_stale``;
    unreadable files are skipped with a warning (a writer replaces them atomically,
    so this only happens for foreign files).
    """
    result: list[dict[str, Any]] = []
    directory = state_dir / STATUS_DIR
    if not directory.is_dir():
        return result
    for file in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            pid = int(doc["pid"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("unreadable status snapshot", path=str(file), error=str(exc))
            continue
        doc["alive"] = _alive(pid)
        if doc["alive"] or include_stale:
            result.append(doc)
    return result
