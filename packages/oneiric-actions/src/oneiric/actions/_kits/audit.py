"""``workflow.audit`` (provider ``jsonl``): append-only, hash-chained, redacted audit records.

Payload ``{"event": str, "actor"?: str, "data"?: any}`` -> ``{"id", "at", "hash"}``.
Each call appends one JSON line to the file of the setting ``path`` (default
``<state dir>/audit.jsonl``; created 0600)::

    {"actor", "at", "data", "event", "hash", "id", "idempotency_key", "key",
     "node_id", "prev", "run_id", "seq", "tenant"}

``data``, ``event`` and ``actor`` are redacted first (``redact_secrets``:
settings secrets, bearer tokens, secret-looking keys), since an audit log is
read by more people than the system it audits.  ``hash`` is the SHA-256 of
the record without ``hash`` in canonical JSON (sorted keys, no spaces,
ASCII); ``prev`` is the previous record's ``hash`` (``null`` for the first),
``seq`` its line number.  Editing, removing, inserting or reordering a record
therefore breaks the chain at that line, and ``verify_chain(path)`` reports
the first broken line.  (The chain cannot show that records were cut off the
*end*: keep the latest ``hash`` a call returns somewhere else if that matters.)

Concurrency: reading the last hash, appending and ``fsync`` happen under
``oneiric.core.helpers.exclusive_lock`` on ``<path>.lock``, so processes and
threads appending at once never interleave lines or fork the chain.  A file
whose last line is incomplete (a crash mid-write, an edit) is refused for
appending until someone looks at it: appending would bury the damage.

The action has side effects and is not idempotent (each call is a new
record); the invocation's idempotency key is recorded, so a retried call's
duplicate can be recognised by readers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from oneiric.core import ConfigError
from oneiric.core.helpers import exclusive_lock, format_timestamp, one_line, state_dir

from .._errors import ActionError, ActionInputError
from .._json import find_non_json, to_json
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, take
from .sanitize import redact_secrets

__all__ = [
    "AUDIT_FILE",
    "AuditLogError",
    "AuditSettings",
    "ChainReport",
    "JsonlAudit",
    "canonical",
    "record_hash",
    "verify_chain",
]

KEY = "workflow.audit"

#: The audit file's name in the state directory (when ``path`` is not set).
AUDIT_FILE: Final = "audit.jsonl"
#: The longest ``event`` or ``actor`` accepted.
MAX_NAME: Final = 256
#: How long an append waits for another writer's lock without a deadline.
LOCK_WAIT: Final = 60.0

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAIL_CHUNK = 65536


class AuditSettings(BaseModel):
    """Provider settings of ``workflow.audit`` ``jsonl``."""

    model_config = ConfigDict(extra="forbid")

    #: The JSON-lines file; default ``<state dir>/audit.jsonl``.
    path: str | None = None


class AuditLogError(ActionError):
    """The audit file cannot be appended to (damaged last record, locked, unwritable)."""


def canonical(record: dict[str, Any]) -> str:
    """The one JSON text of a record that its hash covers (and the line written)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 hex of ``record`` without its ``hash`` field, in canonical JSON."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``verify_chain`` found: ``ok``, records checked, the first broken line and why."""

    ok: bool
    records: int
    line: int | None = None
    reason: str | None = None
    last_hash: str | None = None


def _broken(raw: bytes, number: int, expected_prev: str | None) -> str | None:
    """Why line ``number`` breaks the chain, or ``None`` when it continues it."""
    if not raw.endswith(b"\n"):
        return "incomplete record (no line end): a write was cut off or edited"
    try:
        record = json.loads(raw)
    except ValueError:
        return "not a JSON record"
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return "not an audit record (no hash)"
    if record_hash(record) != record["hash"]:
        return "hash does not match the record's content (edited)"
    if record.get("prev") != expected_prev:
        return (
            "prev does not match the previous record's hash "
            "(a record was removed, inserted or reordered)"
        )
    if record.get("seq") != number:
        return f"seq is {record.get('seq')!r}, expected {number}"
    return None


