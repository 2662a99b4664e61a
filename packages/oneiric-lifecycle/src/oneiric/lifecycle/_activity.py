"""Operator decisions per (domain, key) — pause, drain, resume — in a shared SQLite file.

Why SQLite: the CLI (one process) writes a decision and every running
application on the machine (other processes) must see it, with history, with
no server to run.  WAL mode lets the applications read while the CLI writes.
Each thread gets one connection (created on first use, reused after); a
running ``LifecycleManager`` polls ``data_version()`` — a cheap counter that
changes when *another* connection commits — and re-reads only then.

Schema (``PRAGMA user_version = 1``)::

    activity(domain, key, state, note, actor, at)   one row per key, the current decision
    history(id, domain, key, state, note, actor, at) every decision, append-only

``state`` is ``active`` (resumed), ``paused`` or ``draining``; ``at`` is epoch
seconds in the file and on ``ActivityRecord.at``; ``as_dict()`` (what JSON
output shows) formats it with ``oneiric.core.helpers.format_timestamp``.  A key
without a row is active.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from oneiric.core import get_logger, state_dir, validate_name
from oneiric.core.helpers import ACTIVITY_FILE, format_timestamp, one_line

from ._errors import ActivityStoreError

__all__ = ["ActivityRecord", "ActivityState", "ActivityStore"]

_log = get_logger("oneiric.lifecycle.activity")

SCHEMA_VERSION = 1
ActivityState = Literal["active", "paused", "draining"]
_ACTIONS = {"active": "resume", "paused": "pause", "draining": "drain"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS activity (
    domain TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'draining')),
    note TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (domain, key)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """The operator decision in force for one key (``state="active"`` when none)."""

    domain: str
    key: str
    state: ActivityState = "active"
    note: str = ""
    actor: str = ""
    at: float | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The record for JSON output: ``at`` as the one timestamp format (None: never)."""
        at = format_timestamp(self.at) if self.at is not None else None
        return {**dataclasses.asdict(self), "at": at}


def default_actor() -> str:
    """``user@host pid N``: who wrote a decision, for the activity history."""
    # Imported here: a process that only reads decisions (``oneiric swap``,
    # ``status``) does not pay for getpass.
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    if hasattr(os, "uname"):  # POSIX: what gethostname() returns, without importing socket
        host = os.uname().nodename
    else:
        import socket

        host = socket.gethostname()
    return f"{user}@{host} pid {os.getpid()}"


