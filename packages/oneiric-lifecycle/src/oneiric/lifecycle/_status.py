"""The status document: what each key runs, what it should run, and why they differ.

``LifecycleManager.status()`` returns it and the manager writes it, atomically,
to ``<state dir>/status/<pid>.json`` so that ``oneiric status`` (another
process) can read it.  Shape (version 1; times are ``oneiric.core.helpers.format_timestamp``
strings, e.g. ``"2026-11-30T06:00:55.123Z"``; ``StatusDocument`` types it)::

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

Secrets are replaced by ``**********`` (``oneiric.core.redact``) in the whole
document, not only in provider settings: a failure text or reason may quote a
settings value (a DSN with a password), and a provider's model may hold a
secret as a plain ``str``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from oneiric.core import Candidate, get_logger
from oneiric.core.helpers import STATUS_DIR, atomic_write, format_timestamp, one_line

if TYPE_CHECKING:
    from ._activity import ActivityRecord
    from ._slot import Slot

__all__ = [
    "KeyStatus",
    "StatusDocument",
    "WatcherStatus",
    "document",
    "key_status",
    "read_snapshots",
    "snapshot_path",
    "timestamp",
    "write_snapshot",
]

_log = get_logger("oneiric.lifecycle.status")

STATUS_VERSION = 1


class WatcherStatus(TypedDict):
    """``SelectionWatcher.status()``: one entry of the document's ``config``."""

    config_dir: str
    state_dir: str | None
    mode: str
    error: str | None
    error_at: str | None
    applied_at: str | None
    reloads: int
    failures: int


class StoreStatus(TypedDict):
    """The document's ``activity``: the store this process polls and its last error."""

    path: str | None
    error: str | None


class KeyActivity(TypedDict):
    """The operator decision in force for a key, and the leases still held."""

    state: str
    note: str
    actor: str
    at: str | None
    in_flight: int
    drained: bool | None


class KeyStatus(TypedDict):
    """One ``(domain, key, tenant)`` the manager holds: what runs, what should, and why."""

    domain: str
    key: str
    tenant: str | None
    winner: str | None
    winner_source: str | None
    winner_error: str | None
    bound: str | None
    bound_source: str | None
    bound_at: str | None
    differs: bool
    reason: str | None
    activity: KeyActivity
    deferred: str | None
    swaps: int
    failures: int
    recent_failures: list[dict[str, str]]
    swap_latency: dict[str, object]
    last_health: dict[str, object] | None
    post_swap_errors: list[str]
    component_errors: list[str]
    settings: object


class StatusDocument(TypedDict):
    """What ``LifecycleManager.status()`` returns and the snapshot file holds (version 1)."""

    version: int
    pid: int
    host: str
    started_at: str
    written_at: str
    config: list[WatcherStatus]
    activity: StoreStatus
    keys: list[KeyStatus]


def timestamp(at: float | None) -> str | None:
    """``format_timestamp(at)``, or None for a time that never happened (not "now")."""
    return format_timestamp(at) if at is not None else None


def _redacted(settings: object) -> object:
    if settings is None:
        return None
    from oneiric.core import redact  # pydantic is loaded already if settings exist

    return json.loads(json.dumps(redact(settings), default=lambda v: redact(str(v))))


def _redacted_doc(doc: StatusDocument) -> StatusDocument:
    """``doc`` with every secret redacted (oneiric.core.redact).

    Without pydantic imported no secret exists in this process (only the
    settings loader resolves them), so the settings module is not imported
    just to find none.
    """
    if "pydantic" not in sys.modules:
        return doc
    from oneiric.core import redact

    return cast("StatusDocument", redact(doc))


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
        when = format_timestamp(failure.at)
        return True, f"failed swap to {failure.provider} at {when}: {failure.error}"
    if slot.manual is not None:
        provider, at = slot.manual
        return True, f"manual swap to {provider} at {format_timestamp(at)}"
    if slot.sticky_since is not None:
        return True, (
            f"sticky since {format_timestamp(slot.sticky_since)}: swap_policy is sticky, so a "
            "better candidate does not replace the bound one (swap explicitly or set greedy)"
        )
    return True, "bound candidate differs from the winner"


def key_status(
    slot: Slot,
    *,
    winner: Candidate | None,
    winner_error: str | None,
    registered: bool,
    activity: ActivityRecord | None,
) -> KeyStatus:
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
        "bound_at": format_timestamp(bound.bound_at) if bound is not None else None,
        "differs": differs,
        "reason": reason,
        "activity": {
            "state": state,
            "note": activity.note if activity is not None else "",
            "actor": activity.actor if activity is not None else "",
            "at": timestamp(activity.at) if activity is not None else None,
            "in_flight": in_flight,
            "drained": (in_flight == 0) if state == "draining" else None,
        },
        "deferred": slot.deferred,
        "swaps": slot.swaps,
        "failures": slot.failure_count,
        "recent_failures": [f.as_dict() for f in slot.failures],
        "swap_latency": slot.latency.as_dict(),
        "last_health": (
            {**health[0].as_dict(), "at": format_timestamp(health[1])}
            if health is not None
            else None
        ),
        "post_swap_errors": list(slot.post_swap_errors),
        "component_errors": list(slot.component_errors),
        "settings": _redacted(bound.settings) if bound is not None else None,
    }


