"""``ScheduleStore``: where schedules stand (last look, last fire, counts) and who fired what.

Why SQLite, shared: every host of an application points at the same state
dir, and a restart must find where it left off.  Two tables::

    schedules(schedule_id, checked_at, last_fired_at, fires, misfires, busy, failures)
    fires(dedupe_id UNIQUE, schedule_id, fire_time, claimed_at, host, manual,
          status, error, finished_at)

``advance`` is the one decision point, one ``BEGIN IMMEDIATE`` transaction:
it reads the schedule's ``checked_at`` (the cursor: every instant up to it has
been decided), asks the policy what is due in ``(checked_at, now]``, inserts
one ``fires`` row per instant to fire (``INSERT OR IGNORE`` on the dedupe id
``schedule_id:fire_time``: whoever inserted fires), counts the misfires and
moves the cursor to ``now`` - all or nothing.  A second host waking for the
same instant finds the cursor past it: one fire per instant, whatever the
number of hosts; a restarted host finds it too: no double fire, and what it
missed is decided once by the policy (no flood).  A brand-new schedule starts
its cursor at its first look (nothing in the past fires).

Fires are at most once: a host killed between the claim and the run loses
that fire (its row stays ``claimed``).  A workflow target is durable from its
start (the run id is the dedupe id).

Same conventions as the other stores (``_sqlitefile``): lazy open, WAL, the
file 0600 in a private directory, ``PRAGMA user_version`` migrations, one-line
errors.  Fire rows older than ``retention`` (14 days) are pruned.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time as _time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneiric.core import ConfigError, OneiricError
from oneiric.core.helpers import format_timestamp, one_line, parse_duration

from ._schedule import Due, Schedule
from ._sqlitefile import Migration, open_versioned, sqlite_errors, transaction

__all__ = ["DEFAULT_SCHEDULES", "FIRE_STATUSES", "SCHEMA_VERSION", "ScheduleState",
           "ScheduleStore", "ScheduleStoreError"]

#: The file name in the state dir.
DEFAULT_SCHEDULES = "schedules.sqlite"
DEFAULT_RETENTION = 14 * 86400.0
PRUNE_INTERVAL = 3600.0
#: A fire row's status: claimed (running or lost), ok, failed, busy (max_instances), paused.
FIRE_STATUSES = ("claimed", "ok", "failed", "busy", "paused")
#: Which counter a settled fire adds to.
_COUNTER = {"failed": "failures", "busy": "busy", "paused": "misfires"}


class ScheduleStoreError(OneiricError):
    """The schedule file cannot be opened, read or written (``unavailable``/``invalid``)."""

    category = "unavailable"


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE schedules (
            schedule_id TEXT PRIMARY KEY, checked_at REAL NOT NULL, last_fired_at REAL,
            fires INTEGER NOT NULL DEFAULT 0, misfires INTEGER NOT NULL DEFAULT 0,
            busy INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0
        )"""
    )
    conn.execute(
        """CREATE TABLE fires (
            dedupe_id TEXT PRIMARY KEY, schedule_id TEXT NOT NULL, fire_time REAL NOT NULL,
            claimed_at REAL NOT NULL, host TEXT NOT NULL, manual INTEGER NOT NULL,
            status TEXT NOT NULL, error TEXT, finished_at REAL
        )"""
    )
    conn.execute("CREATE INDEX fires_schedule ON fires (schedule_id, fire_time)")
    conn.execute("CREATE INDEX fires_claimed ON fires (claimed_at)")