class ActivityStore:
    """Pause, drain and resume decisions shared by every process using ``path``.

    ``path`` defaults to ``<state dir>/activity.sqlite``.  ``busy_timeout`` is
    how long a write waits for another process's write lock before failing
    with ``ActivityStoreError``; ``clock`` stamps decisions (injectable).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        actor: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else state_dir() / ACTIVITY_FILE
        self.busy_timeout = busy_timeout
        self._clock = clock
        self._actor = actor
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._closed = False
        self._subscribers: list[Callable[[ActivityRecord], object]] = []
        with self._errors("open"):
            conn = self._connection()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ActivityStoreError(
                    f"activity store {self.path} has schema version {version}, newer than "
                    f"{SCHEMA_VERSION}; upgrade oneiric-lifecycle or use another state dir"
                )
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    # --------------------------------------------------------------- plumbing

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise ActivityStoreError(f"activity store {self.path} is closed; open a new one")
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # explicit BEGIN/COMMIT
            check_same_thread=False,  # closed from close(), used by one thread only
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                _log.warning("activity store not in WAL mode", path=str(self.path), mode=mode)
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._conn_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into one-line ``ActivityStoreError``s."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            lowered = text.lower()
            if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
                message = (
                    f"activity store {self.path} is not a valid SQLite database ({text}); "
                    "move it aside or delete it (it holds only pause/drain decisions)"
                )
            elif "locked" in lowered or "busy" in lowered:
                message = (
                    f"activity store {self.path} is locked by another process (waited "
                    f"{self.busy_timeout:g} s to {action}); retry, or find the process holding it"
                )
            elif "unable to open" in lowered or "readonly" in lowered:
                message = (
                    f"cannot {action} activity store {self.path}: {text}; check that the "
                    "directory exists and is writable (or set ONEIRIC_STATE_DIR)"
                )
            else:
                message = f"activity store {self.path}: cannot {action}: {text}"
            raise ActivityStoreError(message) from None

    # ----------------------------------------------------------------- writes

    def pause(
        self, domain: str, key: str, *, note: str = "", actor: str | None = None
    ) -> ActivityRecord:
        """Refuse new leases on ``domain/key`` until ``resume``; in-flight ones continue."""
        return self._write(domain, key, "paused", note, actor)

    def drain(
        self, domain: str, key: str, *, note: str = "", actor: str | None = None
    ) -> ActivityRecord:
        """Refuse new leases; the running app reports the key drained once in-flight ones end."""
        return self._write(domain, key, "draining", note, actor)

    def resume(
        self, domain: str, key: str, *, note: str = "", actor: str | None = None
    ) -> ActivityRecord:
        """Accept leases again; swaps deferred by the pause or drain are applied."""
        return self._write(domain, key, "active", note, actor)

    def _write(
        self, domain: str, key: str, state: ActivityState, note: str, actor: str | None
    ) -> ActivityRecord:
        validate_name(domain, "domain")
        validate_name(key, "key")
        if not isinstance(note, str):
            raise TypeError(f"note must be a string, got {type(note).__name__}")
        record = ActivityRecord(
            domain,
            key,
            state,
            note,
            actor if actor is not None else (self._actor or default_actor()),
            self._clock(),
        )
        with self._errors(_ACTIONS[state]):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO activity (domain, key, state, note, actor, at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (domain, key) DO UPDATE SET "
                    "state = excluded.state, note = excluded.note, actor = excluded.actor, "
                    "at = excluded.at",
                    (domain, key, state, note, record.actor, record.at),
                )
                conn.execute(
                    "INSERT INTO history (domain, key, state, note, actor, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (domain, key, state, note, record.actor, record.at),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        _log.info("activity changed", domain=domain, key=key, state=state, actor=record.actor)
        for callback in list(self._subscribers):
            try:
                callback(record)
            except Exception as exc:
                text = f"{type(exc).__name__}: {one_line(exc)}"
                _log.error("activity subscriber failed", error=text)
        return record

    # ------------------------------------------------------------------ reads

    def get(self, domain: str, key: str) -> ActivityRecord:
        """The decision in force for ``domain/key`` (``active`` when none was written)."""
        with self._errors("read"):
            row = self._connection().execute(
                "SELECT domain, key, state, note, actor, at FROM activity "
                "WHERE domain = ? AND key = ?",
                (domain, key),
            ).fetchone()
        return ActivityRecord(*row) if row else ActivityRecord(domain, key)

    def records(self) -> tuple[ActivityRecord, ...]:
        """Every key with a decision (including resumed ones), sorted by domain and key."""
        with self._errors("read"):
            rows = self._connection().execute(
                "SELECT domain, key, state, note, actor, at FROM activity ORDER BY domain, key"
            ).fetchall()
        return tuple(ActivityRecord(*row) for row in rows)

    def history(self, limit: int = 100) -> tuple[ActivityRecord, ...]:
        """The most recent decisions, newest first."""
        with self._errors("read"):
            rows = self._connection().execute(
                "SELECT domain, key, state, note, actor, at FROM history "
                "ORDER BY id DESC LIMIT ?",
                (int(limit),),
            ).fetchall()
        return tuple(ActivityRecord(*row) for row in rows)

    def data_version(self) -> int:
        """A counter that changes when another connection committed (cheap to poll)."""
        with self._errors("read"):
            return int(self._connection().execute("PRAGMA data_version").fetchone()[0])

    def subscribe(self, callback: Callable[[ActivityRecord], object]) -> Callable[[], None]:
        """Call ``callback(record)`` after each write *through this object*; return unsubscribe."""
        self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._conn_lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __enter__(self) -> ActivityStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ActivityStore {self.path}>"
