"""SQLiteCheckpointStore on real SQLite files, across real processes killed with SIGKILL.

The four ``CheckpointStore`` guarantees, each tested here:

1. exactly-once outcomes: conditional updates refuse a zombie attempt;
2. durable before returning: a process SIGKILLed at random instants loses no
   confirmed write and never damages the file;
3. one executor per run: two processes race for the flock, one wins; a
   SIGKILLed holder's run is taken at once; removing lock files never lets
   two holders in;
4. ``create_run`` never overwrites.

Time never decides an assertion: clocks are injected, processes report what
they did on stdout, and the tests assert on that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for
from oneiric.runtime import _sqlitestore
from oneiric.runtime._checkpoint import CheckpointStore
from oneiric.runtime._errors import RunLocked, RunNotFound, WorkflowError
from oneiric.runtime._runs import NodeState, RunRecord
from oneiric.runtime._sqlitestore import (
    DEFAULT_CHECKPOINTS,
    SCHEMA_VERSION,
    CheckpointStoreError,
    SQLiteCheckpointStore,
)

T0 = 1_800_000_000.0


class Clock:
    """A settable clock: tests move time, never sleep."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / DEFAULT_CHECKPOINTS


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[SQLiteCheckpointStore]:
    with SQLiteCheckpointStore(db, clock=clock) as s:
        yield s


def _record(run_id: str = "r1", workflow_id: str = "orders", **fields: Any) -> RunRecord:
    fields.setdefault("input", {"order": 7})
    return RunRecord(run_id, workflow_id, fields.pop("version", 1),
                     fields.pop("definition_hash", "sha256:abc"), **fields)


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text
    return text


# A child process: ``python -c CHILD <db> <mode> ...`` with the store on sys.path.
CHILD_PRELUDE = """
import os, sys, time
from oneiric.runtime._sqlitestore import SQLiteCheckpointStore
from oneiric.runtime._runs import RunRecord
from oneiric.runtime._errors import RunLocked
def say(*words):
    # one write per line: a kill never leaves half a line that reads as confirmed
    sys.stdout.write(" ".join(map(str, words)) + "\\n")
    sys.stdout.flush()
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _expect(proc: subprocess.Popen[str], line: str) -> None:
    """Read the child's stdout until ``line`` (a child that dies first fails the test)."""
    assert proc.stdout is not None
    for got in proc.stdout:
        if got.strip() == line:
            return
    raise AssertionError(f"child exited before {line!r}: {proc.wait()} {proc.stderr.read()}")  # type: ignore[union-attr]


def _kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL the child if it still runs; what it wrote (complete lines only) and its stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout, proc.stderr:
        out, err = proc.stdout.read(), proc.stderr.read()
    return out[: out.rfind("\n") + 1], err


# ------------------------------------------------------------------ protocol


def test_implements_the_checkpoint_store_protocol(store: SQLiteCheckpointStore) -> None:
    assert isinstance(store, CheckpointStore)
    assert DEFAULT_CHECKPOINTS == "workflows.sqlite"
    assert issubclass(CheckpointStoreError, WorkflowError)
    assert exit_code_for(CheckpointStoreError("x")) == exit_code_for(
        CheckpointStoreError("x", category="unavailable"))


def test_create_run_stores_record_and_pending_nodes_in_order(
    store: SQLiteCheckpointStore, clock: Clock
) -> None:
    record, created = store.create_run(_record(correlation_id="c-9"), ["zeta", "alpha", "mid"])
    assert created
    assert record == _record(created_at=T0, updated_at=T0, correlation_id="c-9")
    assert store.get_run("r1") == record
    nodes = store.nodes("r1")
    assert list(nodes) == ["zeta", "alpha", "mid"]  # the definition's order, not sorted
    assert all(state == NodeState() for state in nodes.values())


def test_attack_create_run_twice_never_overwrites(store: SQLiteCheckpointStore,
                                                  clock: Clock) -> None:
    first, _ = store.create_run(_record(), ["a", "b"])
    assert store.node_started("r1", "a", 1)
    assert store.node_finished("r1", "a", 1, "succeeded", output={"v": 1})
    clock.now += 60
    again, created = store.create_run(
        _record(input={"order": 8}, workflow_id="other", definition_hash="sha256:new"), ["x"])
    assert not created
    assert again == first
    assert list(store.nodes("r1")) == ["a", "b"]
    assert store.nodes("r1")["a"].output == {"v": 1}