_MIGRATIONS: tuple[Migration, ...] = (_migrate_to_1,)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store knows of one schedule (all zero before its first look)."""

    schedule_id: str
    checked_at: float | None = None
    last_fired_at: float | None = None
    fires: int = 0
    misfires: int = 0
    busy: int = 0
    failures: int = 0
    last_status: str | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        def stamp(value: float | None) -> str | None:
            return format_timestamp(value) if value is not None else None

        return {"schedule": self.schedule_id, "checked_at": stamp(self.checked_at),
                "last_fired_at": stamp(self.last_fired_at), "fires": self.fires,
                "misfires": self.misfires, "busy": self.busy, "failures": self.failures,
                "last_status": self.last_status, "last_error": self.last_error}


class ScheduleStore:
    """Schedule cursors, counts and fire claims in the SQLite file ``path``.

    Usable right after construction (opens on first use); thread-safe (one
    connection under a lock); ``clock`` stamps claims and drives pruning.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = _time.time,
        busy_timeout: float | str = 5.0,
        retention: float | str = DEFAULT_RETENTION,
        host: str | None = None,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError(f"schedule store path must be a file path, got {path!r}")
        self.path = Path(path).expanduser()
        self.busy_timeout = parse_duration(busy_timeout, what="schedule store busy_timeout")
        self.retention = parse_duration(retention, what="schedule store retention")
        self.host = host or f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._last_prune = 0.0

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _db(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlite_errors(self.path, what="schedule store", action=action,
                                       busy_timeout=self.busy_timeout,
                                       error=ScheduleStoreError):
            if self._conn is None:
                if self._closed:
                    raise ScheduleStoreError(f"schedule store {self.path} is closed; open a "
                                             "new ScheduleStore")
                self._conn = open_versioned(
                    self.path, what="schedule store", migrations=_MIGRATIONS,
                    busy_timeout=self.busy_timeout, synchronous="NORMAL",
                    error=ScheduleStoreError,
                )
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------- decisions

    def advance(self, schedule: Schedule, now: float, previous_check: float | None, *,
                paused: bool = False) -> tuple[list[tuple[float, str]], Due]:
        """Decide ``schedule``'s instants up to ``now`` once for every host; claim the fires.

        Returns the ``(fire_time, dedupe_id)`` pairs this call claimed - the
        caller runs exactly those - and the policy's ``Due``.  ``paused``:
        every due instant is claimed as a misfire instead (a paused ``task``
        key suppresses its fires).
        """
        from ._schedule import dedupe_id

        claimed: list[tuple[float, str]] = []
        with self._db("advance the schedule"), transaction(self._conn_or_fail()) as conn:
            row = conn.execute("SELECT checked_at FROM schedules WHERE schedule_id = ?",
                               (schedule.id,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO schedules (schedule_id, checked_at) VALUES (?, ?)",
                             (schedule.id, now))
                return [], Due((), 0)
            due = schedule.due(float(row[0]), now, previous_check)
            if paused and due.fire:
                due = Due((), due.misfired + len(due.fire), due.dropped)
            for instant in due.fire:
                dedupe = dedupe_id(schedule.id, instant)
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO fires (dedupe_id, schedule_id, fire_time, "
                    "claimed_at, host, manual, status) VALUES (?, ?, ?, ?, ?, 0, 'claimed')",
                    (dedupe, schedule.id, instant, self._clock(), self.host),
                ).rowcount
                if inserted:
                    claimed.append((instant, dedupe))
            conn.execute(
                "UPDATE schedules SET checked_at = MAX(checked_at, ?), fires = fires + ?, "
                "misfires = misfires + ? WHERE schedule_id = ?",
                (now, len(claimed), due.misfired, schedule.id),
            )
            if claimed:
                conn.execute(
                    "UPDATE schedules SET last_fired_at = MAX(COALESCE(last_fired_at, 0), ?) "
                    "WHERE schedule_id = ?", (claimed[-1][0], schedule.id),
                )
        self._maybe_prune()
        return claimed, due

    def claim_manual(self, schedule_id: str, dedupe: str, fire_time: float) -> None:
        """Record a manual trigger (``<id>:manual:<uuid>``) as a claimed fire."""
        with self._db("record the trigger"), transaction(self._conn_or_fail()) as conn:
            conn.execute(
                "INSERT INTO fires (dedupe_id, schedule_id, fire_time, claimed_at, host, manual,"
                " status) VALUES (?, ?, ?, ?, ?, 1, 'claimed')",
                (dedupe, schedule_id, fire_time, self._clock(), self.host),
            )

    def settle(self, schedule_id: str, dedupe: str, status: str, error: str = "") -> None:
        """Record how a claimed fire ended (and count ``failed``/``busy``/``paused``)."""
        if status not in FIRE_STATUSES[1:]:
            raise ValueError(f"fire status must be one of {FIRE_STATUSES[1:]}, got {status!r}")
        with self._db("record the fire"), transaction(self._conn_or_fail()) as conn:
            changed = conn.execute(
                "UPDATE fires SET status = ?, error = ?, finished_at = ? WHERE dedupe_id = ? "
                "AND status = 'claimed'",
                (status, one_line(error)[:500] if error else None, self._clock(), dedupe),
            ).rowcount
            counter = _COUNTER.get(status)
            if not changed or counter is None:
                return
            manual = conn.execute("SELECT manual FROM fires WHERE dedupe_id = ?",
                                  (dedupe,)).fetchone()[0]
            if counter == "failures":
                conn.execute("UPDATE schedules SET failures = failures + 1 WHERE "
                             "schedule_id = ?", (schedule_id,))
            elif not manual:  # claimed as a fire, did not run: move it to its counter
                conn.execute(f"UPDATE schedules SET {counter} = {counter} + 1, "
                             "fires = fires - 1 WHERE schedule_id = ?", (schedule_id,))

    # ----------------------------------------------------------------- reads

    def state(self, schedule_id: str) -> ScheduleState:
        with self._db("read the schedule") as conn:
            row = conn.execute(
                "SELECT checked_at, last_fired_at, fires, misfires, busy, failures "
                "FROM schedules WHERE schedule_id = ?", (schedule_id,)).fetchone()
            last = conn.execute(
                "SELECT status, error FROM fires WHERE schedule_id = ? "
                "ORDER BY claimed_at DESC, fire_time DESC LIMIT 1", (schedule_id,)).fetchone()
        status, error = last or (None, None)
        if row is None:  # never looked at by a scheduler (a manual trigger may have run)
            return ScheduleState(schedule_id, last_status=status, last_error=error)
        checked, fired, fires, misfires, busy, failures = row
        return ScheduleState(schedule_id, checked, fired, fires, misfires, busy, failures,
                             status, error)

    def fires(self, schedule_id: str | None = None) -> list[dict[str, Any]]:
        """Fire rows (oldest first): dedupe id, fire time, host, manual, status, error."""
        query = ("SELECT dedupe_id, schedule_id, fire_time, host, manual, status, error "
                 "FROM fires")
        args: tuple[str, ...] = ()
        if schedule_id is not None:
            query += " WHERE schedule_id = ?"
            args = (schedule_id,)
        with self._db("list fires") as conn:
            rows = conn.execute(query + " ORDER BY fire_time, dedupe_id", args).fetchall()
        return [{"dedupe_id": r[0], "schedule": r[1], "fire_time": r[2], "host": r[3],
                 "manual": bool(r[4]), "status": r[5], "error": r[6]} for r in rows]

    # ----------------------------------------------------------------- prune

    def _conn_or_fail(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    def _maybe_prune(self) -> None:
        now = self._clock()
        if now - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = now
        with self._db("prune fires") as conn:
            conn.execute("DELETE FROM fires WHERE claimed_at < ? AND status != 'claimed'",
                         (now - self.retention,))
            conn.execute("DELETE FROM fires WHERE claimed_at < ?", (now - 2 * self.retention,))
