"""Dead letters: events a handler could not process, kept in SQLite until redriven or pruned.

Why SQLite: the dispatcher (in an application) writes a dead letter and the
CLI (another process) lists and redrives it, with no server to run; WAL mode
lets the CLI read while applications write, and ``busy_timeout`` makes two
writers wait for each other instead of failing.

One record per failing (event id, group, handler): when a redrive fails again
the dispatcher's ``add`` finds the record and updates it in place - same
``id``, ``attempts`` increased by the new attempts, error and ``time`` of the
latest failure - so redriving never piles up duplicates.  ``time`` is the
latest failure, so retention counts from it.

Record ids are ``dl-<n>``: short enough to type after ``oneiric event
dead-letters --redrive``, and never reused (``AUTOINCREMENT``), so a stale id
can not name another event's record.

What is stored: the event (``Event.as_dict()`` as JSON, plus its exact POSIX
time, which the millisecond timestamp of ``as_dict`` would round), the
handler, its group, the attempts, the error's type (``ConnectionError``;
``module.Class`` outside builtins) and its message on one line with secrets
scrubbed (registered settings secrets, ``Bearer``/``Basic`` credentials,
``password=``/``token:``-style values, URL passwords) and capped.  Never a
traceback or locals: they are where secrets and personal data hide.

Schema (``PRAGMA user_version``; ``_MIGRATIONS[n]`` takes a file from version
``n`` to ``n + 1`` inside one transaction, so adding version 2 is appending a
function)::

    dead_letters(id, event_id, topic, event, event_time, handler, grp, attempts,
                 error_type, error, time)          UNIQUE (event_id, grp, handler)

A file written by a newer version is refused and left untouched; a file that
is not SQLite is refused with what to do (move it aside).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import sqlite3
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from oneiric.core import ConfigError, get_logger
from oneiric.core.helpers import (
    one_line,
    parse_duration,
)

from ._errors import EventError
from ._event import Event
from ._letter import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterStoreError,
    error_type_name,
    id_list,
    record_number,
    scrub_error,
)
from ._sqlitefile import Migration, open_versioned, sqlite_errors, transaction

__all__ = [
    "DEFAULT_DEAD_LETTERS",
    "DEFAULT_RETENTION",
    "SCHEMA_VERSION",
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterStore",
    "DeadLetterStoreError",
]

_log = get_logger("oneiric.runtime.deadletters")

#: The file name in the state dir when the dispatcher gets ``dead_letters=None``.
DEFAULT_DEAD_LETTERS = "dead-letters.sqlite"
#: How long a dead letter is kept after its latest failure (14 days).
DEFAULT_RETENTION = 14 * 86400.0
#: ``prune`` runs on open and then at most this often (seconds) from ``add``.
PRUNE_INTERVAL = 3600.0


# ------------------------------------------------------------- schema


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            event TEXT NOT NULL,
            event_time REAL NOT NULL,
            handler TEXT NOT NULL,
            grp TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            error_type TEXT NOT NULL,
            error TEXT NOT NULL,
            time REAL NOT NULL,
            UNIQUE (event_id, grp, handler)
        )"""
    )
    conn.execute("CREATE INDEX dead_letters_time ON dead_letters (time, id)")
    conn.execute("CREATE INDEX dead_letters_handler ON dead_letters (handler, time, id)")


#: ``_MIGRATIONS[n]`` migrates a file from schema version ``n`` to ``n + 1``.
_MIGRATIONS: tuple[Migration, ...] = (_migrate_to_1,)
#: The schema version this code writes.
SCHEMA_VERSION = len(_MIGRATIONS)

_COLUMNS = "id, event, event_time, handler, grp, attempts, error_type, error, time"


# -------------------------------------------------------------- store