@pytest.mark.parametrize(
    ("record", "nodes", "fragment"),
    [
        (_record(input={"x": float("nan")}), ["a"], "not JSON"),
        (_record(input={"x": object()}), ["a"], "not JSON"),
        (_record(input={"x": float("inf")}), ["a"], "not JSON"),
        (_record(status="sleeping"), ["a"], "sleeping"),
        (_record(run_id=""), ["a"], "run id"),
        (_record(), ["a", "a"], "names a node twice"),
        (_record(), ["a", ""], "node id"),
        (_record(), ["a", 3], "node id"),
    ],
)
def test_attack_bad_create_run_writes_nothing(
    store: SQLiteCheckpointStore, record: RunRecord, nodes: list[Any], fragment: str
) -> None:
    with pytest.raises(CheckpointStoreError) as info:
        store.create_run(record, nodes)
    assert fragment in _one_line(info.value)
    assert info.value.category == "invalid"
    assert store.list_runs() == []


def test_json_values_round_trip_exactly(store: SQLiteCheckpointStore) -> None:
    value = {"text": "héllo ✓ \u2028", "lone": "\ud800x", "neg_zero": -0.0, "big": 2**70,
             "float": 0.1 + 0.2, "nested": {"a": [1, None, True, {}]}, "empty": [], "q": "\"'\\"}
    store.create_run(_record(input=value), ["a"])
    store.node_started("r1", "a", 1)
    store.node_finished("r1", "a", 1, "succeeded", output=value)
    assert store.get_run("r1").input == value  # type: ignore[union-attr]
    assert store.nodes("r1")["a"].output == value
    raw = sqlite3.connect(store.path).execute("SELECT output FROM nodes").fetchone()[0]
    assert json.loads(raw) == value  # JSON text in the file, never a pickle


def test_list_runs_newest_first_filtered_and_limited(store: SQLiteCheckpointStore,
                                                     clock: Clock) -> None:
    for n, workflow in enumerate(["a", "b", "a", "a"]):
        clock.now = T0 + n
        store.create_run(_record(f"r{n}", workflow), ["x"])
    store.set_run("r2", status="failed")
    assert [r.run_id for r in store.list_runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.list_runs(workflow_id="a")] == ["r3", "r2", "r0"]
    assert [r.run_id for r in store.list_runs(status="running", workflow_id="a")] == ["r3", "r0"]
    assert [r.run_id for r in store.list_runs(status="failed")] == ["r2"]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["r3", "r2"]
    assert store.list_runs(limit=0) == []


@pytest.mark.parametrize("kwargs", [{"status": "sleeping"}, {"limit": -1}, {"limit": True},
                                    {"limit": "5"}])
def test_attack_bad_list_runs_arguments(store: SQLiteCheckpointStore,
                                        kwargs: dict[str, Any]) -> None:
    with pytest.raises(CheckpointStoreError) as info:
        store.list_runs(**kwargs)
    _one_line(info.value)
    assert info.value.category == "invalid"


def test_set_run_changes_fields_and_stamps_updated_at(store: SQLiteCheckpointStore,
                                                      clock: Clock) -> None:
    store.create_run(_record(), ["a"])
    clock.now = T0 + 30
    record = store.set_run("r1", status="failed", error="boom", finished_at=T0 + 29,
                           recoveries=2, cancel_requested=True, definition_hash="sha256:v2",
                           version=2)
    assert (record.status, record.error, record.finished_at, record.recoveries,
            record.cancel_requested, record.definition_hash, record.version,
            record.updated_at, record.created_at) == (
        "failed", "boom", T0 + 29, 2, True, "sha256:v2", 2, T0 + 30, T0)
    assert store.get_run("r1") == record


@pytest.mark.parametrize(
    "changes",
    [{"input": {}}, {"created_at": 5.0}, {"status": "sleeping"}, {"recoveries": -1},
     {"recoveries": "1"}, {"finished_at": "yesterday"}, {"finished_at": float("nan")},
     {"error": 5}, {"definition_hash": None}],
)
def test_attack_bad_set_run_changes_nothing(store: SQLiteCheckpointStore,
                                            changes: dict[str, Any]) -> None:
    before, _ = store.create_run(_record(), ["a"])
    with pytest.raises(CheckpointStoreError) as info:
        store.set_run("r1", **changes)
    _one_line(info.value)
    assert store.get_run("r1") == before


