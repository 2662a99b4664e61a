"""``CheckpointStore.advance``: successes and the starts they enable, one step, all or nothing.

The engine writes a node's success together with the starts of the nodes it
made ready (one commit per node).  Both stores must keep the conditions of
``node_finished``/``node_started`` for every item, and write nothing of a
step when any item is refused - a zombie executor can never half-apply one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.runtime import (
    CheckpointStoreError,
    MemoryCheckpointStore,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
)
from oneiric.runtime._checkpoint import CheckpointStore
from oneiric.runtime._runs import RunRecord

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.live)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    made: Any
    if request.param == "memory":
        made = MemoryCheckpointStore(clock=lambda: T0)
    elif request.param == "sqlite":
        made = SQLiteCheckpointStore(tmp_path / "wf.sqlite", clock=lambda: T0)
    else:
        server = request.getfixturevalue("private_redis")
        made = RedisCheckpointStore(server.url, clock=lambda: T0)
    made.create_run(RunRecord("r", "wf", 1, "h", None, "running", T0, T0), ["a", "b", "c"])
    yield made
    made.close()


def _states(store: CheckpointStore) -> dict[str, tuple[str, int, Any]]:
    return {n: (s.status, s.attempts, s.output) for n, s in store.nodes("r").items()}


def test_a_success_and_the_starts_it_enables_are_written_together(
    store: CheckpointStore,
) -> None:
    assert store.advance("r", started=[("a", 1)])
    assert store.advance("r", succeeded=[("a", 1, {"n": 1})], started=[("b", 1), ("c", 1)])
    assert _states(store) == {"a": ("succeeded", 1, {"n": 1}), "b": ("running", 1, None),
                              "c": ("running", 1, None)}
    assert store.nodes("r")["a"].finished_at == T0
    assert store.advance("r", succeeded=[("b", 1, None), ("c", 1, [1, "x"])])
    assert _states(store)["c"] == ("succeeded", 1, [1, "x"])
    assert store.advance("r")  # an empty step writes nothing and is not refused


def test_a_refused_success_writes_nothing_of_the_step(store: CheckpointStore) -> None:
    assert store.advance("r", started=[("a", 2)])
    before = _states(store)
    # attempt 1 of "a" is a zombie: attempt 2 is running
    assert not store.advance("r", succeeded=[("a", 1, "late")], started=[("b", 1)])
    assert _states(store) == before


def test_a_refused_start_writes_nothing_of_the_step(store: CheckpointStore) -> None:
    assert store.advance("r", started=[("a", 1), ("b", 3)])
    before = _states(store)
    # "b" already started attempt 3: starting attempt 2 is refused, and a's success with it
    assert not store.advance("r", succeeded=[("a", 1, "ok")], started=[("b", 2)])
    assert _states(store) == before


def test_a_succeeded_node_is_never_started_again(store: CheckpointStore) -> None:
    assert store.advance("r", started=[("a", 1)])
    assert store.advance("r", succeeded=[("a", 1, None)])
    assert not store.advance("r", started=[("a", 2)])
    assert _states(store)["a"] == ("succeeded", 1, None)


def test_sqlite_refuses_a_non_json_output_in_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "wf.sqlite", clock=lambda: T0) as store:
        store.create_run(RunRecord("r", "wf", 1, "h", None, "running", T0, T0), ["a", "b"])
        assert store.advance("r", started=[("a", 1)])
        with pytest.raises(CheckpointStoreError, match=r"output of node 'a'.* is not JSON") as info:
            store.advance("r", succeeded=[("a", 1, {1, 2})], started=[("b", 1)])
        assert info.value.category == "invalid" and "\n" not in str(info.value)
        assert store.nodes("r")["b"].status == "pending"
        with pytest.raises(CheckpointStoreError, match="attempt must be an integer"):
            store.advance("r", started=[("b", 0)])