def document(
    keys: list[KeyStatus],
    *,
    started_at: float,
    written_at: float,
    config: list[WatcherStatus],
    activity: StoreStatus,
) -> StatusDocument:
    """The whole document around ``keys``, secrets redacted."""
    import socket  # only the writer needs it: readers (``oneiric status``) do not pay for it

    return _redacted_doc({
        "version": STATUS_VERSION,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": format_timestamp(started_at),
        "written_at": format_timestamp(written_at),
        "config": config,
        "activity": activity,
        "keys": keys,
    })


def snapshot_path(state_dir: Path, pid: int | None = None) -> Path:
    """``<state dir>/status/<pid>.json``."""
    return state_dir / STATUS_DIR / f"{pid if pid is not None else os.getpid()}.json"


def write_snapshot(path: Path, doc: StatusDocument) -> None:
    """Write ``doc`` to ``path`` atomically: readers never see half of it.

    Not durable (no fsync): the snapshot is rewritten after every change and
    only observed, and the next write replaces a lost one.  Raises ``OSError``.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps(_redacted_doc(doc), indent=1, sort_keys=True, default=str)
    atomic_write(path, (text + "\n").encode("utf-8"), durable=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


#: A snapshot larger than this is not a status document (ours are a few KiB per key).
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
_MAX_PID = 2**31 - 1


def _optional(doc: dict[str, Any], name: str, kind: type, where: str) -> None:
    value = doc.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{where}{name!r} is a {type(value).__name__}, not a {kind.__name__}")


def _check_shape(doc: Any) -> int:
    """The pid of a well-formed snapshot; ``ValueError`` naming what is wrong otherwise.

    Checks what readers index into (``oneiric status`` and ``health``), so a
    foreign file of another shape is skipped instead of crashing them.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got a {type(doc).__name__}")
    pid = doc.get("pid")
    if type(pid) is not int or not 0 < pid <= _MAX_PID:
        raise ValueError(f"'pid' must be a positive process id, got {pid!r:.40}")
    for name in ("config", "keys"):
        _optional(doc, name, list, "")
    _optional(doc, "activity", dict, "")
    for watcher in doc.get("config") or []:
        if not isinstance(watcher, dict):
            raise ValueError("'config' entries must be objects")
    for index, key in enumerate(doc.get("keys") or []):
        if not isinstance(key, dict):
            raise ValueError(f"keys[{index}] is a {type(key).__name__}, not an object")
        for name in ("domain", "key"):
            if not isinstance(key.get(name), str):
                raise ValueError(f"keys[{index}] has no string {name!r}")
        for name in ("activity", "last_health"):
            _optional(key, name, dict, f"keys[{index}].")
    return pid


def _read_snapshot(file: Path) -> dict[str, Any]:
    """One snapshot file, parsed and shape-checked; ``ValueError`` for anything else."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the reader
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_SNAPSHOT_BYTES:
            raise ValueError(f"larger than {MAX_SNAPSHOT_BYTES} bytes")
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            data = fh.read(MAX_SNAPSHOT_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"larger than {MAX_SNAPSHOT_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
    _check_shape(doc)
    return doc  # type: ignore[no-any-return]


def read_snapshots(
    state_dir: Path,
    *,
    include_stale: bool = False,
    skipped: list[dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Every status snapshot in ``state_dir`` (for the CLI), each with ``"alive"`` added.

    Snapshots of processes that no longer run are skipped unless ``include_stale``.
    A file that is not a well-formed snapshot (a writer replaces its own
    atomically, so these are foreign: invalid JSON, another shape, a directory,
    a FIFO, huge nesting...) is skipped with a warning and, when ``skipped`` is
    given, appended to it as ``{"path", "error"}``: one bad file never hides the
    healthy ones.
    """
    result: list[dict[str, Any]] = []
    directory = state_dir / STATUS_DIR
    if not directory.is_dir():
        return result
    for file in sorted(directory.glob("*.json")):
        try:
            doc = _read_snapshot(file)
        except (OSError, ValueError) as exc:
            error = one_line(exc)
            _log.warning("unreadable status snapshot", path=str(file), error=error)
            if skipped is not None:
                skipped.append({"path": str(file), "error": error})
            continue
        doc["alive"] = _alive(doc["pid"])
        if doc["alive"] or include_stale:
            result.append(doc)
    return result
