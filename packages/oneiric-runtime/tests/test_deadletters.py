"""DeadLetterStore on real SQLite files, across real processes, with an injected clock."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for, format_timestamp
from oneiric.runtime import _deadletters, _letter
from oneiric.runtime._deadletters import DEFAULT_DEAD_LETTERS, DEFAULT_RETENTION, DeadLetterStore
from oneiric.runtime._errors import EventError
from oneiric.runtime._event import Event
from oneiric.runtime._letter import DeadLetter, DeadLetterNotFound, DeadLetterStoreError

DAY = 86400.0


class Clock:
    """A settable clock: tests move time, never sleep."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[DeadLetterStore]:
    with DeadLetterStore(tmp_path / "state" / DEFAULT_DEAD_LETTERS, clock=clock) as s:
        yield s


def _event(n: int = 0, **payload: Any) -> Event:
    return Event("orders.created", {"n": n, **payload})


def _fail(store: DeadLetterStore, event: Event, handler: str = "billing", *,
          group: str | None = None, attempts: int = 3,
          error: BaseException | None = None) -> DeadLetter:
    return store.add(event, handler=handler, group=group or handler, attempts=attempts,
                     error=error or ConnectionError("connection refused"))


# ------------------------------------------------------------------ records


def test_default_file_name_and_retention() -> None:
    assert DEFAULT_DEAD_LETTERS == "dead-letters.sqlite"
    assert DEFAULT_RETENTION == 14 * DAY


def test_event_round_trips_exactly(store: DeadLetterStore) -> None:
    payload = {
        "text": "héllo ✓ \u2028 line", "lone_surrogate": "\ud800x", "neg_zero": -0.0,
        "big": 2**70, "float": 0.1 + 0.2, "huge": 1e308, "nested": {"a": [1, None, True, {}]},
        "empty": [], "quote": "\"'\\",
    }
    event = Event("orders.created", payload, correlation_id="c-1", causation_id="x-2",
                  time=1_700_000_000.123456789, headers={"traceparent": "00-abc-01"})
    record = _fail(store, event)
    for got in (record.event, store.get(record.id).event, store.list()[0].event):  # type: ignore[union-attr]
        assert got == event
        assert got.time == event.time  # exact, not the millisecond timestamp of as_dict
        assert json.dumps(got.as_dict()) == json.dumps(event.as_dict())
        assert repr(got.payload["neg_zero"]) == "-0.0"


def test_record_fields_and_as_dict_json_ready(store: DeadLetterStore, clock: Clock) -> None:
    event = _event(1)
    record = store.add(event, handler="billing.v2", group="billing", attempts=4,
                       error=TimeoutError("upstream took too long"))
    assert record.id.startswith("dl-") and record.id[3:].isdigit()
    assert (record.handler, record.group, record.attempts) == ("billing.v2", "billing", 4)
    assert (record.error_type, record.error) == ("TimeoutError", "upstream took too long")
    assert record.time == clock.now
    data = json.loads(json.dumps(record.as_dict()))
    assert data == {
        "id": record.id, "event": event.as_dict(), "handler": "billing.v2", "group": "billing",
        "attempts": 4, "error_type": "TimeoutError", "error": "upstream took too long",
        "time": format_timestamp(clock.now),
    }


def test_error_type_is_qualified_outside_builtins(store: DeadLetterStore) -> None:
    class PaymentDeclined(Exception):
        pass

    record = _fail(store, _event(), error=PaymentDeclined("card declined"))
    assert record.error_type == f"{__name__}.{PaymentDeclined.__qualname__}"
    assert _fail(store, _event(), handler="h2", error=KeyError("sku")).error_type == "KeyError"


