"""``oneiric event emit|route|handlers|dead-letters`` in real processes.

The handlers come in through ``--app`` (a real module on ``PYTHONPATH``) as
candidates of domain ``event`` with their subscription in ``metadata``; the
dead letters live in ``ONEIRIC_STATE_DIR``, so every command is a new
process reading the file the previous one wrote.  ``mailer`` fails until a
flag file exists (so a redrive can succeed later); ``ONEIRIC_TEST_UNREGISTER``
(comma-separated names) leaves handlers out (so a group loses its handlers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

APP = '''
import os
from oneiric.core import Candidate


class Audit:
    def handle(self, event, context):
        return None


class Mailer:
    """Fails until the flag file exists."""

    def handle(self, event, context):
        if not os.path.exists(os.environ["ONEIRIC_TEST_FLAG"]):
            raise RuntimeError("smtp down")


class Backup:
    async def handle(self, event, context):
        return None


def register(resolver):
    gone = set(os.environ.get("ONEIRIC_TEST_UNREGISTER", "").split(","))
    handlers = {
        "audit": (Audit, {"topics": ["orders.#"], "idempotent": True}),
        "billing": (Audit, {"topics": ["billing.*"]}),
        "mailer": (Mailer, {"topics": ["orders.created"], "group": "mail", "priority": 10,
                            "filter": {"region": {"equals": "us"}}}),
        "mailer_backup": (Backup, {"topics": ["orders.created"], "group": "mail",
                                   "filter": {"region": {"equals": "us"}}}),
    }
    if os.environ.get("ONEIRIC_TEST_BAD"):
        handlers["broken"] = (Audit, {"topics": ["orders..x"]})
        handlers["greedy"] = (Audit, {"topics": ["orders.#"], "max_concurrency": 0})
    for name, (factory, metadata) in handlers.items():
        if name not in gone:
            resolver.register(Candidate("event", name, "test", factory, metadata=metadata))
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cli_events_app.py").write_text(APP)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    environ["ONEIRIC_TEST_FLAG"] = str(tmp_path / "mailer-works")
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return environ


def oneiric(env: dict[str, str], *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", "--app", "cli_events_app:register", *args],
        env=env, capture_output=True, text=True, timeout=120, input=stdin,
    )


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _fail_once(env: dict[str, str]) -> dict[str, Any]:
    """Emit orders.created for region us while the mailer is down: one dead letter."""
    proc = oneiric(env, "event", "emit", "orders.created", "--payload", '{"region": "us"}',
                   "--json")
    assert proc.returncode == 1, proc.stderr
    report: dict[str, Any] = _json(proc)
    return report


# ----------------------------------------------------------------- handlers


def test_handlers_text_lists_every_handler_with_provider_and_subscription(
    env: dict[str, str],
) -> None:
    proc = oneiric(env, "event", "handlers")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(lines) == {"audit", "billing", "mailer", "mailer_backup"}
    assert lines["mailer"].startswith("mailer (test) topics=orders.created group=mail priority=10")
    assert "[idempotent]" in lines["audit"]


@pytest.mark.parametrize("flag", [("event", "handlers", "--json"),
                                  ("--json", "event", "handlers")])
def test_handlers_json_local_and_global_flag(env: dict[str, str],
                                             flag: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oneiric.cli", "--app", "cli_events_app:register", *flag],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = _json(proc)
    rows = {h["name"]: h for h in data["handlers"]}
    assert data["errors"] == {}
    assert rows["mailer"]["provider"] == "test"
    assert rows["mailer"]["group"] == "mail"
    assert rows["mailer"]["filter"] == {"region": {"equals": "us"}}
    assert rows["audit"]["group"] == "audit" and rows["audit"]["idempotent"] is True


@pytest.mark.parametrize("as_json", [False, True])
def test_attack_invalid_subscriptions_are_listed_not_routed(env: dict[str, str],
                                                            as_json: bool) -> None:
    bad = {**env, "ONEIRIC_TEST_BAD": "1"}
    proc = oneiric(bad, "event", "handlers", *(["--json"] if as_json else []))
    assert proc.returncode == 0, proc.stderr
    if as_json:
        data = _json(proc)
        assert {h["name"] for h in data["handlers"]} == {"audit", "billing", "mailer",
                                                         "mailer_backup"}
        assert set(data["errors"]) == {"broken", "greedy"}
        assert "'orders..x' is not a topic pattern" in data["errors"]["broken"]
        assert "max_concurrency must be an integer >= 1" in data["errors"]["greedy"]
    else:
        errors = sorted(proc.stderr.splitlines())
        assert [e.split(":")[0] for e in errors] == ["broken", "greedy"]
        assert all(": not routed: " in e for e in errors)
    # the valid handlers still route and run; the invalid ones never do
    emit = oneiric(bad, "event", "emit", "orders.shipped", "--json")
    assert emit.returncode == 0, emit.stderr
    assert [o["handler"] for o in _json(emit)["outcomes"]] == ["audit"]


# -------------------------------------------------------------------- route


def test_route_text_shows_the_reason_for_every_handler(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "route", "orders.created", "--payload", '{"region": "us"}')
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[1]: line for line in proc.stdout.splitlines()}
    assert lines["audit"].startswith("runs")
    assert lines["mailer"].startswith("runs") and "first of 2 in group 'mail'" in lines["mailer"]
    assert lines["mailer_backup"].startswith("skip")
    assert "lower priority 0 < 10 in group 'mail'" in lines["mailer_backup"]
    assert "topic mismatch: subscribes to billing.*" in lines["billing"]


def test_route_json_filter_reason_and_runs_nothing(env: dict[str, str], tmp_path: Path) -> None:
    proc = oneiric(env, "event", "route", "orders.created", "--payload", '{"region": "eu"}',
                   "--json")
    assert proc.returncode == 0, proc.stderr
    plan = _json(proc)
    assert plan["topic"] == "orders.created" and plan["runs"] == ["audit"]
    reasons = {d["handler"]: d["reason"] for d in plan["decisions"]}
    assert reasons["mailer"] == "filter region: 'eu' is not 'us'"
    assert reasons["mailer_backup"] == "filter region: 'eu' is not 'us'"
    # nothing ran: the mailer (which is down) left no dead letter
    listing = oneiric(env, "event", "dead-letters", "--json")
    assert listing.returncode == 0, listing.stderr
    assert _json(listing) == []


# --------------------------------------------------------------------- emit


def test_emit_all_ok_exits_zero_with_one_line_per_handler(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    proc = oneiric(env, "event", "emit", "orders.created", "--payload", '{"region": "us"}',
                   "--id", "evt-1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "event evt-1"
    assert sorted(line.strip() for line in lines[1:]) == [
        "audit: audit (test) ok", "mail: mailer (test) ok"]


def test_emit_json_report_when_all_ok(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "emit", "orders.shipped", "--payload", "{}", "--json")
    assert proc.returncode == 0, proc.stderr
    report = _json(proc)
    assert report["ok"] is True
    assert [(o["handler"], o["status"], o["attempts"]) for o in report["outcomes"]] == [
        ("audit", "ok", 1)]


def test_emit_no_subscriber_is_ok_and_says_so(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "emit", "nobody.listens")
    assert proc.returncode == 0, proc.stderr
    assert "no handler subscribes to this topic" in proc.stdout


def test_emit_a_failing_handler_exits_one_with_the_outcome_lines(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "emit", "orders.created", "--payload", '{"region": "us"}')
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    outcomes = sorted(line.strip() for line in proc.stdout.splitlines()[1:])
    assert outcomes == ["audit: audit (test) ok",
                        "mail: mailer (test) dead_lettered: RuntimeError: smtp down"]


def test_emit_json_failing_handler(env: dict[str, str]) -> None:
    report = _fail_once(env)
    assert report["ok"] is False
    status = {o["handler"]: (o["status"], o["error"]) for o in report["outcomes"]}
    assert status == {"audit": ("ok", None),
                      "mailer": ("dead_lettered", "RuntimeError: smtp down")}


@pytest.mark.parametrize(("args", "wanted"), [
    (("a..b",), "is not a topic"),
    (("",), "is not a topic"),
    (("orders.*",), "has a wildcard"),
    (("orders.#",), "has a wildcard"),
    (("Orders.Created",), "is not a topic"),
    (("orders.created", "--payload", "[1, 2]"), "must be a JSON object for an event, got list"),
    (("orders.created", "--payload", '"text"'), "must be a JSON object for an event, got str"),
    (("orders.created", "--payload", "null"), "must be a JSON object for an event, got NoneType"),
    (("orders.created", "--payload", "{"), "--payload is not valid JSON"),
    (("orders.created", "--payload", "@missing.json"), "cannot read 'missing.json'"),
])
@pytest.mark.parametrize("command", ["emit", "route"])
def test_attack_bad_event_input_exits_4_with_one_line(
    env: dict[str, str], args: tuple[str, ...], wanted: str, command: str
) -> None:
    proc = oneiric(env, "event", command, *args)
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    assert wanted in _one_line_error(proc)
    assert proc.stdout == ""


def test_emit_reads_the_payload_from_stdin(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "route", "orders.created", "--payload", "@-", "--json",
                   stdin='{"region": "eu"}')
    assert proc.returncode == 0, proc.stderr
    assert _json(proc)["runs"] == ["audit"]


# ------------------------------------------------------------- dead letters


def test_dead_letters_empty(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "dead-letters")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no dead letters"


def test_dead_letters_listing_persists_across_processes(env: dict[str, str]) -> None:
    report = _fail_once(env)
    proc = oneiric(env, "event", "dead-letters")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith("dl-1  ")
    assert "orders.created  mailer [mail] x1  RuntimeError: smtp down" in line
    rows = _json(oneiric(env, "event", "dead-letters", "--json"))
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["handler"], row["group"], row["attempts"]) == ("dl-1", "mailer",
                                                                          "mail", 1)
    assert (row["error_type"], row["error"]) == ("RuntimeError", "smtp down")
    assert row["event"]["id"] == report["event_id"]
    assert row["event"]["payload"] == {"region": "us"}


def test_redrive_one_id_after_the_handler_recovers(env: dict[str, str]) -> None:
    report = _fail_once(env)
    still = oneiric(env, "event", "dead-letters", "--redrive", "dl-1")
    assert still.returncode == 1, still.stderr
    assert "mailer (test) dead_lettered" in still.stdout
    assert f"{report['event_id']}: dead letter dl-1 stays" in still.stdout
    rows = _json(oneiric(env, "event", "dead-letters", "--json"))
    assert [(r["id"], r["attempts"]) for r in rows] == [("dl-1", 2)]  # updated in place

    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    proc = oneiric(env, "event", "dead-letters", "--redrive", "dl-1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{report['event_id']}: mail: mailer (test) ok"]
    assert _json(oneiric(env, "event", "dead-letters", "--json")) == []


def test_redrive_all_json_after_the_handler_recovers(env: dict[str, str]) -> None:
    first = _fail_once(env)
    second = _fail_once(env)
    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    proc = oneiric(env, "event", "dead-letters", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    data = _json(proc)
    redriven = data["redriven"]
    # same event ids, each to the dead letter's group only (audit does not run again)
    assert [r["event_id"] for r in redriven] == [first["event_id"], second["event_id"]]
    for r in redriven:
        assert r["ok"] is True
        assert [(o["handler"], o["status"]) for o in r["outcomes"]] == [("mailer", "ok")]
    assert _json(oneiric(env, "event", "dead-letters", "--json")) == []


def test_redrive_all_with_nothing_dead_is_ok(env: dict[str, str]) -> None:
    proc = oneiric(env, "event", "dead-letters", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert _json(proc) == {"redriven": []}


@pytest.mark.parametrize("ids", [("dl-99",), ("dl-1", "dl-99"), ("nonsense",)])
def test_redrive_unknown_id_exits_3_and_runs_nothing(env: dict[str, str],
                                                     ids: tuple[str, ...]) -> None:
    _fail_once(env)
    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    args = [a for i in ids for a in ("--redrive", i)]
    proc = oneiric(env, "event", "dead-letters", *args)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "no dead letter" in _one_line_error(proc)
    # every id is checked before anything runs: dl-1 was not redriven
    assert [r["id"] for r in _json(oneiric(env, "event", "dead-letters", "--json"))] == ["dl-1"]


@pytest.mark.parametrize("as_json", [False, True])
def test_attack_redrive_to_a_group_with_no_handler_is_not_success(
    env: dict[str, str], as_json: bool
) -> None:
    """The dead letter's group lost its handlers: nothing ran, the record stays, exit 1."""
    _fail_once(env)
    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    gone = {**env, "ONEIRIC_TEST_UNREGISTER": "mailer,mailer_backup"}
    proc = oneiric(gone, "event", "dead-letters", "--redrive", "dl-1",
                   *(["--json"] if as_json else []))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    if as_json:
        (entry,) = _json(proc)["redriven"]
        assert entry["ok"] is False and entry["outcomes"] == []
        assert entry["dead_letter"] == "dl-1" and entry["kept"] is True
    else:
        assert "dl-1" in proc.stdout and "no handler of group 'mail'" in proc.stdout
    assert [r["id"] for r in _json(oneiric(env, "event", "dead-letters", "--json"))] == ["dl-1"]


def test_redrive_runs_the_next_handler_of_the_group_when_the_failed_one_is_gone(
    env: dict[str, str],
) -> None:
    """Redrive goes to the record's *group*: the backup of group mail takes the event."""
    report = _fail_once(env)
    gone = {**env, "ONEIRIC_TEST_UNREGISTER": "mailer"}
    proc = oneiric(gone, "event", "dead-letters", "--redrive", "dl-1", "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = _json(proc)["redriven"]
    assert entry["event_id"] == report["event_id"]
    assert [(o["handler"], o["status"]) for o in entry["outcomes"]] == [("mailer_backup", "ok")]
    assert _json(oneiric(env, "event", "dead-letters", "--json")) == []


def test_attack_redrive_and_all_together_is_a_usage_error(env: dict[str, str]) -> None:
    _fail_once(env)
    Path(env["ONEIRIC_TEST_FLAG"]).touch()
    proc = oneiric(env, "event", "dead-letters", "--redrive", "dl-1", "--all")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "--redrive" in proc.stderr and "--all" in proc.stderr
    assert [r["id"] for r in _json(oneiric(env, "event", "dead-letters", "--json"))] == ["dl-1"]