def verify_chain(path: str | os.PathLike[str]) -> ChainReport:
    """Check every record of the audit file at ``path``; report the first broken line.

    A missing file is an empty, intact chain.  Reads line by line (any size).
    ``OSError`` when the file exists but cannot be read.
    """
    expected_prev: str | None = None
    count = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; a missing file is no chain
    except FileNotFoundError:
        return ChainReport(True, 0)
    with handle:
        for number, raw in enumerate(handle, start=1):
            reason = _broken(raw, number, expected_prev)
            if reason is not None:
                return ChainReport(False, count, number, reason, expected_prev)
            expected_prev = json.loads(raw)["hash"]
            count += 1
    return ChainReport(True, count, last_hash=expected_prev)


def _last_record(path: Path) -> tuple[str | None, int]:
    """(hash, seq) of the file's last record; ``(None, 0)`` for a missing or empty file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None, 0
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return None, 0
        tail = b""
        position = size
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            tail = os.pread(fd, step, position) + tail
            if tail.count(b"\n") >= 2 or (position == 0 and tail):
                break
    finally:
        os.close(fd)
    if not tail.endswith(b"\n"):
        raise AuditLogError(
            f"audit file {str(path)!r} ends with an incomplete record; run verify_chain on it "
            "and repair or move it before appending"
        )
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(last)
        digest, seq = record["hash"], record["seq"]
    except (ValueError, KeyError, TypeError):
        raise AuditLogError(
            f"audit file {str(path)!r} ends with a line that is not an audit record; run "
            "verify_chain on it and repair or move it before appending"
        ) from None
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest) or not isinstance(seq, int):
        raise AuditLogError(
            f"audit file {str(path)!r}: the last record has no valid hash/seq; run verify_chain"
        )
    return digest, seq


def _append(path: Path, line: bytes) -> None:
    """Append ``line`` in one write, fsync it (and the directory when the file is new)."""
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    created = not os.path.lexists(path)
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created and hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _name(fields: Any, name: str, *, required: bool) -> str | None:
    value = take(fields, KEY, name, str, **({} if required else {"default": None}))
    if value is not None and not (0 < len(value) <= MAX_NAME):
        raise ActionInputError(
            f"action {KEY!r}: payload field {name} must be 1-{MAX_NAME} characters, "
            f"got {len(value)}",
            path=name,
        )
    return value  # type: ignore[no-any-return]


class JsonlAudit:
    """``workflow.audit`` provider ``jsonl``."""

    spec = ActionSpec(
        description="append-only, hash-chained, redacted audit records in a JSON-lines file",
        idempotent=False,
        side_effects=True,
        blocking=True,
    )

    def __init__(self, settings: AuditSettings | None = None) -> None:
        self.settings = settings if settings is not None else AuditSettings()
        if self.settings.path is None:
            self.path = state_dir() / AUDIT_FILE
        else:
            self.path = Path(self.settings.path).expanduser()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise ConfigError(
                    f"workflow.audit: cannot create the directory of path "
                    f"{self.settings.path!r}: {one_line(exc)}; set path to a writable place"
                ) from None
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, {"event", "actor", "data"})
        event = _name(fields, "event", required=True)
        actor = _name(fields, "actor", required=False)
        data = fields.get("data")
        bad = find_non_json(data, "data")
        if bad is not None:
            raise ActionInputError(
                f"action {KEY!r}: {bad} is not JSON-compatible; send objects, arrays, "
                "strings, numbers, booleans or null",
                path=bad,
            )
        redacted = redact_secrets({"event": event, "actor": actor, "data": data}, "data")
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "event": redacted["event"],
            "actor": redacted["actor"],
            "data": to_json(redacted["data"]),
            "key": context.key,
            "idempotency_key": context.idempotency_key,
            "run_id": context.run_id,
            "node_id": context.node_id,
            "tenant": context.tenant,
        }
        remaining = context.remaining()
        wait = LOCK_WAIT if remaining == float("inf") else max(remaining, 0.001)
        try:
            with exclusive_lock(self.lock_path, timeout=wait):
                prev, seq = _last_record(self.path)
                record.update(at=format_timestamp(), prev=prev, seq=seq + 1)
                record["hash"] = record_hash(record)
                _append(self.path, (canonical(record) + "\n").encode("ascii"))
        except TimeoutError:
            raise AuditLogError(
                f"audit file {str(self.path)!r}: another writer held the lock for {wait:g}s; "
                "retry later"
            ) from None
        except OSError as exc:
            raise AuditLogError(
                f"cannot append to audit file {str(self.path)!r}: {one_line(exc)}; check the "
                "path (a symbolic link is refused) and its permissions"
            ) from None
        return {"id": record["id"], "at": record["at"], "hash": record["hash"]}
