"""``oneiric schedule list|next|trigger`` and the ``task.schedule`` kit, in real processes.

Settings come from ``ONEIRIC_CONFIG`` (a real oneiric.toml), the test action
(``test.touch``, appending its payload and idempotency key to a file) from
``--app``; every command is a new process on the same state dir.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from oneiric.core.helpers import parse_timestamp

APP = '''
import json, os
from oneiric.actions import ActionSpec
from oneiric.core import Candidate


class Touch:
    spec = ActionSpec(side_effects=True, idempotent=False)

    def invoke(self, payload, context):
        if os.environ.get("ONEIRIC_TEST_FAIL"):
            raise RuntimeError("disk full")
        with open(os.environ["ONEIRIC_TEST_OUT"], "a") as out:
            out.write(json.dumps([payload, context.idempotency_key]) + "\\n")
        return {"written": True}


def register(resolver):
    resolver.register(Candidate("action", "test.touch", "test", Touch))
'''

TOML = '''
[schedules.nightly]
cron = "30 2 * * *"
timezone = "America/New_York"
run = "action:test.touch"
payload = { at = "${schedule.fire_time}", manual = "${schedule.manual}" }

[schedules.hourly]
every = "1h"
run = "event:reports.due"
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cli_schedule_app.py").write_text(APP)
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(TOML)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    environ["ONEIRIC_CONFIG"] = str(config)
    environ["ONEIRIC_TEST_OUT"] = str(tmp_path / "out.jsonl")
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return environ


def oneiric(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", "--app", "cli_schedule_app:register", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_shows_every_schedule_with_its_next_fire(env: dict[str, str]) -> None:
    rows = {r["id"]: r for r in as_json(oneiric(env, "schedule", "list", "--json"))["schedules"]}
    assert set(rows) == {"nightly", "hourly"}
    assert rows["nightly"]["cron"] == "30 2 * * *"
    assert rows["nightly"]["timezone"] == "America/New_York"
    assert rows["hourly"]["every"] == 3600.0 and rows["hourly"]["timezone"] is None
    assert rows["hourly"]["run"] == "event:reports.due"
    assert rows["nightly"]["paused"] is False and rows["nightly"]["fires"] == 0
    assert parse_timestamp(rows["hourly"]["next"]).minute == 0
    text = oneiric(env, "schedule", "list")
    assert text.returncode == 0 and "nightly: cron '30 2 * * *' America/New_York" in text.stdout


def test_next_lists_count_fire_times_in_the_zone(env: dict[str, str]) -> None:
    data = as_json(oneiric(env, "schedule", "next", "nightly", "--count", "4", "--json"))
    times = [parse_timestamp(t) for t in data["next"]]
    assert len(times) == 4 and times == sorted(times)
    for moment in times:
        local = moment.astimezone(ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) in {(2, 30), (3, 0)}  # 03:00 only on a DST gap day
    hourly = as_json(oneiric(env, "schedule", "next", "hourly", "--count", "3", "--json"))
    stamps = [parse_timestamp(t).timestamp() for t in hourly["next"]]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [3600.0, 3600.0]
    assert all(s % 3600 == 0 for s in stamps)
    text = oneiric(env, "schedule", "next", "nightly", "--count", "1")
    assert text.returncode == 0 and "America/New_York" in text.stdout


def test_trigger_fires_once_here_with_a_manual_dedupe_id(env: dict[str, str]) -> None:
    before = datetime.now(UTC)
    result = as_json(oneiric(env, "schedule", "trigger", "nightly", "--json"))
    assert result["status"] == "ok" and result["result"] == {"written": True}
    assert result["dedupe_id"].startswith("nightly:manual:")
    lines = Path(env["ONEIRIC_TEST_OUT"]).read_text().splitlines()
    assert len(lines) == 1
    payload, key = json.loads(lines[0])
    assert key == result["dedupe_id"] and payload["manual"] is True
    assert parse_timestamp(payload["at"]) >= before.replace(microsecond=0)
    listed = as_json(oneiric(env, "schedule", "list", "--json"))["schedules"]
    nightly = next(r for r in listed if r["id"] == "nightly")
    assert nightly["last_status"] == "ok" and nightly["fires"] == 0  # manual: not a scheduled fire


def test_trigger_of_a_failing_target_exits_1_with_the_error(env: dict[str, str]) -> None:
    result = oneiric({**env, "ONEIRIC_TEST_FAIL": "1"}, "schedule", "trigger", "nightly")
    assert result.returncode == 1
    assert "failed" in result.stdout and "disk full" in result.stdout


def test_attack_unknown_schedule_exits_3_in_one_line(env: dict[str, str]) -> None:
    for args in (("trigger", "nope"), ("next", "nope")):
        result = oneiric(env, "schedule", *args)
        assert result.returncode == 3, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "no schedule 'nope'" in lines[0]


def test_attack_trigger_of_a_paused_schedule_is_refused(env: dict[str, str]) -> None:
    # --force: the pause command's resolver does not load [schedules] (see the notes)
    assert oneiric(env, "pause", "task", "nightly", "--force").returncode == 0
    result = oneiric(env, "schedule", "trigger", "nightly")
    assert result.returncode == 5, result.stderr  # ComponentPaused: unavailable
    assert "paused" in result.stderr
    assert not Path(env["ONEIRIC_TEST_OUT"]).exists()
    listed = as_json(oneiric(env, "schedule", "list", "--json"))["schedules"]
    assert next(r for r in listed if r["id"] == "nightly")["paused"] is True


def test_attack_invalid_schedule_settings_exit_4_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "settings" / "oneiric.toml").write_text(
        TOML + '\n[schedules.bad]\nevery = "1m"\nrun = "action:test.touch"\njitter = "x"\n'
    )
    result = oneiric(env, "schedule", "list")
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "schedules.bad.jitter" in lines[0]


def test_kit_next_and_trigger_through_action_invoke(env: dict[str, str]) -> None:
    data = as_json(oneiric(env, "action", "invoke", "task.schedule", "--payload",
                           '{"schedule": "hourly", "op": "next", "count": 2}', "--json"))
    value = data.get("value", data)
    assert value["schedule"] == "hourly" and len(value["next"]) == 2
    fired = as_json(oneiric(env, "action", "invoke", "task.schedule", "--payload",
                            '{"schedule": "nightly", "op": "trigger"}', "--json"))
    value = fired.get("value", fired)
    assert value["status"] == "ok" and value["dedupe_id"].startswith("nightly:manual:")
    bad = oneiric(env, "action", "invoke", "task.schedule", "--payload",
                  '{"schedule": "nightly", "op": "later"}')
    assert bad.returncode == 4 and "op must be 'trigger' or 'next'" in bad.stderr
