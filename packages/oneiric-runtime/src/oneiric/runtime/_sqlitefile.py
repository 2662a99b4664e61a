"""A private, versioned SQLite file in WAL mode: open it, migrate it, explain its errors.

Why a module of its own: every durable store of this package (checkpoints,
dead letters, schedules' fire records) needs the same
handful of rules, and a store that gets one of them wrong loses data or
leaks it:

- the file and its parent directory are private (``state_dir`` creates the
  directory 0700 and refuses one others can write; the file is created 0600
  without following a symlink, and SQLite gives its ``-wal``/``-shm`` files
  the same mode);
- two processes opening a new file at once may see ``SQLITE_BUSY`` while it
  switches to WAL, without the busy handler being consulted: the open is
  retried until ``busy_timeout``;
- the schema version is ``PRAGMA user_version`` and ``migrations[n]`` takes a
  file from version ``n`` to ``n + 1`` inside one transaction; a file of a
  newer version is refused *before anything writes to it*;
- a file that is not SQLite is refused in one line naming it and what to do;
  "database is locked" after ``busy_timeout`` is one line too.

Errors are raised as ``error(message, category=...)`` so each store keeps its
own class in the package's hierarchy.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from oneiric.core import get_logger, state_dir
from oneiric.core.helpers import one_line

__all__ = ["ErrorFactory", "Migration", "is_busy", "open_versioned", "sqlite_errors",
           "transaction"]

_log = get_logger("oneiric.runtime.sqlite")

Migration = Callable[[sqlite3.Connection], None]


class ErrorFactory(Protocol):
    """A store's error class: ``Error(message, category=None)``."""

    def __call__(self, message: str, /, *, category: str | None = None) -> Exception: ...


def is_busy(exc: BaseException) -> bool:
    """An SQLite "database is locked/busy" error (another process holds the file)."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_versioned(
    path: Path, *, what: str, migrations: Sequence[Migration], busy_timeout: float,
    synchronous: str, error: ErrorFactory,
) -> sqlite3.Connection:
    """Open ``path`` (created private if absent), in WAL mode, migrated to ``len(migrations)``.

    ``what`` names the store in messages (``"checkpoint store"``).  The
    connection is in autocommit mode (explicit ``BEGIN``) and may be used from
    any thread: the caller serialises it.
    """
    state_dir(path.parent)  # created 0700, refused if others can write it
    with sqlite_errors(path, what=what, action="open", busy_timeout=busy_timeout, error=error):
        _create_private(path, what=what, error=error)
        deadline = time.monotonic() + busy_timeout
        delay = 0.005
        while True:
            try:
                return _open(path, what=what, migrations=migrations, busy_timeout=busy_timeout,
                             synchronous=synchronous, error=error)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _open(
    path: Path, *, what: str, migrations: Sequence[Migration], busy_timeout: float,
    synchronous: str, error: ErrorFactory,
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _check_version(path, int(conn.execute("PRAGMA user_version").fetchone()[0]),
                       len(migrations), what=what, error=error)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            _log.warning(f"{what} not in WAL mode", path=str(path), mode=mode)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        _migrate(conn, path, what=what, migrations=migrations, error=error)
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path, *, what: str, error: ErrorFactory) -> None:
    """Create the file 0600 unless it exists; refuse a symbolic link."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        if os.path.islink(path):
            raise error(f"{what} {path} is a symbolic link; name the file it points to, or "
                        "remove the link", category="invalid") from None
        return
    except OSError as exc:
        raise error(f"cannot create {what} {path}: {one_line(exc)}; check that the directory "
                    "is writable (or set ONEIRIC_STATE_DIR)") from None
    os.close(fd)


def _check_version(path: Path, version: int, known: int, *, what: str,
                   error: ErrorFactory) -> None:
    if version > known:
        raise error(f"{what} {path} has schema version {version}, written by a newer "
                    f"oneiric-runtime (this one knows {known}); upgrade oneiric-runtime or "
                    "use another file", category="invalid")


def _migrate(conn: sqlite3.Connection, path: Path, *, what: str,
             migrations: Sequence[Migration], error: ErrorFactory) -> None:
    """Bring the file to the current version in one transaction (another process may race)."""
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) == len(migrations):
        return
    with transaction(conn):
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        _check_version(path, version, len(migrations), what=what, error=error)
        for migrate in migrations[version:]:
            migrate(conn)
        if version != len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations)}")
            _log.info(f"{what} migrated", path=str(path), version=len(migrations),
                      previous=version)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def sqlite_errors(path: Path, *, what: str, action: str, busy_timeout: float,
                  error: ErrorFactory) -> Iterator[None]:
    """Turn ``sqlite3`` errors into one-line store errors saying what to do."""
    try:
        yield
    except UnicodeEncodeError:
        raise error(f"{what} {path}: cannot {action}: a text value is not valid Unicode (it "
                    "holds a lone surrogate); use valid text", category="invalid") from None
    except sqlite3.DatabaseError as exc:
        text = one_line(str(exc))
        lowered = text.lower()
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            raise error(f"{what} {path} is not a valid SQLite database ({text}); move it aside "
                        f"(e.g. to {path.name}.broken) and a new, empty store is created",
                        category="invalid") from None
        if is_busy(exc):
            message = (f"{what} {path} is locked by another process (waited {busy_timeout:g} s "
                       f"to {action}); retry, or find the process holding it")
        elif "unable to open" in lowered or "readonly" in lowered:
            message = (f"cannot {action} {what} {path}: {text}; check that the file and its "
                       "directory are writable (or set ONEIRIC_STATE_DIR)")
        else:
            message = f"{what} {path}: cannot {action}: {text}"
        raise error(message) from None
