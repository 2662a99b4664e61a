"""Settings-derived candidates ([automations], [schedules], workflows/) in the CLI's resolver.

``oneiric_settings_applied`` registers them wherever settings are applied, so
operators explain and pause them like any component - from another process,
without ``--force``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SETTINGS = """\
[automations.ship]
on = "orders.paid"
run = "action:debug.console"

[schedules.nightly]
cron = "0 3 * * *"
run = "action:debug.console"
"""

WORKFLOW = """\
id = "digest"

[[nodes]]
id = "hash"
action = "compression.hash"
input = { data = "${input.text}" }
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "settings"
    (config / "workflows").mkdir(parents=True)
    (config / "oneiric.toml").write_text(SETTINGS)
    (config / "workflows" / "digest.toml").write_text(WORKFLOW)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    environ["ONEIRIC_CONFIG"] = str(config)
    return environ


def oneiric(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("domain", "key"),
    [("event", "automation.ship"), ("task", "nightly"), ("workflow", "digest")],
)
def test_explain_sees_what_settings_define(env: dict[str, str], domain: str, key: str) -> None:
    proc = oneiric(env, "explain", domain, key, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["selected"] == "settings"


def test_an_operator_pauses_a_schedule_without_force(env: dict[str, str]) -> None:
    proc = oneiric(env, "pause", "task", "nightly", "--note", "maintenance")
    assert proc.returncode == 0, proc.stderr
    listed = oneiric(env, "activity", "--json")
    assert listed.returncode == 0, listed.stderr
    assert any(r["domain"] == "task" and r["key"] == "nightly" and r["state"] == "paused"
               for r in json.loads(listed.stdout)["records"])


def test_an_invalid_table_is_exit_4_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "settings" / "oneiric.toml").write_text(
        '[schedules.bad]\ncron = "0 3 * * *"\nrun = "shell:rm"\n')
    proc = oneiric(env, "explain", "task", "bad")
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "schedules.bad.run" in lines[0]
