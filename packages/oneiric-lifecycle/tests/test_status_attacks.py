"""read_snapshots under foreign files: each is skipped (and reported), the healthy ones read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from oneiric.lifecycle import read_snapshots

FOREIGN: dict[str, Callable[[Path], object]] = {
    "invalid-json": lambda p: p.write_text('{"pid": 1, '),
    "binary": lambda p: p.write_bytes(bytes(range(256))),
    "list": lambda p: p.write_text("[]"),
    "pid-huge": lambda p: p.write_text('{"pid": 99999999999999999999}'),
    "pid-negative": lambda p: p.write_text('{"pid": -1}'),
    "keys-string": lambda p: p.write_text(json.dumps({"pid": os.getpid(), "keys": "x"})),
    "key-without-domain": lambda p: p.write_text(
        json.dumps({"pid": os.getpid(), "keys": [{"key": "k"}]})),
    "directory": lambda p: p.mkdir(),
    "fifo": lambda p: os.mkfifo(p),
    "nesting": lambda p: p.write_text('{"pid": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_attack_foreign_snapshot_file_is_skipped_and_reported(tmp_path: Path, kind: str) -> None:
    status = tmp_path / "status"
    status.mkdir()
    good = {"version": 1, "pid": os.getpid(), "keys": [{"domain": "d", "key": "k"}]}
    (status / f"{os.getpid()}.json").write_text(json.dumps(good))
    bad = status / "7.json"
    FOREIGN[kind](bad)
    skipped: list[dict[str, str]] = []

    docs = read_snapshots(tmp_path, skipped=skipped)

    assert [d["pid"] for d in docs] == [os.getpid()]
    assert len(skipped) == 1 and skipped[0]["path"] == str(bad)
    assert skipped[0]["error"] and "\n" not in skipped[0]["error"]
    assert read_snapshots(tmp_path) == docs  # without the list: skipped all the same
