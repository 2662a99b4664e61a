"""``oneiric action list|invoke`` in real processes: output, bytes, and the contract's exit codes.

The test actions come in through ``--app`` (a real module on ``PYTHONPATH``),
beside the package's real catalog discovered through its entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oneiric.actions._catalog import KITS

APP = '''
import asyncio
from pydantic import BaseModel
from oneiric.actions import ActionSpec
from oneiric.core import Candidate


class Point(BaseModel):
    x: int
    y: int


class Echo:
    spec = ActionSpec(description="echo the payload", idempotent=True, side_effects=False)

    def invoke(self, payload, context):
        return {"echo": payload}


class Reverse:
    spec = ActionSpec(side_effects=False)

    def invoke(self, payload, context):
        return {"data": payload["data"][::-1]}


class Typed:
    spec = ActionSpec(input_model=Point, side_effects=False)

    def invoke(self, payload, context):
        return {"sum": payload.x + payload.y}


class Boom:
    spec = ActionSpec()

    def invoke(self, payload, context):
        raise RuntimeError("disk full")


class Slow:
    spec = ActionSpec(timeout=30)

    async def invoke(self, payload, context):
        await asyncio.sleep(3600)


def register(resolver):
    for key, factory in {"t.echo": Echo, "t.reverse": Reverse, "t.typed": Typed,
                         "t.boom": Boom, "t.slow": Slow}.items():
        resolver.register(Candidate("action", key, "test", factory))
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cli_actions_app.py").write_text(APP)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return environ


def oneiric(env: dict[str, str], *args: str, stdin: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", "--app", "cli_actions_app:register", *args],
        env=env, capture_output=True, text=True, timeout=120, input=stdin, cwd=cwd,
    )


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_list_json_shows_every_kit_and_the_app_actions(env: dict[str, str]) -> None:
    proc = oneiric(env, "action", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["key"]: row for row in json.loads(proc.stdout)}
    assert set(KITS) <= set(rows)
    for key, providers in KITS.items():
        assert set(rows[key]["providers"]) == set(providers), key
    echo = rows["t.echo"]
    assert (echo["winner"], echo["providers"]) == ("test", ["test"])
    assert echo["spec"]["description"] == "echo the payload"
    assert echo["spec"]["idempotent"] is True


def test_list_text_names_winner_and_description(env: dict[str, str]) -> None:
    proc = oneiric(env, "action", "list")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("t.echo"))
    assert "test" in line and "echo the payload" in line and "[idempotent, no side effects]" in line


def test_invoke_prints_the_value_and_json_prints_the_result(env: dict[str, str]) -> None:
    proc = oneiric(env, "action", "invoke", "t.echo", "--payload", '{"a": [1, 2]}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"echo": {"a": [1, 2]}}
    proc = oneiric(env, "action", "invoke", "t.echo", "--payload", '"x"', "--json")
    result = json.loads(proc.stdout)
    assert (result["key"], result["provider"], result["attempts"]) == ("t.echo", "test", 1)
    assert result["value"] == {"echo": "x"}


def test_bytes_travel_as_base64_both_ways(env: dict[str, str]) -> None:
    payload = json.dumps({"data": {"base64": "AAEC"}})  # b"\x00\x01\x02"
    proc = oneiric(env, "action", "invoke", "t.reverse", "--payload", payload)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"data": {"base64": "AgEA"}}  # b"\x02\x01\x00"


def test_payload_from_a_file_and_from_stdin(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "payload.json").write_text('{"from": "file"}')
    proc = oneiric(env, "action", "invoke", "t.echo", "--payload", f"@{tmp_path / 'payload.json'}")
    assert json.loads(proc.stdout) == {"echo": {"from": "file"}}
    proc = oneiric(env, "action", "invoke", "t.echo", "--payload", "@-", stdin='{"from": "stdin"}')
    assert json.loads(proc.stdout) == {"echo": {"from": "stdin"}}


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["t.echo", "--payload", "{not json"], 4, "--payload is not valid JSON"),
        (["t.echo", "--payload", "@/nonexistent/payload.json"], 4, "cannot read"),
        (["t.echo", "--payload", '{"data": {"base64": "***"}}'], 4, "not valid base64"),
        (["t.typed", "--payload", '{"x": 1, "y": "two"}'], 4, "payload field y"),
        (["t.typed", "--payload", '{"x": 1}'], 4, "payload field y"),
        (["t.boom", "--payload", "{}"], 1, "raised after 1 attempt: RuntimeError: disk full"),
        (["t.slow", "--timeout", "0.05"], 5, "did not finish within 0.05s"),
        (["t.nosuch"], 3, "t.nosuch"),
    ],
)
def test_bad_invocations_exit_with_the_contract_code_and_one_line(
    env: dict[str, str], args: list[str], code: int, fragment: str
) -> None:
    proc = oneiric(env, "action", "invoke", *args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert fragment in _one_line_error(proc)


def test_a_paused_action_is_refused_with_exit_5(env: dict[str, str]) -> None:
    paused = oneiric(env, "pause", "action", "t.echo", "--note", "maintenance")
    assert paused.returncode == 0, paused.stderr
    proc = oneiric(env, "action", "invoke", "t.echo", "--payload", "{}")
    assert proc.returncode == 5, proc.stderr
    assert "paused" in _one_line_error(proc)
    assert oneiric(env, "resume", "action", "t.echo").returncode == 0
    assert oneiric(env, "action", "invoke", "t.echo", "--payload", "{}").returncode == 0


def test_invoke_leaves_no_status_snapshot_behind(env: dict[str, str]) -> None:
    """A one-off call is not an application: ``oneiric status`` must not list it."""
    assert oneiric(env, "action", "invoke", "t.echo").returncode == 0
    status = Path(env["ONEIRIC_STATE_DIR"]) / "status"
    assert not status.exists() or not any(status.iterdir())
