"""``workflow.audit`` (jsonl): hash-chained records, tamper detection, concurrent appends."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.actions import ActionInputError
from oneiric.actions._kits.audit import (
    AuditLogError,
    AuditSettings,
    JsonlAudit,
    record_hash,
    verify_chain,
)
from oneiric.actions._spec import ActionContext
from oneiric.core._redact import reset_registry

pytestmark = pytest.mark.anyio

M = "**********"


def ctx(key: str = "idem-1", **extra: Any) -> ActionContext:
    return ActionContext("workflow.audit", "jsonl", 1, float("inf"), key, **extra)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    yield
    reset_registry()


@pytest.fixture
def audit(tmp_path: Path) -> JsonlAudit:
    return JsonlAudit(AuditSettings(path=str(tmp_path / "logs" / "audit.jsonl")))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def fill(audit: JsonlAudit, count: int = 5) -> list[dict[str, Any]]:
    return [audit.invoke({"event": f"e{i}", "actor": "ada", "data": {"i": i}}, ctx(f"k{i}"))
            for i in range(count)]


def test_records_are_chained_and_the_result_names_the_record(audit: JsonlAudit) -> None:
    results = fill(audit, 3)
    records = lines(audit.path)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] is None
    assert records[1]["prev"] == records[0]["hash"] and records[2]["prev"] == records[1]["hash"]
    for result, record in zip(results, records, strict=True):
        assert result == {"id": record["id"], "at": record["at"], "hash": record["hash"]}
        assert record_hash(record) == record["hash"]
        assert record["at"].endswith("Z")
    assert verify_chain(audit.path).ok
    assert verify_chain(audit.path).records == 3
    assert verify_chain(audit.path).last_hash == records[-1]["hash"]


def test_record_carries_the_context_and_redacted_data(audit: JsonlAudit) -> None:
    audit.invoke(
        {"event": "login with Bearer abc.def", "actor": "ada",
         "data": {"password": "pw", "ip": "10.0.0.1", "blob": b"\x00"}},
        ctx("idem-42", run_id="r1", node_id="n1", tenant="t1"),
    )
    (record,) = lines(audit.path)
    assert record["idempotency_key"] == "idem-42"
    assert (record["run_id"], record["node_id"], record["tenant"]) == ("r1", "n1", "t1")
    assert record["key"] == "workflow.audit"
    assert record["event"] == f"login with Bearer {M}"
    assert record["data"] == {"password": M, "ip": "10.0.0.1", "blob": {"base64": "AA=="}}
    assert "pw" not in audit.path.read_text().replace("password", "")


async def test_settings_secret_never_reaches_the_file(
    make_actions: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PW", "db-pass-9876")
    target = tmp_path / "a" / "audit.jsonl"
    actions = await make_actions(
        '[action.provider_settings."data.sanitize".builtin]\n'
        'salt = "${secret:db_pw}"\n'
        '[action.provider_settings."workflow.audit".jsonl]\n'
        f'path = "{target}"\n'
    )
    result = await actions.invoke(
        "workflow.audit", {"event": "connect", "data": {"dsn": "pg://u:db-pass-9876@h"}},
        idempotency_key="call-7",
    )
    assert result.provider == "jsonl" and set(result.value) == {"id", "at", "hash"}
    text = target.read_text()
    assert "db-pass-9876" not in text
    assert lines(target)[0]["idempotency_key"] == "call-7"
    assert actions.spec("workflow.audit").retry_safe is False


def test_default_path_is_in_the_state_dir(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    audit = JsonlAudit()
    assert audit.path == tmp_path / "state" / "audit.jsonl"
    audit.invoke({"event": "x"}, ctx())
    assert verify_chain(audit.path).records == 1


def test_file_is_created_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        audit = JsonlAudit(AuditSettings(path=str(tmp_path / "audit.jsonl")))
        audit.invoke({"event": "x"}, ctx())
    finally:
        os.umask(old)
    assert stat.S_IMODE(audit.path.stat().st_mode) == 0o600


# ----------------------------------------------------------------- tampering


def _edit(index: int) -> Callable[[list[str]], list[str]]:
    def edit(rows: list[str]) -> list[str]:
        rows[index] = rows[index].replace('"i":2', '"i":99')
        return rows
    return edit


def _edit_and_rehash(rows: list[str]) -> list[str]:
    record = json.loads(rows[2])
    record["data"] = {"i": 99}
    record["hash"] = record_hash(record)
    rows[2] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return rows


TAMPERING: dict[str, tuple[Callable[[list[str]], list[str]], int, str]] = {
    "edit": (_edit(2), 3, "edited"),
    "edit_and_rehash": (_edit_and_rehash, 4, "prev does not match"),
    "delete": (lambda rows: rows[:2] + rows[3:], 3, "prev does not match"),
    "swap": (lambda rows: [rows[0], rows[2], rows[1], *rows[3:]], 2, "prev does not match"),
    "insert_garbage": (lambda rows: [*rows[:1], "{not json", *rows[1:]], 2, "not a JSON"),
    "insert_copy": (lambda rows: [rows[0], *rows], 2, "prev does not match"),
    "delete_first": (lambda rows: rows[1:], 1, "prev does not match"),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_attack_tampering_is_reported_at_the_first_broken_line(
    audit: JsonlAudit, name: str
) -> None:
    tamper, line, reason = TAMPERING[name]
    fill(audit)
    rows = audit.path.read_text().splitlines()
    audit.path.write_text("\n".join(tamper(rows)) + "\n")
    report = verify_chain(audit.path)
    assert not report.ok
    assert report.line == line
    assert report.reason is not None and reason in report.reason


def test_attack_torn_last_record_is_reported_and_blocks_appending(audit: JsonlAudit) -> None:
    fill(audit, 3)
    data = audit.path.read_bytes()
    audit.path.write_bytes(data[:-10])
    report = verify_chain(audit.path)
    assert (report.ok, report.line, report.records) == (False, 3, 2)
    with pytest.raises(AuditLogError) as info:
        audit.invoke({"event": "after"}, ctx())
    assert "incomplete" in str(info.value) and "\n" not in str(info.value)
    assert audit.path.read_bytes() == data[:-10]  # nothing appended


def test_attack_symlink_planted_at_the_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(victim)
    with pytest.raises(AuditLogError):
        JsonlAudit(AuditSettings(path=str(link))).invoke({"event": "x"}, ctx())
    assert victim.read_text() == ""


def test_missing_file_is_an_empty_intact_chain(tmp_path: Path) -> None:
    assert verify_chain(tmp_path / "none.jsonl").ok


# ---------------------------------------------------------------- concurrency


def test_attack_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        from oneiric.actions._kits.audit import AuditSettings, JsonlAudit
        from oneiric.actions._spec import ActionContext
        audit = JsonlAudit(AuditSettings(path={str(target)!r}))
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        for i in range(50):
            key = f"{{sys.argv[1]}}-{{i}}"
            ctx = ActionContext("workflow.audit", "jsonl", 1, float("inf"), key)
            audit.invoke({{"event": "e", "actor": sys.argv[1], "data": {{"i": i}}}}, ctx)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, name]) for name in ("p1", "p2")]
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    report = verify_chain(target)
    assert report.ok, report
    assert report.records == 100
    records = lines(target)
    assert len({r["id"] for r in records}) == 100
    for actor in ("p1", "p2"):
        mine = [r["data"]["i"] for r in records if r["actor"] == actor]
        assert mine == list(range(50))  # each writer's records in its order, none lost


def test_threads_appending_at_once_keep_one_chain(audit: JsonlAudit) -> None:
    import threading

    def work(n: int) -> None:
        for i in range(20):
            audit.invoke({"event": f"t{n}", "data": {"i": i}}, ctx(f"{n}-{i}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verify_chain(audit.path).records == 80


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ([], "<payload>"),
        ({}, "event"),
        ({"event": 3}, "event"),
        ({"event": ""}, "event"),
        ({"event": "x" * 300}, "event"),
        ({"event": "x", "actor": 5}, "actor"),
        ({"event": "x", "when": 1}, "when"),
        ({"event": "x", "data": {"t": object()}}, "data.t"),
        ({"event": "x", "data": {"f": float("nan")}}, "data.f"),
    ],
)
def test_attack_bad_payload_is_input_error_and_nothing_is_written(
    audit: JsonlAudit, payload: Any, path: str
) -> None:
    with pytest.raises(ActionInputError) as info:
        audit.invoke(payload, ctx())
    assert info.value.path == path
    assert not audit.path.exists()


def test_attack_deep_data_is_refused_not_recursion_error(audit: JsonlAudit) -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = {"a": deep}
    with pytest.raises(ActionInputError) as info:
        audit.invoke({"event": "x", "data": deep}, ctx())
    assert info.value.path == "data"
    assert not audit.path.exists()
