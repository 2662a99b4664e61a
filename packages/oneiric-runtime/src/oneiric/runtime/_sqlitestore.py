"""``SQLiteCheckpointStore``: workflow runs and node states in one SQLite file.

Why SQLite: an engine checkpoints each node's start and end while the CLI (another
process) lists, shows, resumes and cancels runs, with no server to run; WAL lets
readers read while the executor writes, ``busy_timeout`` makes writers wait.

Durability (guarantee 2 of ``CheckpointStore``): every write is one
transaction, committed before the method returns.  With WAL and
``synchronous=NORMAL`` (the default) a commit is in the WAL file before
``node_started``/``node_finished`` return, so killing the *process* at any
instant - ``kill -9`` included - loses nothing a method confirmed and never
damages the file; only an OS crash or power loss may roll back the last
commits (the file stays consistent).  ``synchronous="FULL"`` also syncs the
WAL on every commit, closing that window at the price of an fsync per write.

Exactly once (guarantee 1): ``node_started`` and ``node_finished`` are
conditional ``UPDATE``s whose row count is the answer - a start only if the
node is not ``succeeded`` and its recorded attempt is lower, an outcome only
while (run, node, attempt) is ``running`` - so a zombie attempt can neither
restart nor overwrite a newer one.

One executor per run (guarantee 3): ``executor(run_id)`` holds
``fcntl.flock(LOCK_EX | LOCK_NB)`` on a per-run lock file in ``lock_dir``
(default ``<db dir>/workflow-locks/``, 0700), released by the kernel when its
holder dies, so a killed executor's run is resumable at once from any process.
Lock files are removed on release without the classic race (``_runlock``).

Never-overwrite (guarantee 4): ``create_run`` is ``INSERT OR IGNORE``.

The methods are synchronous and short (one transaction each); the engine may
call them through ``asyncio.to_thread``.  One connection per store, serialised
by a lock, so a store may be shared by threads.  Inputs and outputs are stored
as JSON text (``allow_nan=False``), never pickled.

Schema: ``_migrate_to_1`` below; its version is ``PRAGMA user_version`` and
``_MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1`` (``_sqlitefile``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from oneiric.core import ConfigError, get_logger
from oneiric.core.helpers import one_line, parse_duration

from ._errors import CheckpointStoreError, RunNotFound
from ._runlock import RunLockFiles
from ._runs import FINISHED_RUN_STATUSES, NodeState, RunRecord
from ._sqlitefile import Migration, open_versioned, sqlite_errors, transaction
from ._storevalues import (
    _count,
    _invalid,
    _json,
    _prose,
    _stamp,
    _text,
    check_listing,
    check_new_run,
    check_outcome,
    check_run_changes,
)

__all__ = ["DEFAULT_CHECKPOINTS", "SCHEMA_VERSION", "CheckpointStoreError",
           "SQLiteCheckpointStore"]

_log = get_logger("oneiric.runtime.checkpoints")

#: The file name in the state dir when the engine gets ``store=None``.
DEFAULT_CHECKPOINTS = "workflows.sqlite"
#: The lock directory's name beside the database when ``lock_dir`` is not given.
LOCK_DIR_NAME = "workflow-locks"

# ------------------------------------------------------------- schema


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, version INTEGER NOT NULL,
            definition_hash TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL,
            error TEXT, recoveries INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0, correlation_id TEXT
        )"""
    )
    conn.execute("CREATE INDEX runs_status ON runs (status, created_at)")
    conn.execute("CREATE INDEX runs_workflow ON runs (workflow_id, created_at)")
    conn.execute("CREATE INDEX runs_updated ON runs (updated_at)")
    conn.execute(
        """CREATE TABLE nodes (
            run_id TEXT NOT NULL, node_id TEXT NOT NULL, seq INTEGER NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, output TEXT,
            error TEXT, started_at REAL, finished_at REAL,
            PRIMARY KEY (run_id, node_id)
        ) WITHOUT ROWID"""
    )


#: ``_MIGRATIONS[n]`` migrates a file from schema version ``n`` to ``n + 1``.
_MIGRATIONS: tuple[Migration, ...] = (_migrate_to_1,)
#: The schema version this code writes.
SCHEMA_VERSION = len(_MIGRATIONS)

# the two conditional updates of a node (guarantee 1 of CheckpointStore)
_STARTED = ("UPDATE nodes SET status = 'running', attempts = ?, started_at = ?, "
            "finished_at = NULL, output = NULL, error = NULL "
            "WHERE run_id = ? AND node_id = ? AND status != 'succeeded' AND attempts < ?")