def test_set_run_of_unknown_run_is_run_not_found(store: SQLiteCheckpointStore) -> None:
    with pytest.raises(RunNotFound) as info:
        store.set_run("nope", status="failed")
    assert "nope" in _one_line(info.value)
    assert store.get_run("nope") is None
    assert store.nodes("nope") == {}


# ------------------------------------------------------- guarantee 1: exactly once


def test_node_started_and_finished_record_attempt_times_and_outcome(
    store: SQLiteCheckpointStore, clock: Clock
) -> None:
    store.create_run(_record(), ["a"])
    clock.now = T0 + 1
    assert store.node_started("r1", "a", 1)
    assert store.nodes("r1")["a"] == NodeState("running", 1, started_at=T0 + 1)
    clock.now = T0 + 2
    assert store.node_finished("r1", "a", 1, "failed", error="ConnectionError: refused")
    assert store.nodes("r1")["a"] == NodeState("failed", 1, None, "ConnectionError: refused",
                                               T0 + 1, T0 + 2)
    clock.now = T0 + 3
    assert store.node_started("r1", "a", 2)  # a retry: error and end are cleared
    assert store.nodes("r1")["a"] == NodeState("running", 2, started_at=T0 + 3)
    assert store.node_finished("r1", "a", 2, "succeeded", output=[3])
    assert store.nodes("r1")["a"].output == [3]


def test_attack_zombie_attempt_cannot_overwrite_newer_attempt(
    store: SQLiteCheckpointStore,
) -> None:
    store.create_run(_record(), ["a"])
    assert store.node_started("r1", "a", 1)
    assert store.node_started("r1", "a", 2)  # attempt 1's executor died; recovery restarts
    before = store.nodes("r1")
    assert not store.node_finished("r1", "a", 1, "succeeded", output="stale")
    assert not store.node_finished("r1", "a", 1, "failed", error="stale")
    assert store.nodes("r1") == before
    assert store.node_finished("r1", "a", 2, "succeeded", output="fresh")
    assert store.nodes("r1")["a"].output == "fresh"


def test_attack_outcome_recorded_exactly_once(store: SQLiteCheckpointStore) -> None:
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 1)
    assert store.node_finished("r1", "a", 1, "succeeded", output=1)
    assert not store.node_finished("r1", "a", 1, "failed", error="late")
    assert not store.node_finished("r1", "a", 1, "succeeded", output=2)
    assert store.nodes("r1")["a"].output == 1


@pytest.mark.parametrize("settled", [None, "failed", "timed_out", "cancelled"])
@pytest.mark.parametrize("attempt", [1, 2])
def test_attack_node_started_refuses_same_or_lower_attempt(
    store: SQLiteCheckpointStore, settled: str | None, attempt: int
) -> None:
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 2)
    if settled:
        store.node_finished("r1", "a", 2, settled, error="e")
    before = store.nodes("r1")
    assert not store.node_started("r1", "a", attempt)
    assert store.nodes("r1") == before
    assert store.node_started("r1", "a", 3)


def test_succeeded_node_never_starts_again(store: SQLiteCheckpointStore) -> None:
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 1)
    store.node_finished("r1", "a", 1, "succeeded", output="kept")
    assert not store.node_started("r1", "a", 99)
    assert store.nodes("r1")["a"].output == "kept"


