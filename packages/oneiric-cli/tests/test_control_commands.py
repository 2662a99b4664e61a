"""swap, pause, drain, resume, activity: what they write, and every refusal."""

from __future__ import annotations

import json
import re


def test_swap_writes_the_overlay_and_the_resolver_follows(oneiric, workspace):
    result = oneiric("swap", "notify", "mailer", "sendgrid", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert set(data) == {"domain", "key", "tenant", "provider", "previous", "overlay",
                         "validated", "health", "deferred", "cleared"}
    assert data["provider"] == "sendgrid" and data["previous"] is None
    assert data["validated"] is False and data["health"] is None
    overlay = json.loads((workspace.state / "selections.json").read_text())
    assert overlay["selections"] == {"notify": {"mailer": "sendgrid"}}

    listed = oneiric("list", "--json", "--domain", "notify").json()
    mailer = next(r for r in listed["keys"] if r["key"] == "mailer")
    assert mailer["provider"] == "sendgrid" and mailer["reason"] == "selected"

    again = oneiric("swap", "notify", "mailer", "smtp")
    assert again.code == 0, again.err
    assert "notify/mailer -> smtp (was sendgrid)" in again.out


def test_swap_clear_removes_the_overlay_selection(oneiric, workspace):
    assert oneiric("swap", "notify", "mailer", "sendgrid").code == 0
    before = oneiric("explain", "notify", "mailer", "--json").json()
    assert before["selected"] == "sendgrid"
    assert before["candidates"][0]["reason"] == "selected"

    result = oneiric("swap", "notify", "mailer", "--clear", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["cleared"] is True and data["provider"] is None
    assert data["previous"] == "sendgrid"
    overlay = json.loads((workspace.state / "selections.json").read_text())
    assert overlay["selections"].get("notify", {}).get("mailer") is None
    after = oneiric("explain", "notify", "mailer", "--json").json()
    assert after["candidates"][0]["reason"] != "selected"  # precedence decides again

    human = oneiric("swap", "notify", "mailer", "--clear")
    assert human.code == 0 and "overlay selection cleared" in human.out


def test_swap_clear_usage_errors_exit_2(oneiric, workspace):
    for args in (("sendgrid", "--clear"), (), ("--clear", "--validate")):
        result = oneiric("swap", "notify", "mailer", *args)
        assert result.code == 2, (args, result.err)
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1, result.err
    assert not (workspace.state / "selections.json").exists()


def test_swap_for_a_tenant(oneiric, workspace):
    result = oneiric("--json", "swap", "notify", "mailer", "sendgrid", "--tenant", "acme")
    assert result.code == 0, result.err
    overlay = json.loads((workspace.state / "selections.json").read_text())
    assert overlay["tenants"] == {"notify": {"acme": {"mailer": "sendgrid"}}}
    data = oneiric("explain", "notify", "mailer", "--tenant", "acme", "--json").json()
    assert data["selected"] == "sendgrid"


def test_swap_validate_activates_and_probes_here(oneiric, workspace):
    result = oneiric("swap", "notify", "mailer", "sendgrid", "--validate", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["validated"] is True and data["health"] == {"ok": True, "detail": ""}


def test_swap_validate_unhealthy_exit_5_and_writes_nothing(oneiric, workspace):
    result = oneiric("swap", "notify", "mailer", "broken", "--validate")
    assert result.code == 5
    assert "health" in result.error_line()
    assert not (workspace.state / "selections.json").exists()


def test_swap_unknown_provider_key_domain_exit_3(oneiric, workspace):
    result = oneiric("swap", "notify", "mailer", "postfix")
    assert result.code == 3
    line = result.error_line()
    assert "no provider 'postfix'" in line and "broken, retired, sendgrid, smtp" in line
    assert oneiric("swap", "notify", "fax", "smtp").code == 3
    assert oneiric("swap", "nosuch", "mailer", "smtp").code == 3
    assert not (workspace.state / "selections.json").exists()


def test_swap_to_a_vetoed_provider_is_refused_exit_6(oneiric, workspace):
    result = oneiric("swap", "notify", "mailer", "retired", "--json")
    assert result.code == 6
    assert "retired mailers are not allowed" in result.error_line()
    assert result.out == ""


def test_swap_on_a_paused_key_exit_5_unless_deferred(oneiric, workspace):
    assert oneiric("pause", "notify", "mailer", "--note", "maintenance").code == 0
    result = oneiric("swap", "notify", "mailer", "sendgrid")
    assert result.code == 5
    line = result.error_line()
    assert "paused" in line and "maintenance" in line and "oneiric resume notify mailer" in line
    deferred = oneiric("swap", "notify", "mailer", "sendgrid", "--defer", "--json")
    assert deferred.code == 0, deferred.err
    assert deferred.json()["deferred"] is True


def test_pause_drain_resume_and_activity(oneiric, workspace):
    paused = oneiric("pause", "notify", "mailer", "--note", "upgrade", "--json")
    assert paused.code == 0, paused.err
    record = paused.json()
    assert set(record) == {"domain", "key", "state", "note", "actor", "at", "state_dir"}
    assert record["state"] == "paused" and record["note"] == "upgrade"

    drained = oneiric("drain", "notify", "mailer")
    assert drained.code == 0, drained.err
    assert "notify/mailer draining" in drained.out

    activity = oneiric("activity", "--json").json()
    assert [r["state"] for r in activity["records"]] == ["draining"]
    assert [h["state"] for h in activity["history"]] == ["draining", "paused"]

    human = oneiric("activity")
    assert human.code == 0, human.err
    assert activity["records"][0]["at"] in human.out  # one format, tables and JSON alike


def test_json_timestamps_are_the_one_core_format(oneiric, workspace):
    """pause/drain/resume --json and activity --json: ``at`` in format_timestamp's shape."""
    from oneiric.core.helpers import parse_timestamp

    paused = oneiric("pause", "notify", "mailer", "--json")
    assert paused.code == 0, paused.err
    stamps = [paused.json()["at"]]
    activity = oneiric("activity", "--json").json()
    stamps += [r["at"] for r in activity["records"] + activity["history"]]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
        parse_timestamp(stamp)

    assert oneiric("resume", "notify", "mailer").code == 0
    activity = oneiric("activity", "--json").json()
    assert activity["records"][0]["state"] == "active"
    human = oneiric("activity")
    assert "notify/mailer" in human.out and "History" in human.out


def test_pause_unknown_key_exit_3_unless_forced(oneiric, workspace):
    result = oneiric("pause", "notify", "fax")
    assert result.code == 3
    assert "--force" in result.error_line()
    forced = oneiric("pause", "notify", "fax", "--force", "--json")
    assert forced.code == 0, forced.err
    assert forced.json()["state"] == "paused"


def test_activity_and_status_with_a_missing_state_dir_exit_3(oneiric, workspace):
    missing = str(workspace.root / "nope")
    for command in (["activity"], ["status"], ["health"]):
        result = oneiric("--state-dir", missing, *command, base=False)
        assert result.code == 3, (command, result.err)
        assert "does not exist" in result.error_line()


def test_activity_empty_state_dir(oneiric, workspace):
    result = oneiric("activity")
    assert result.code == 0, result.err
    assert "no pause/drain decisions" in result.out
    assert oneiric("activity", "--json").json()["records"] == []