_SUCCEEDED = ("UPDATE nodes SET status = 'succeeded', output = ?, error = NULL, "
              "finished_at = ? WHERE run_id = ? AND node_id = ? AND attempts = ? "
              "AND status = 'running'")


_RUN_COLUMNS = ("run_id, workflow_id, version, definition_hash, input, status, created_at, "
                "updated_at, finished_at, error, recoveries, cancel_requested, correlation_id")


# -------------------------------------------------------------- store


class SQLiteCheckpointStore:
    """Runs and node states in the SQLite file ``path`` (see the module docstring).

    Usable right after construction: the file (and its private parent
    directories) is created and opened on first use.  ``synchronous`` is
    ``"NORMAL"`` (default: nothing confirmed is lost when a process dies) or
    ``"FULL"`` (nothing lost when the OS dies either; an fsync per write).
    ``busy_timeout`` (seconds or ``"5s"``) is how long a write waits for
    another process's lock; ``clock`` stamps records (injectable);
    ``lock_dir`` holds the executor lock files.  Bad arguments are
    ``ConfigError``; the store's own failures ``CheckpointStoreError``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL",
        busy_timeout: float | str = 5.0, clock: Callable[[], float] = _time.time,
        lock_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError(f"checkpoint store path must be a file path, got {path!r}")
        self.path = Path(path).expanduser()
        if not isinstance(synchronous, str) or synchronous.upper() not in ("NORMAL", "FULL"):
            raise ConfigError(f"checkpoint store synchronous must be 'NORMAL' or 'FULL', "
                              f"got {synchronous!r}")
        self.synchronous = synchronous.upper()
        self.busy_timeout = parse_duration(busy_timeout, what="checkpoint store busy_timeout")
        if not callable(clock):
            raise ConfigError(f"checkpoint store clock must be a callable returning POSIX "
                              f"seconds, got {clock!r}")
        if lock_dir is not None and (not isinstance(lock_dir, str | os.PathLike)
                                     or not os.fspath(lock_dir)):
            raise ConfigError(f"checkpoint store lock_dir must be a directory path or None, "
                              f"got {lock_dir!r}")
        self.lock_dir = (Path(lock_dir).expanduser() if lock_dir is not None
                         else self.path.parent / LOCK_DIR_NAME)
        self._locks = RunLockFiles(self.lock_dir, self.path.name, error=CheckpointStoreError)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    # ------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        """The open connection; opens and migrates on first use.  Hold ``_lock``."""
        if self._conn is None:
            if self._closed:
                raise CheckpointStoreError(
                    f"checkpoint store {self.path} is closed; open a new SQLiteCheckpointStore")
            self._conn = open_versioned(
                self.path, what="checkpoint store", migrations=_MIGRATIONS,
                busy_timeout=self.busy_timeout, synchronous=self.synchronous,
                error=CheckpointStoreError)
        return self._conn

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One committed transaction (guarantee 2: committed before the method returns)."""
        with self._lock, self._errors(action), transaction(self._connection()) as conn:
            yield conn

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return sqlite_errors(self.path, what="checkpoint store", action=action,
                             busy_timeout=self.busy_timeout, error=CheckpointStoreError)

    def _update(self, action: str, sql: str, params: tuple[Any, ...]) -> bool:
        """One conditional ``UPDATE`` as its own (autocommit) transaction, committed on
        return; whether it changed a row.  The hot path: no generator contexts."""
        with self._lock:
            try:
                return self._connection().execute(sql, params).rowcount > 0
            except (sqlite3.DatabaseError, UnicodeEncodeError):
                with self._errors(action):
                    raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors("read"):
            rows: list[tuple[Any, ...]] = self._connection().execute(sql, params).fetchall()
        return rows

    def _loads(self, text: str | None, what: str) -> Any:
        try:
            return None if text is None else json.loads(text)
        except ValueError as exc:
            raise _invalid(f"{what} in {self.path} is damaged ({one_line(exc)}); prune or "
                           "delete that run") from None

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        """A ``runs`` row as a record (``_RUN_COLUMNS`` is ``RunRecord``'s field order)."""
        values = list(row)
        values[4] = self._loads(values[4], f"the input of run {row[0]!r}")
        values[11] = bool(values[11])  # cancel_requested
        return RunRecord(*values)

    # --------------------------------------------------------------- runs

    def create_run(self, record: RunRecord, nodes: Iterable[str]) -> tuple[RunRecord, bool]:
        """Insert ``record`` with every node ``pending``; ``(existing, False)`` if the id exists.

        ``created_at``/``updated_at`` of 0 are stamped with the clock.
        Everything is checked before anything is written.
        """
        node_ids, input_json = check_new_run(record, nodes)
        now = float(self._clock())
        created = record.created_at or now
        values = (record.run_id, record.workflow_id, int(record.version), record.definition_hash,
                  input_json, record.status, created, record.updated_at or created,
                  _stamp(record.finished_at, "finished_at"), record.error, int(record.recoveries),
                  int(bool(record.cancel_requested)), record.correlation_id)
        with self._write("create a run in") as conn:
            inserted = conn.execute(
                f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values).rowcount
            if inserted:
                conn.executemany(
                    "INSERT INTO nodes (run_id, node_id, seq, status) VALUES (?, ?, ?, 'pending')",
                    [(record.run_id, node_id, seq) for seq, node_id in enumerate(node_ids)])
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                               (record.run_id,)).fetchone()
        return self._record(row), bool(inserted)

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return self._record(rows[0]) if rows else None

    def list_runs(
        self, *, status: str | None = None, workflow_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Newest first; only ``status``'s and ``workflow_id``'s; at most ``limit``."""
        check_listing(status, limit)
        where = [(c, v) for c, v in (("status", status), ("workflow_id", workflow_id))
                 if v is not None]
        sql = (f"SELECT {_RUN_COLUMNS} FROM runs"
               + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "")
               + " ORDER BY created_at DESC, rowid DESC LIMIT ?")
        params = (*(v for _, v in where), -1 if limit is None else limit)
        return [self._record(row) for row in self._read(sql, params)]

    def set_run(self, run_id: str, **changes: Any) -> RunRecord:
        """Update fields of the run (``status``, ``error``, ``finished_at``, ``recoveries``,
        ``cancel_requested``, ``definition_hash``, ``version``, ``correlation_id``);
        ``updated_at`` becomes now.  ``RunNotFound`` if there is no such run."""
        values: dict[str, Any] = check_run_changes(changes)
        if "cancel_requested" in values:
            values["cancel_requested"] = int(values["cancel_requested"])
        values["updated_at"] = float(self._clock())
        assignments = ", ".join(f"{name} = ?" for name in values)  # names from SET_FIELDS
        with self._write("update a run in") as conn:
            changed = conn.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?",
                                   (*values.values(), run_id)).rowcount
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                               (run_id,)).fetchone()
        if not changed:
            raise self._not_found(run_id)
        return self._record(row)

    # -------------------------------------------------------------- nodes

    def nodes(self, run_id: str) -> dict[str, NodeState]:
        """Every node of the run in the definition's order (empty for an unknown run)."""
        rows = self._read(
            "SELECT node_id, status, attempts, output, error, started_at, finished_at "
            "FROM nodes WHERE run_id = ? ORDER BY seq", (run_id,))
        return {
            node_id: NodeState(
                status=status, attempts=int(attempts),
                output=self._loads(output, f"the output of node {node_id!r} of run {run_id!r}"),
                error=error, started_at=started_at, finished_at=finished_at)
            for node_id, status, attempts, output, error, started_at, finished_at in rows
        }

    def node_started(self, run_id: str, node_id: str, attempt: int) -> bool:
        """Mark ``running`` with ``attempt`` if the node is not ``succeeded`` and its recorded
        attempt is lower; ``False`` (nothing written) otherwise.  Committed on return."""
        attempt = _count(attempt)
        return self._update("record a node start in", _STARTED,
                            (attempt, float(self._clock()), run_id, node_id, attempt))

    def node_finished(
        self, run_id: str, node_id: str, attempt: int, status: str, *,
        output: Any = None, error: str | None = None,
    ) -> bool:
        """Record the outcome only while (run, node, attempt) is ``running``; else ``False``.

        ``output`` must be JSON (``CheckpointStoreError`` ``invalid`` otherwise,
        nothing written).  Committed on return.
        """
        attempt, output_json, error = check_outcome(run_id, node_id, attempt, status, output,
                                                    error)
        return self._update(
            "record a node outcome in",
            "UPDATE nodes SET status = ?, output = ?, error = ?, finished_at = ? "
            "WHERE run_id = ? AND node_id = ? AND attempts = ? AND status = 'running'",
            (status, output_json, error, float(self._clock()), run_id, node_id, attempt))

    def advance(
        self, run_id: str, *, succeeded: Sequence[tuple[str, int, Any]] = (),
        started: Sequence[tuple[str, int]] = (),
    ) -> bool:
        """Successes and the starts they enable in one transaction (one commit per node on
        the engine's hot path); all or nothing, ``False`` when one is refused."""
        now = float(self._clock())
        outcomes = [(None if output is None else _json(
                        output, f"the output of node {node_id!r} of run {run_id!r}"),
                     now, run_id, node_id, _count(attempt))
                    for node_id, attempt, output in succeeded]
        starts = [(_count(attempt), now, run_id, node_id, _count(attempt))
                  for node_id, attempt in started]
        with self._lock:  # the hot path: no generator contexts (as _update)
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    ok = (all(conn.execute(_SUCCEEDED, p).rowcount for p in outcomes)
                          and all(conn.execute(_STARTED, p).rowcount for p in starts))
                    conn.execute("COMMIT" if ok else "ROLLBACK")  # all or nothing
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except (sqlite3.DatabaseError, UnicodeEncodeError):
                with self._errors("record node outcomes and starts in"):
                    raise
        return ok

    def reset_nodes(self, run_id: str, node_ids: Iterable[str]) -> None:
        """Back to ``pending`` keeping the attempt count, for a resume.

        A ``succeeded`` node is left alone (it never runs twice); a node id the
        run does not have yet (a definition forced to a new version) is added
        ``pending``.  ``RunNotFound`` if there is no such run.
        """
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        for node_id in ids:
            _text(node_id, f"node id of run {run_id!r}")
        with self._write("reset nodes in") as conn:
            self._require_run(conn, run_id)
            seq = conn.execute("SELECT coalesce(max(seq), -1) FROM nodes WHERE run_id = ?",
                               (run_id,)).fetchone()[0]
            for node_id in ids:
                if conn.execute(
                    "UPDATE nodes SET status = 'pending', output = NULL, error = NULL, "
                    "started_at = NULL, finished_at = NULL "
                    "WHERE run_id = ? AND node_id = ? AND status != 'succeeded'",
                    (run_id, node_id)).rowcount:
                    continue
                seq += 1
                conn.execute("INSERT OR IGNORE INTO nodes (run_id, node_id, seq, status) "
                             "VALUES (?, ?, ?, 'pending')", (run_id, node_id, seq))

    def skip_nodes(self, run_id: str, node_ids: Iterable[str], reason: str) -> None:
        """Mark ``skipped`` (``reason`` as the error, attempts unchanged) every listed node
        that is not ``succeeded``: they never start.  ``RunNotFound`` if there is no run."""
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        text, now = _prose(reason, "skip reason", optional=False), float(self._clock())
        with self._write("skip nodes in") as conn:
            self._require_run(conn, run_id)
            conn.executemany(
                "UPDATE nodes SET status = 'skipped', error = ?, output = NULL, finished_at = ? "
                "WHERE run_id = ? AND node_id = ? AND status != 'succeeded'",
                [(text, now, run_id, node_id) for node_id in ids])

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise self._not_found(run_id)

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no workflow run {run_id!r} in {self.path}; list runs with "
                           "'oneiric workflow runs'")

    # ----------------------------------------------------------- executor

    def executor(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the run's executor lock (a flock) for the context; ``RunLocked`` if held."""
        return self._locks.hold(_text(run_id, "run id"))

    def executor_alive(self, run_id: str) -> bool:
        """True while some executor holds the run (in any process); takes nothing."""
        return self._locks.alive(_text(run_id, "run id"))

    # ------------------------------------------------------------ pruning

    def prune(self, older_than: float) -> int:
        """Delete finished runs last updated before ``older_than`` (POSIX seconds), their
        nodes and lock files; how many runs.  Running runs are never pruned."""
        cutoff = _stamp(older_than, "older_than", optional=False)
        finished = tuple(sorted(FINISHED_RUN_STATUSES))
        marks = ", ".join("?" * len(finished))
        with self._write("prune") as conn:
            run_ids = [row[0] for row in conn.execute(
                f"SELECT run_id FROM runs WHERE updated_at < ? AND status IN ({marks})",
                (cutoff, *finished))]
            conn.executemany("DELETE FROM nodes WHERE run_id = ?", [(r,) for r in run_ids])
            conn.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in run_ids])
        for run_id in run_ids:
            self._locks.discard(run_id)
        if run_ids:
            _log.info("workflow runs pruned", path=str(self.path), removed=len(run_ids))
        return len(run_ids)

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the connection; later use raises ``CheckpointStoreError``."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> SQLiteCheckpointStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SQLiteCheckpointStore {self.path}>"