def test_attack_redrive_failing_again_is_one_record_not_duplicates(
    store: DeadLetterStore, clock: Clock
) -> None:
    event = _event(7)
    first = _fail(store, event, attempts=3, error=ConnectionError("refused"))
    clock.now += 60
    again = _fail(store, event, attempts=2, error=TimeoutError("timed out"))
    assert again.id == first.id
    assert (again.attempts, again.error_type, again.error, again.time) == (
        5, "TimeoutError", "timed out", clock.now)
    assert [r.id for r in store.list()] == [first.id]
    # another group (or handler) failing the same event is its own record
    other = _fail(store, event, handler="audit")
    assert other.id != first.id
    assert len(store.list()) == 2


def test_ids_are_never_reused(store: DeadLetterStore) -> None:
    first = _fail(store, _event(1))
    assert store.remove([first.id]) == 1
    second = _fail(store, _event(1))
    assert second.id != first.id
    assert store.get(first.id) is None


def test_list_oldest_first_limit_and_handler(store: DeadLetterStore, clock: Clock) -> None:
    ids = []
    for n, handler in enumerate(["a", "b", "a", "c"]):
        ids.append(_fail(store, _event(n), handler=handler).id)
        clock.now += 1
    assert [r.id for r in store.list()] == ids
    assert [r.id for r in store.list(limit=2)] == ids[:2]
    assert store.list(limit=0) == []
    assert [r.id for r in store.list(handler="a")] == [ids[0], ids[2]]
    assert store.list(handler="nobody") == []


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
def test_attack_bad_limit_is_one_line_error(store: DeadLetterStore, limit: Any) -> None:
    with pytest.raises(DeadLetterStoreError, match="limit must be an integer") as info:
        store.list(limit=limit)
    assert info.value.category == "invalid"


@pytest.mark.parametrize("bad_id", ["", "dl-", "dl-0", "dl-x", "1", "DL-1", "dl-1 ", "dl-01"])
def test_get_malformed_or_unknown_id_is_none(store: DeadLetterStore, bad_id: str) -> None:
    _fail(store, _event())
    assert store.get(bad_id) is None
    assert store.get("dl-999") is None


def test_remove_counts_and_takes_one_string(store: DeadLetterStore) -> None:
    a, b, c = (_fail(store, _event(n)).id for n in range(3))
    assert store.remove(a) == 1  # a single id, not its characters
    assert store.remove([b, b, "dl-999", "junk"]) == 1
    assert store.remove([]) == 0
    assert [r.id for r in store.list()] == [c]


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"handler": ""}, "handler"),
        ({"handler": 3}, "handler"),
        ({"group": ""}, "group"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 1.0}, "attempts"),
        ({"error": "boom"}, "error"),
    ],
)
def test_attack_bad_add_arguments(store: DeadLetterStore, kwargs: dict[str, Any],
                                  what: str) -> None:
    args: dict[str, Any] = {"handler": "h", "group": "g", "attempts": 1,
                            "error": RuntimeError("x"), **kwargs}
    with pytest.raises(DeadLetterStoreError, match=what) as info:
        store.add(_event(), **args)
    assert info.value.category == "invalid"
    assert "\n" not in str(info.value)
    assert store.list() == []


def test_attack_add_non_event(store: DeadLetterStore) -> None:
    with pytest.raises(DeadLetterStoreError, match="needs an Event, got dict"):
        store.add({"topic": "a"}, handler="h", group="g", attempts=1,  # type: ignore[arg-type]
                  error=RuntimeError("x"))


# --------------------------------------------------------------- error text