def test_unknown_run_or_node_is_false_not_written(store: SQLiteCheckpointStore) -> None:
    store.create_run(_record(), ["a"])
    assert not store.node_started("r1", "ghost", 1)
    assert not store.node_started("ghost", "a", 1)
    assert not store.node_finished("ghost", "a", 1, "succeeded")
    assert list(store.nodes("r1")) == ["a"] and store.nodes("ghost") == {}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"status": "running"}, "outcome"),
        ({"status": "pending"}, "outcome"),
        ({"status": "succeeded", "output": {"x": float("nan")}}, "not JSON"),
        ({"status": "succeeded", "output": {1, 2}}, "not JSON"),
        ({"status": "succeeded", "output": b"bytes"}, "not JSON"),
        ({"status": "failed", "error": ValueError("x")}, "error"),
        ({"status": "succeeded", "attempt": 0}, "attempt"),
        ({"status": "succeeded", "attempt": True}, "attempt"),
    ],
)
def test_attack_bad_node_outcome_writes_nothing(
    store: SQLiteCheckpointStore, kwargs: dict[str, Any], fragment: str
) -> None:
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 1)
    before = store.nodes("r1")
    attempt = kwargs.pop("attempt", 1)
    with pytest.raises(CheckpointStoreError) as info:
        store.node_finished("r1", "a", attempt, **kwargs)
    assert fragment in _one_line(info.value)
    assert info.value.category == "invalid"
    assert store.nodes("r1") == before
    assert store.node_finished("r1", "a", 1, "succeeded", output="ok")  # still running


def test_deeply_nested_output_is_refused_not_recursion_error(
    store: SQLiteCheckpointStore,
) -> None:
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 1)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CheckpointStoreError, match="not JSON"):
        store.node_finished("r1", "a", 1, "succeeded", output=deep)


def test_reset_nodes_keeps_attempts_spares_succeeded_and_adds_new(
    store: SQLiteCheckpointStore,
) -> None:
    store.create_run(_record(), ["ok", "bad", "inflight", "never"])
    for node, outcome in (("ok", "succeeded"), ("bad", "failed"), ("inflight", None)):
        store.node_started("r1", node, 1)
        if outcome:
            store.node_finished("r1", node, 1, outcome, output="out", error=None)
    store.reset_nodes("r1", ["ok", "bad", "inflight", "never", "added"])
    nodes = store.nodes("r1")
    assert list(nodes) == ["ok", "bad", "inflight", "never", "added"]
    assert (nodes["ok"].status, nodes["ok"].attempts, nodes["ok"].output) == (
        "succeeded", 1, "out")
    assert nodes["bad"] == NodeState("pending", 1)
    assert nodes["inflight"] == NodeState("pending", 1)
    assert nodes["never"] == NodeState("pending", 0)
    assert nodes["added"] == NodeState("pending", 0)
    assert store.node_started("r1", "bad", 2)
    with pytest.raises(RunNotFound):
        store.reset_nodes("ghost", ["a"])


def test_skip_nodes_marks_unsettled_with_reason_and_spares_succeeded(
    store: SQLiteCheckpointStore, clock: Clock
) -> None:
    store.create_run(_record(), ["ok", "failed", "below", "running"])
    for node, outcome in (("ok", "succeeded"), ("failed", "failed"), ("running", None)):
        store.node_started("r1", node, 1)
        if outcome:
            store.node_finished("r1", node, 1, outcome, output="out")
    clock.now = T0 + 5
    store.skip_nodes("r1", ["ok", "below", "running", "ghost"], "upstream node 'failed' failed")
    nodes = store.nodes("r1")
    assert (nodes["ok"].status, nodes["ok"].output) == ("succeeded", "out")
    assert nodes["below"] == NodeState("skipped", 0, None, "upstream node 'failed' failed",
                                       None, T0 + 5)
    assert (nodes["running"].status, nodes["running"].attempts) == ("skipped", 1)
    assert not store.node_finished("r1", "running", 1, "succeeded")  # a zombie stays out
    assert store.node_started("r1", "below", 1)  # a resume may start it
    assert "ghost" not in nodes
    with pytest.raises(RunNotFound):
        store.skip_nodes("nope", ["a"], "x")
    with pytest.raises(CheckpointStoreError):
        store.skip_nodes("r1", ["below"], None)  # type: ignore[arg-type]


def test_attack_lone_surrogate_in_ids_refused_in_error_text_escaped(
    store: SQLiteCheckpointStore,
) -> None:
    with pytest.raises(CheckpointStoreError) as info:
        store.create_run(_record("\ud800"), ["a"])
    assert "lone surrogate" in _one_line(info.value) and info.value.category == "invalid"
    with pytest.raises(CheckpointStoreError):
        store.get_run("\ud800")
    store.create_run(_record(), ["a"])
    store.node_started("r1", "a", 1)
    assert store.node_finished("r1", "a", 1, "failed", error="bad byte \udcff here")
    assert store.nodes("r1")["a"].error == "bad byte \\udcff here"
    assert store.set_run("r1", error="x\ud800").error == "x\\ud800"