class DeadLetterStore:
    """Dead letters in the SQLite file ``path``, shared by every process using it.

    Usable right after construction: the file (and its private parent
    directories) is created and opened on first use, then pruned of records
    older than ``retention`` (seconds or a duration like ``"7d"``; default 14
    days), and pruned again at most hourly by ``add``.  Bad arguments here
    are ``ConfigError``; so is a parent directory others can write (the
    state dir's rule: dead letters carry event payloads).  ``clock`` stamps
    records and drives pruning (injectable); ``busy_timeout`` is how long a
    write waits for another process's lock.  Thread-safe (one connection
    under a lock).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: float | str = DEFAULT_RETENTION,
        clock: Callable[[], float] = _time.time,
        busy_timeout: float | str = 5.0,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError(f"dead-letter store path must be a file path, got {path!r}")
        self.path = Path(path).expanduser()
        self.retention = parse_duration(retention, what="dead-letter retention")
        if self.retention <= 0:
            raise ConfigError(
                f"dead-letter retention must be more than 0 seconds, got {retention!r}; "
                "to keep no dead letters, disable the store (dead_letters=False)"
            )
        if not callable(clock):
            raise ConfigError(f"dead-letter clock must be a callable returning POSIX seconds, "
                              f"got {clock!r}")
        self.busy_timeout = parse_duration(busy_timeout, what="dead-letter busy_timeout")
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._last_prune = 0.0

    # ------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        """The open connection; opens, migrates and prunes on first use.  Hold ``_lock``."""
        if self._conn is not None:
            return self._conn
        if self._closed:
            raise DeadLetterStoreError(
                f"dead-letter store {self.path} is closed; open a new DeadLetterStore"
            )
        self._conn = open_versioned(
            self.path, what="dead-letter store", migrations=_MIGRATIONS,
            busy_timeout=self.busy_timeout, synchronous="NORMAL", error=DeadLetterStoreError)
        self._prune_locked(self._clock())
        return self._conn

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """sqlite3 errors as one-line ``DeadLetterStoreError``s saying what to do."""
        return sqlite_errors(self.path, what="dead-letter store", action=action,
                             busy_timeout=self.busy_timeout, error=DeadLetterStoreError)

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action), transaction(self._connection()) as conn:
            yield conn

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        with self._lock, self._errors("read"):
            rows: builtins.list[tuple[Any, ...]] = (
                self._connection().execute(sql, params).fetchall()
            )
        return rows

    def _record(self, row: tuple[Any, ...]) -> DeadLetter:
        number, event_json, event_time, handler, group, attempts, error_type, error, at = row
        try:
            event = Event.from_dict(json.loads(event_json))
            # as_dict keeps milliseconds; the exact time is stored beside it.
            event = dataclasses.replace(event, time=float(event_time))
        except (ValueError, TypeError, EventError) as exc:
            raise DeadLetterStoreError(
                f"dead letter dl-{number} in {self.path} is damaged ({one_line(exc)}); "
                f"remove it (remove(['dl-{number}']))",
                category="invalid",
            ) from None
        return DeadLetter(f"dl-{number}", event, handler, group, int(attempts), error_type,
                          error, float(at))

    # -------------------------------------------------------------- writes

    def add(
        self, event: Event, *, handler: str, group: str, attempts: int, error: BaseException
    ) -> DeadLetter:
        """Record that ``handler`` of ``group`` failed ``event`` after ``attempts`` attempts.

        If (event id, group, handler) already has a record (a redrive failed
        again), that record is updated - same id, attempts added, latest error
        and time - so one failing event and handler stay one record.
        """
        if not isinstance(event, Event):
            raise DeadLetterStoreError(
                f"a dead letter needs an Event, got {type(event).__name__}", category="invalid"
            )
        for name, value in (("handler", handler), ("group", group)):
            if not isinstance(value, str) or not value:
                raise DeadLetterStoreError(
                    f"dead letter {name} must be a non-empty string, got {value!r}",
                    category="invalid",
                )
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise DeadLetterStoreError(
                f"dead letter attempts must be an integer >= 0, got {attempts!r}",
                category="invalid",
            )
        if not isinstance(error, BaseException):
            raise DeadLetterStoreError(
                f"dead letter error must be an exception, got {type(error).__name__}",
                category="invalid",
            )
        now = float(self._clock())
        error_type = error_type_name(error)
        message = scrub_error(error)
        event_json = json.dumps(event.as_dict(), ensure_ascii=True, allow_nan=False,
                                separators=(",", ":"))
        with self._transaction("add to") as conn:
            row = conn.execute(
                "SELECT id, attempts FROM dead_letters "
                "WHERE event_id = ? AND grp = ? AND handler = ?",
                (event.id, group, handler),
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO dead_letters (event_id, topic, event, event_time, handler, grp, "
                    "attempts, error_type, error, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (event.id, event.topic, event_json, float(event.time), handler, group,
                     attempts, error_type, message, now),
                )
                number, total = cursor.lastrowid, attempts
            else:
                number, total = row[0], int(row[1]) + attempts
                conn.execute(
                    "UPDATE dead_letters SET event = ?, event_time = ?, attempts = ?, "
                    "error_type = ?, error = ?, time = ? WHERE id = ?",
                    (event_json, float(event.time), total, error_type, message, now, number),
                )
        record = DeadLetter(f"dl-{number}", event, handler, group, total, error_type, message, now)
        _log.warning("event dead-lettered", id=record.id, event_id=event.id, topic=event.topic,
                     handler=handler, group=group, attempts=total, error_type=error_type)
        if now - self._last_prune >= PRUNE_INTERVAL:
            self.prune(now=now)
        return record

    def remove(self, ids: Iterable[str]) -> int:
        """Delete the records with these ids; how many there were (unknown ids are skipped)."""
        numbers = [n for n in (record_number(i) for i in id_list(ids)) if n is not None]
        if not numbers:
            return 0
        removed = 0
        with self._transaction("remove from") as conn:
            for number in sorted(set(numbers)):
                removed += conn.execute(
                    "DELETE FROM dead_letters WHERE id = ?", (number,)
                ).rowcount
        return removed

    def prune(self, *, now: float | None = None) -> int:
        """Delete records whose latest failure is older than ``retention``; how many."""
        with self._lock:
            self._connection()  # opening prunes too; then prune at ``now``
            return self._prune_locked(float(self._clock() if now is None else now))

    def _prune_locked(self, now: float) -> int:
        with self._errors("prune"), transaction(self._connection()) as conn:
            removed = conn.execute(
                "DELETE FROM dead_letters WHERE time < ?", (now - self.retention,)
            ).rowcount
        self._last_prune = now
        if removed:
            _log.info("dead letters pruned", path=str(self.path), removed=removed,
                      retention=self.retention)
        return int(removed)

    # --------------------------------------------------------------- reads

    def list(
        self, *, limit: int | None = None, handler: str | None = None
    ) -> builtins.list[DeadLetter]:
        """Records, oldest (latest failure) first; at most ``limit``; only ``handler``'s."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise DeadLetterStoreError(
                f"limit must be an integer >= 0 or None, got {limit!r}", category="invalid"
            )
        sql = f"SELECT {_COLUMNS} FROM dead_letters"
        params: tuple[Any, ...] = ()
        if handler is not None:
            sql += " WHERE handler = ?"
            params = (handler,)
        sql += " ORDER BY time, id LIMIT ?"
        params += (-1 if limit is None else limit,)
        return [self._record(row) for row in self._read(sql, params)]

    def get(self, id: str) -> DeadLetter | None:
        """The record ``id`` (``dl-<n>``), or None if there is none."""
        number = record_number(id)
        if number is None:
            return None
        rows = self._read(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (number,))
        return self._record(rows[0]) if rows else None

    # ------------------------------------------------------------- redrive

    async def redrive(
        self, dispatcher: Any, ids: Iterable[str] | None = None
    ) -> builtins.list[Any]:
        """Dispatch each record's event again (same event id) to its group only.

        ``ids=None`` redrives every record, oldest first.  A record is removed
        when its group's final outcome is ``ok`` or ``duplicate``; one that
        fails again stays (the dispatcher's ``add`` updates it).  Every id is
        checked before anything runs: an unknown one raises
        ``DeadLetterNotFound`` and nothing is dispatched.  Returns the
        dispatcher's reports, one per record, in order.
        """
        from ._redrive import redrive

        return await redrive(self, dispatcher, ids)

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the connection; later use raises ``DeadLetterStoreError``."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> DeadLetterStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DeadLetterStore {self.path}>"