@pytest.fixture
def registered_secret() -> Iterator[str]:
    from oneiric.core._redact import register_secret, reset_registry

    secret = "s3cr3t-from-settings"
    register_secret(secret)
    yield secret
    reset_registry()


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("login failed: password=hunter2 for user bob", "hunter2"),
        ("login failed: db_password='hunter2'", "hunter2"),
        ('config {"api_key": "AKIA1234567890"} rejected', "AKIA1234567890"),
        ("token: eyJhbGciOiJIUzI1NiJ9.payload.sig expired", "eyJhbGciOiJIUzI1NiJ9"),
        ("401 for header Authorization: Bearer abc.DEF-123_xyz~+/=", "abc.DEF-123_xyz"),
        ("sent Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("cannot connect to redis://app:pa55word@cache:6379/0", "pa55word"),
        ("GET https://h/x?access_key=K3Y&x=1 failed", "K3Y"),
    ],
)
def test_attack_secret_in_exception_message_is_scrubbed(
    store: DeadLetterStore, message: str, secret: str
) -> None:
    record = _fail(store, _event(), error=PermissionError(message))
    assert secret not in record.error
    assert "**********" in record.error
    assert secret not in json.dumps(store.get(record.id).as_dict())  # type: ignore[union-attr]
    # on disk: the row sits in the WAL until a checkpoint, so read both files
    files = (store.path, Path(f"{store.path}-wal"))
    blob = b"".join(name.read_bytes() for name in files if name.exists())
    assert record.event.id.encode() in blob  # the check looks where the record is
    assert secret.encode() not in blob


def test_attack_registered_settings_secret_is_scrubbed(
    store: DeadLetterStore, registered_secret: str
) -> None:
    record = _fail(store, _event(), error=RuntimeError(
        f"upstream said: key {registered_secret} is not allowed"))
    assert registered_secret not in record.error
    assert record.error == "upstream said: key ********** is not allowed"  # context kept


def test_attack_multiline_traceback_in_message_is_one_line(store: DeadLetterStore) -> None:
    try:
        raise ValueError("bad\nTraceback (most recent call last):\n  File 'x.py'\r\n\tboom")
    except ValueError as exc:
        record = _fail(store, _event(), error=exc)
    assert record.error == "bad Traceback (most recent call last): File 'x.py' boom"
    assert "\n" not in record.error and "\r" not in record.error


def test_attack_huge_message_is_capped(store: DeadLetterStore) -> None:
    record = _fail(store, _event(), error=RuntimeError("x" * 5_000_000))
    assert len(record.error) == _letter.MAX_ERROR_LENGTH
    assert record.error.endswith("...")


def test_attack_exception_whose_str_raises_is_still_dead_lettered(
    store: DeadLetterStore
) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    record = _fail(store, _event(), error=Unprintable())
    assert record.error == "Unprintable"
    assert store.get(record.id) == record


# ------------------------------------------------------------ files, schema


def test_lazy_open_creates_private_dir_and_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "a" / "b" / "dl.sqlite"
    store = DeadLetterStore(path, clock=clock)
    assert not (tmp_path / "a").exists()  # nothing until first use
    with store:
        assert store.list() == []
        assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        _fail(store, _event())
        for name in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def test_attack_symlinked_file_refused(tmp_path: Path, clock: Clock) -> None:
    target = tmp_path / "elsewhere.sqlite"
    target.write_bytes(b"")
    link = tmp_path / "dl.sqlite"
    link.symlink_to(target)
    with DeadLetterStore(link, clock=clock) as store, pytest.raises(
        DeadLetterStoreError, match="is a symbolic link"
    ):
        store.list()
    assert target.read_bytes() == b""


def test_attack_world_writable_parent_refused(tmp_path: Path, clock: Clock) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with DeadLetterStore(shared / "dl.sqlite", clock=clock) as store, pytest.raises(
        ConfigError, match="world-writable"
    ):
        store.list()
    assert not (shared / "dl.sqlite").exists()