def test_run_columns_are_run_record_fields_in_order() -> None:
    names = [f.name for f in dataclasses.fields(RunRecord)]
    assert names == _sqlitestore._RUN_COLUMNS.split(", ")


# ----------------------------------------------------------- guarantee 3: executor


def test_executor_excludes_a_second_holder_in_process(store: SQLiteCheckpointStore,
                                                      db: Path, clock: Clock) -> None:
    assert not store.executor_alive("r1")
    with store.executor("r1"):
        assert store.executor_alive("r1")
        with pytest.raises(RunLocked) as info, store.executor("r1"):
            pass
        text = _one_line(info.value)
        assert "'r1'" in text and f"pid {os.getpid()}" in text
        assert info.value.category == "refused"
        other = SQLiteCheckpointStore(db, clock=clock)  # a second store object: same lock
        with pytest.raises(RunLocked), other.executor("r1"):
            pass
        with other.executor("r2"):  # another run is independent
            assert store.executor_alive("r2")
    assert not store.executor_alive("r1")
    assert list((db.parent / "workflow-locks").iterdir()) == []  # removed on release


def test_executor_released_when_the_body_raises(store: SQLiteCheckpointStore) -> None:
    with pytest.raises(KeyError), store.executor("r1"):
        raise KeyError("x")
    with store.executor("r1"):
        pass


@pytest.mark.parametrize("run_id", ["../../escape", "/etc/passwd", "a\x00b", "é" * 300,
                                    "con", ".", "..", "orders/2024:r-1"])
def test_attack_run_id_is_never_a_path(store: SQLiteCheckpointStore, db: Path,
                                       run_id: str) -> None:
    store.create_run(_record(run_id), ["a"])
    with store.executor(run_id):
        assert store.executor_alive(run_id)
        names = os.listdir(db.parent / "workflow-locks")
        assert len(names) == 1 and names[0].endswith(".lock") and len(names[0]) == 45
    assert store.get_run(run_id) is not None
    assert os.listdir(db.parent.parent) == ["state"]  # nothing written outside the state dir


def test_executor_alive_probe_creates_no_file(store: SQLiteCheckpointStore, db: Path) -> None:
    assert not store.executor_alive("never-run")
    assert not (db.parent / "workflow-locks").exists()


EXECUTOR_RACE = """
db, run, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = SQLiteCheckpointStore(db)
say("ready")
while not os.path.exists(go):
    time.sleep(0.001)
try:
    with store.executor(run):
        say("won")
        time.sleep(600)
except RunLocked:
    say("locked")
"""


def test_attack_two_processes_one_executor_then_sigkill_frees_it(
    store: SQLiteCheckpointStore, db: Path, tmp_path: Path
) -> None:
    store.create_run(_record(), ["a"])
    go = tmp_path / "go"
    procs = [_spawn(EXECUTOR_RACE, str(db), "r1", str(go)) for _ in range(2)]
    try:
        for proc in procs:
            _expect(proc, "ready")
        go.touch()
        lines = [proc.stdout.readline().strip() for proc in procs]  # type: ignore[union-attr]
        assert sorted(lines) == ["locked", "won"]
        winner = procs[lines.index("won")]
        assert store.executor_alive("r1")
        with pytest.raises(RunLocked) as info, store.executor("r1"):
            pass
        assert f"pid {winner.pid}" in str(info.value)
        winner.send_signal(signal.SIGKILL)
        winner.wait()
        assert not store.executor_alive("r1")  # the kernel released the dead holder's flock
        with store.executor("r1"):  # taken at once, no lease to expire
            assert store.executor_alive("r1")
    finally:
        for proc in procs:
            _kill(proc)


LOCK_STRESS = """
db, run, marker, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = SQLiteCheckpointStore(db)
won = overlaps = 0
for _ in range(rounds):
    try:
        with store.executor(run):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                overlaps += 1
                continue
            won += 1
            os.close(fd)
            os.unlink(marker)
    except RunLocked:
        pass
say(won, overlaps)
"""