def _make_db(path: Path, version: int, *statements: str) -> bytes:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_attack_newer_schema_refused_and_untouched(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "dl.sqlite"
    before = _make_db(path, 7, "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, future TEXT)")
    mtime = os.stat(path).st_mtime_ns
    with DeadLetterStore(path, clock=clock) as store:
        for call in (store.list, lambda: _fail(store, _event()), store.prune):
            with pytest.raises(DeadLetterStoreError) as info:
                call()
            message = str(info.value)
            assert "\n" not in message
            assert str(path) in message
            assert "newer oneiric-runtime" in message and "upgrade" in message
            assert info.value.category == "invalid" and exit_code_for(info.value) == 4
    assert path.read_bytes() == before
    assert os.stat(path).st_mtime_ns == mtime
    assert not Path(f"{path}-wal").exists()


def test_legacy_version_0_file_migrates_and_keeps_other_tables(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "dl.sqlite"
    _make_db(path, 0, "CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('keep me')")
    with DeadLetterStore(path, clock=clock) as store:
        record = _fail(store, _event())
        assert store.list() == [record]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT text FROM notes").fetchall() == [("keep me",)]
    finally:
        conn.close()


def test_schema_migrates_forward_to_a_next_version(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dl.sqlite"
    with DeadLetterStore(path, clock=clock) as store:
        record = _fail(store, _event(3))

    def migrate_to_2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE dead_letters ADD COLUMN note TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(_deadletters, "_MIGRATIONS", (*_deadletters._MIGRATIONS, migrate_to_2))
    with DeadLetterStore(path, clock=clock) as store:
        assert store.list() == [record]
        again = _fail(store, record.event)
        assert (again.id, again.attempts) == (record.id, 6)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT note FROM dead_letters").fetchall() == [("",)]
    finally:
        conn.close()
    monkeypatch.undo()  # the released code (version 1) meets the version-2 file
    with DeadLetterStore(path, clock=clock) as store, pytest.raises(
        DeadLetterStoreError, match="schema version 2, written by a newer"
    ):
        store.list()


@pytest.mark.parametrize(
    "content",
    [b"this is not sqlite at all\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4080, b"\x00" * 512],
    ids=["text", "bad-header", "zeros"],
)
def test_attack_corrupt_file_is_one_line_error_and_untouched(
    tmp_path: Path, clock: Clock, content: bytes
) -> None:
    path = tmp_path / "dl.sqlite"
    path.write_bytes(content)
    with DeadLetterStore(path, clock=clock) as store:
        for _ in range(2):  # a failed open is not cached half-open
            with pytest.raises(DeadLetterStoreError) as info:
                _fail(store, _event())
            message = str(info.value)
            assert "\n" not in message
            assert str(path) in message and "not a valid SQLite database" in message
            assert "move it aside" in message
            assert info.value.category == "invalid"
    assert path.read_bytes() == content
    path.rename(tmp_path / "dl.sqlite.broken")  # what the message says to do
    with DeadLetterStore(path, clock=clock) as store:
        assert _fail(store, _event()).attempts == 3


def test_attack_locked_by_another_process_is_one_line_error(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "dl.sqlite"
    with DeadLetterStore(path, clock=clock, busy_timeout=0.05) as store:
        store.list()
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            with pytest.raises(DeadLetterStoreError, match="locked by another process") as info:
                _fail(store, _event())
            assert info.value.category == "unavailable"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert _fail(store, _event()).attempts == 3  # usable again, nothing half-written
        assert len(store.list()) == 1


def test_closed_store_refuses_use(tmp_path: Path, clock: Clock) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite", clock=clock)
    _fail(store, _event())
    store.close()
    store.close()  # idempotent
    with pytest.raises(DeadLetterStoreError, match="is closed"):
        store.list()


@pytest.mark.parametrize("retention", [0, -1, "14", "forever", float("nan"), None])
def test_attack_bad_retention_refused(tmp_path: Path, retention: Any) -> None:
    with pytest.raises(ConfigError, match="retention"):
        DeadLetterStore(tmp_path / "dl.sqlite", retention=retention)


def test_attack_bad_path_refused() -> None:
    for bad in ("", None, 3):
        with pytest.raises(ConfigError, match="must be a file path"):
            DeadLetterStore(bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------- retention


def test_prune_removes_records_older_than_retention(tmp_path: Path, clock: Clock) -> None:
    with DeadLetterStore(tmp_path / "dl.sqlite", clock=clock) as store:
        old = _fail(store, _event(1))
        clock.now += 10 * DAY
        young = _fail(store, _event(2))
        assert store.prune(now=old.time + 14 * DAY) == 0  # exactly at the limit: kept
        assert store.prune(now=old.time + 14 * DAY + 1) == 1
        assert [r.id for r in store.list()] == [young.id]
        clock.now = young.time + 15 * DAY
        assert store.prune() == 1  # the injected clock by default
        assert store.list() == []


def test_retention_accepts_durations(tmp_path: Path, clock: Clock) -> None:
    with DeadLetterStore(tmp_path / "dl.sqlite", retention="2h", clock=clock) as store:
        assert store.retention == 7200
        _fail(store, _event())
        assert store.prune(now=clock.now + 7201) == 1


def test_prune_runs_on_open(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "dl.sqlite"
    with DeadLetterStore(path, clock=clock) as store:
        _fail(store, _event(1))
        clock.now += 10 * DAY
        kept = _fail(store, _event(2))
    clock.now += 5 * DAY
    with DeadLetterStore(path, clock=clock) as store:
        assert [r.id for r in store.list()] == [kept.id]  # the first read opened and pruned


def test_add_prunes_at_most_once_an_hour(tmp_path: Path, clock: Clock) -> None:
    with DeadLetterStore(tmp_path / "dl.sqlite", retention=100, clock=clock) as store:
        first = _fail(store, _event(1))  # opens (and prunes) now
        clock.now += 200
        _fail(store, _event(2))  # first is stale, but the last prune was < 1 h ago
        assert first.id in [r.id for r in store.list()]
        clock.now += 3600
        last = _fail(store, _event(3))  # > 1 h since the last prune: prunes
        assert [r.id for r in store.list()] == [last.id]


# ------------------------------------------------------------- concurrency


_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from oneiric.runtime._deadletters import DeadLetterStore
    from oneiric.runtime._event import Event
    path, go, tag, same = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "same"
    while not os.path.exists(go):
        time.sleep(0.005)
    with DeadLetterStore(path, busy_timeout=30) as store:
        for n in range(50):
            event_id = "shared-event" if same else f"{tag}-{n}"
            event = Event("orders.created", {"worker": tag, "n": n}, id=event_id)
            store.add(event, handler="billing", group="billing", attempts=1,
                      error=ConnectionError(f"refused {tag} {n}"))
    """
)


def _run_workers(tmp_path: Path, path: Path, mode: str) -> None:
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(go), tag, mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for tag in ("w1", "w2")
    ]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()


def test_attack_two_processes_adding_concurrently_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dl.sqlite"  # fresh: both processes also race to create it
    _run_workers(tmp_path, path, "distinct")
    with DeadLetterStore(path) as store:
        records = store.list()
    assert len(records) == 100
    assert len({r.id for r in records}) == 100
    assert {(r.event.payload["worker"], r.event.payload["n"]) for r in records} == {
        (w, n) for w in ("w1", "w2") for n in range(50)
    }


def test_attack_two_processes_failing_same_event_keep_one_record(tmp_path: Path) -> None:
    path = tmp_path / "dl.sqlite"
    _run_workers(tmp_path, path, "same")
    with DeadLetterStore(path) as store:
        records = store.list()
    assert len(records) == 1
    assert records[0].attempts == 100


# ------------------------------------------------------------------ redrive


@dataclass
class Outcome:
    handler: str
    group: str
    status: str


@dataclass
class Report:
    event_id: str
    outcomes: tuple[Outcome, ...]


@dataclass
class RecordingDispatcher:
    """Answers each dispatch with the next scripted status; a failure dead-letters again,

    as the real dispatcher does (through the same store).
    """

    store: DeadLetterStore
    statuses: dict[str, list[str]] = field(default_factory=dict)  # event id -> statuses
    calls: list[tuple[Event, frozenset[str] | None]] = field(default_factory=list)

    async def dispatch(self, event: Event, *, groups: set[str] | None = None) -> Report:
        self.calls.append((event, None if groups is None else frozenset(groups)))
        outcomes = []
        for group in sorted(groups or ()):
            status = self.statuses.get(event.id, ["ok"]).pop(0)
            if status == "dead_lettered":
                self.store.add(event, handler=group, group=group, attempts=2,
                               error=ConnectionError("still refused"))
            if status != "absent":
                outcomes.append(Outcome(group, group, status))
        await asyncio.sleep(0)
        return Report(event.id, tuple(outcomes))


def test_redrive_success_removes_record_with_same_event_id(store: DeadLetterStore) -> None:
    event = _event(1)
    record = _fail(store, event, handler="billing")
    dispatcher = RecordingDispatcher(store)
    reports = asyncio.run(store.redrive(dispatcher, [record.id]))
    assert [(e.id, g) for e, g in dispatcher.calls] == [(event.id, frozenset({"billing"}))]
    assert dispatcher.calls[0][0] == event
    assert [r.event_id for r in reports] == [event.id]
    assert store.list() == []


@pytest.mark.parametrize(
    ("status", "kept_attempts"),
    [("ok", None), ("duplicate", None), ("dead_lettered", 5), ("failed", 3),
     ("timed_out", 3), ("absent", 3)],
)
def test_redrive_outcome_decides_whether_record_stays(
    store: DeadLetterStore, status: str, kept_attempts: int | None
) -> None:
    event = _event(2)
    record = _fail(store, event, attempts=3)
    dispatcher = RecordingDispatcher(store, {event.id: [status]})
    asyncio.run(store.redrive(dispatcher, [record.id]))
    left = store.list()
    if kept_attempts is None:
        assert left == []
    else:  # still one record, the same id (never a duplicate)
        assert [(r.id, r.attempts) for r in left] == [(record.id, kept_attempts)]


def test_redrive_all_oldest_first_only_their_groups(
    store: DeadLetterStore, clock: Clock
) -> None:
    a = _fail(store, _event(1), handler="billing")
    clock.now += 1
    b = _fail(store, _event(2), handler="audit")
    clock.now += 1
    c = _fail(store, _event(3), handler="mail")
    dispatcher = RecordingDispatcher(store, {b.event.id: ["dead_lettered"]})
    reports = asyncio.run(store.redrive(dispatcher))
    assert [(e.id, set(g or ())) for e, g in dispatcher.calls] == [
        (a.event.id, {"billing"}), (b.event.id, {"audit"}), (c.event.id, {"mail"})]
    assert len(reports) == 3
    assert [(r.id, r.attempts) for r in store.list()] == [(b.id, 5)]


def test_attack_redrive_unknown_id_dispatches_nothing(store: DeadLetterStore) -> None:
    known = _fail(store, _event(1))
    dispatcher = RecordingDispatcher(store)
    with pytest.raises(DeadLetterNotFound) as info:
        asyncio.run(store.redrive(dispatcher, [known.id, "dl-999", "nonsense"]))
    message = str(info.value)
    assert "'dl-999'" in message and "'nonsense'" in message and "dead-letters" in message
    assert "\n" not in message
    assert info.value.category == "not_found" and exit_code_for(info.value) == 3
    assert isinstance(info.value, EventError) and isinstance(info.value, LookupError)
    assert dispatcher.calls == []
    assert store.list() == [known]


def test_redrive_one_string_id_and_repeated_ids(store: DeadLetterStore) -> None:
    record = _fail(store, _event(1))
    dispatcher = RecordingDispatcher(store)
    asyncio.run(store.redrive(dispatcher, record.id))
    assert len(dispatcher.calls) == 1
    record = _fail(store, _event(2))
    dispatcher = RecordingDispatcher(store)
    asyncio.run(store.redrive(dispatcher, [record.id, record.id]))
    assert len(dispatcher.calls) == 1
    assert store.list() == []


def test_redrive_empty_store_does_nothing(store: DeadLetterStore) -> None:
    dispatcher = RecordingDispatcher(store)
    assert asyncio.run(store.redrive(dispatcher)) == []
    assert dispatcher.calls == []