def test_attack_removing_lock_files_never_admits_two_holders(db: Path, tmp_path: Path) -> None:
    """Four processes take and release one run's lock 300 times each.

    Lock files are removed on release; without the inode re-check after
    locking, a process that opened the file just before its removal locks
    the removed file while another locks the new one - two holders, which the
    marker file (created exclusively inside the lock) would catch.
    """
    SQLiteCheckpointStore(db).create_run(_record(), ["a"])
    procs = [_spawn(LOCK_STRESS, str(db), "r1", str(tmp_path / "inside"), "300")
             for _ in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(tuple(int(n) for n in out.split()))
    assert all(overlaps == 0 for _, overlaps in results), results
    assert sum(won for won, _ in results) >= 300  # the lock changed hands a lot


# --------------------------------------------------- guarantee 2: kill -9 durability


WRITER = """
db, sync, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SQLiteCheckpointStore(db, synchronous=sync)
store.get_run("warm-up")
say("ready")
n = first
while True:
    run = f"run-{n // 20}"
    if n % 20 == 0:
        store.create_run(RunRecord(run, "wf", 1, "h", {"n": n}), [f"n{i}" for i in range(20)])
        say("C", run)
    node = f"n{n % 20}"
    if store.node_started(run, node, 1):
        say("S", run, node)
    if store.node_finished(run, node, 1, "succeeded", output={"n": n, "pad": "x" * 200}):
        say("F", run, node, n)
    n += 1
"""


@pytest.mark.parametrize(("synchronous", "iterations"), [("NORMAL", 50), ("FULL", 8)])
def test_attack_sigkill_at_random_instants_loses_nothing_confirmed(
    db: Path, synchronous: str, iterations: int
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    confirmed: dict[str, set[str]] = {}
    started: set[tuple[str, str]] = set()
    first = 0
    for iteration in range(iterations):
        proc = _spawn(WRITER, str(db), synchronous, str(first))
        try:
            _expect(proc, "ready")
            threading.Event().wait(rng.uniform(0.0, 0.05))
        finally:
            out, err = _kill(proc)
        assert proc.returncode == -signal.SIGKILL, (seed, err)
        created: set[str] = set()
        for line in out.splitlines():
            kind, *rest = line.split()
            if kind == "C":
                created.add(rest[0])
            elif kind == "S":
                started.add((rest[0], rest[1]))
            elif kind == "F":
                confirmed.setdefault(rest[0], set()).add(rest[1])
                first = max(first, int(rest[2]) + 1)
        first = (first // 20 + 1) * 20  # the next child starts a fresh run

        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], (seed,
                                                                                    iteration)
            counts = dict(conn.execute("SELECT run_id, count(*) FROM nodes GROUP BY run_id"))
            runs = {r for (r,) in conn.execute("SELECT run_id FROM runs")}
        finally:
            conn.close()
        assert created <= runs, (seed, iteration)
        assert all(counts.get(run) == 20 for run in runs), (seed, counts)  # creates are atomic
    with SQLiteCheckpointStore(db) as store:
        for run, nodes in confirmed.items():
            states = store.nodes(run)
            for node in nodes:
                assert states[node].status == "succeeded", (seed, run, node)
                assert states[node].output["pad"] == "x" * 200
        for run, node in started:
            assert store.nodes(run)[node].status in ("running", "succeeded"), (seed, run, node)
    assert sum(len(nodes) for nodes in confirmed.values()) > 0


# --------------------------------------------------- another process holds the DB


HOLDER = """
import sqlite3
db, seconds = sys.argv[1], float(sys.argv[2])
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO runs (run_id, workflow_id, version, definition_hash, input, status, "
             "created_at, updated_at) VALUES ('from-holder', 'wf', 1, 'h', '{}', 'running', 1, 1)")
say("locked")
time.sleep(seconds)
conn.execute("COMMIT")
say("released")
"""


def test_attack_db_locked_two_seconds_writes_wait_and_lose_nothing(db: Path,
                                                                   clock: Clock) -> None:
    store = SQLiteCheckpointStore(db, busy_timeout=30, clock=clock)
    store.create_run(_record(), ["a", "b"])
    holder = _spawn(HOLDER, str(db), "2")
    try:
        _expect(holder, "locked")
        assert store.node_started("r1", "a", 1)  # waits for the holder's commit
        assert holder.stdout.readline().strip() == "released"  # type: ignore[union-attr]
        assert store.node_finished("r1", "a", 1, "succeeded", output={"ok": True})
        store.create_run(_record("r2"), ["x"])
        holder.wait(timeout=60)  # it exits by itself after releasing; only then is 0 certain
    finally:
        _kill(holder)
    assert holder.returncode == 0
    fresh = SQLiteCheckpointStore(db)
    assert fresh.nodes("r1")["a"] == NodeState("succeeded", 1, {"ok": True}, None, T0, T0)
    assert {r.run_id for r in fresh.list_runs()} == {"r1", "r2", "from-holder"}


def test_attack_db_locked_longer_than_busy_timeout_is_one_line_and_nothing_half_applied(
    db: Path,
) -> None:
    store = SQLiteCheckpointStore(db, busy_timeout=0.2)
    store.create_run(_record(), ["a"])
    holder = _spawn(HOLDER, str(db), "600")
    try:
        _expect(holder, "locked")
        with pytest.raises(CheckpointStoreError) as info:
            store.node_started("r1", "a", 1)
        text = _one_line(info.value)
        assert "locked by another process" in text and str(db) in text
        assert info.value.category == "unavailable"
        assert store.nodes("r1")["a"] == NodeState()  # readers still read (WAL)
    finally:
        _kill(holder)
    assert store.node_started("r1", "a", 1)  # the holder died: its transaction rolled back
    assert store.get_run("from-holder") is None


CONCURRENT_WRITER = """
db, run = sys.argv[1], sys.argv[2]
store = SQLiteCheckpointStore(db)
nodes = [f"n{i}" for i in range(200)]
store.create_run(RunRecord(run, "wf", 1, "h", None), nodes)
ok = sum(store.node_started(run, n, 1) and store.node_finished(run, n, 1, "succeeded", output=n)
         for n in nodes)
say(ok)
"""


def test_two_processes_writing_at_once_lose_nothing(db: Path) -> None:
    SQLiteCheckpointStore(db).get_run("x")  # create the file first
    procs = [_spawn(CONCURRENT_WRITER, str(db), f"run-{n}") for n in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out.strip()) == (0, "200"), err
    store = SQLiteCheckpointStore(db)
    for n in range(2):
        assert all(s.status == "succeeded" for s in store.nodes(f"run-{n}").values())
        assert len(store.nodes(f"run-{n}")) == 200


# --------------------------------------------------------------------- prune


def test_prune_deletes_only_old_finished_runs_nodes_and_lock_files(
    store: SQLiteCheckpointStore, clock: Clock, db: Path
) -> None:
    for run_id, status in (("old-ok", "succeeded"), ("old-failed", "failed"),
                           ("old-cancelled", "cancelled"), ("old-dead", "dead"),
                           ("old-running", "running")):
        store.create_run(_record(run_id), ["a"])
        store.set_run(run_id, status=status)
    # a lock file left by a killed executor of a finished run
    locks = db.parent / "workflow-locks"
    locks.mkdir(mode=0o700)
    stray = store._locks.path("old-ok")
    stray.write_text("12345\n")
    clock.now = T0 + 100
    store.create_run(_record("new-ok"), ["a"])
    store.set_run("new-ok", status="succeeded")
    with store.executor("old-failed"):  # a held lock file is never removed
        assert store.prune(T0 + 50) == 4
        assert store.executor_alive("old-failed")
    assert {r.run_id for r in store.list_runs()} == {"old-running", "new-ok"}
    assert store.nodes("old-ok") == {}
    assert not stray.exists()
    assert list(locks.iterdir()) == []
    assert store.prune(T0 + 50) == 0
    rows = sqlite3.connect(db).execute("SELECT DISTINCT run_id FROM nodes").fetchall()
    assert sorted(rows) == [("new-ok",), ("old-running",)]


@pytest.mark.parametrize("bad", ["yesterday", float("nan"), None, True])
def test_attack_bad_prune_cutoff(store: SQLiteCheckpointStore, bad: Any) -> None:
    store.create_run(_record(status="succeeded"), ["a"])
    with pytest.raises(CheckpointStoreError) as info:
        store.prune(bad)
    _one_line(info.value)
    assert len(store.list_runs()) == 1


# ---------------------------------------------------------- files and schema


def test_files_are_private(store: SQLiteCheckpointStore, db: Path) -> None:
    store.create_run(_record(), ["a"])
    with store.executor("r1"):
        lock = next((db.parent / "workflow-locks").iterdir())
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for name in (db.name, db.name + "-wal", db.name + "-shm"):
        assert stat.S_IMODE((db.parent / name).stat().st_mode) == 0o600, name


def test_attack_state_dir_writable_by_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(ConfigError):
        SQLiteCheckpointStore(shared / DEFAULT_CHECKPOINTS).get_run("r1")
    assert not (shared / DEFAULT_CHECKPOINTS).exists()


def test_attack_symlinked_db_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    target = tmp_path / "elsewhere.sqlite"
    (tmp_path / "state" / DEFAULT_CHECKPOINTS).symlink_to(target)
    with pytest.raises(CheckpointStoreError) as info:
        SQLiteCheckpointStore(tmp_path / "state" / DEFAULT_CHECKPOINTS).get_run("r1")
    assert "symbolic link" in _one_line(info.value)
    assert not target.exists()


def test_data_survives_reopening(db: Path, clock: Clock) -> None:
    with SQLiteCheckpointStore(db, clock=clock, synchronous="full") as store:
        store.create_run(_record(), ["a"])
        store.node_started("r1", "a", 1)
    with SQLiteCheckpointStore(db, clock=clock) as store:
        assert store.nodes("r1")["a"] == NodeState("running", 1, started_at=T0)
    version = sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 1


def test_attack_newer_schema_is_refused_untouched(db: Path) -> None:
    SQLiteCheckpointStore(db).create_run(_record(), ["a"])
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(CheckpointStoreError) as info:
        SQLiteCheckpointStore(db).get_run("r1")
    text = _one_line(info.value)
    assert "newer" in text and str(db) in text and "upgrade" in text
    assert info.value.category == "invalid"
    assert db.read_bytes() == before


@pytest.mark.parametrize("content", [b"not a database at all, just text\n" * 100,
                                     b"SQLite format 3\x00" + b"\xff" * 4080])
def test_attack_corrupt_file_is_refused_in_one_line(db: Path, content: bytes) -> None:
    db.parent.mkdir(mode=0o700)
    db.write_bytes(content)
    with pytest.raises(CheckpointStoreError) as info:
        SQLiteCheckpointStore(db).create_run(_record(), ["a"])
    text = _one_line(info.value)
    assert str(db) in text and "move it aside" in text
    assert info.value.category == "invalid"
    assert db.read_bytes() == content


def test_schema_migrates_forward_keeping_data(db: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    SQLiteCheckpointStore(db).create_run(_record(), ["a"])

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT DEFAULT 'v2'")

    monkeypatch.setattr(_sqlitestore, "_MIGRATIONS", (*_sqlitestore._MIGRATIONS, add_column))
    store = SQLiteCheckpointStore(db)
    assert store.get_run("r1") == SQLiteCheckpointStore(db).get_run("r1")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT note FROM runs").fetchone()[0] == "v2"


@pytest.mark.parametrize(
    "kwargs",
    [{"synchronous": "OFF"}, {"synchronous": "EXTRA"}, {"synchronous": 1},
     {"busy_timeout": -1}, {"busy_timeout": "soon"}, {"busy_timeout": float("inf")},
     {"clock": 5}, {"lock_dir": ""}, {"lock_dir": 3}, {"path": ""}, {"path": None}],
)
def test_attack_bad_constructor_arguments_are_config_errors(tmp_path: Path,
                                                            kwargs: dict[str, Any]) -> None:
    path = kwargs.pop("path", tmp_path / DEFAULT_CHECKPOINTS)
    with pytest.raises(ConfigError) as info:
        SQLiteCheckpointStore(path, **kwargs)
    _one_line(info.value)
    assert list(tmp_path.iterdir()) == []


def test_closed_store_refuses_use(db: Path) -> None:
    store = SQLiteCheckpointStore(db)
    store.create_run(_record(), ["a"])
    store.close()
    with pytest.raises(CheckpointStoreError) as info:
        store.get_run("r1")
    assert "closed" in _one_line(info.value)


def test_lock_dir_can_be_elsewhere(tmp_path: Path, db: Path) -> None:
    store = SQLiteCheckpointStore(db, lock_dir=tmp_path / "locks")
    with store.executor("r1"):
        assert len(list((tmp_path / "locks").iterdir())) == 1
    assert not (db.parent / "workflow-locks").exists()
