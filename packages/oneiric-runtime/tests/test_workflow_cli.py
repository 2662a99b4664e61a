"""``oneiric workflow list|plan|run|resume|cancel|runs|show`` in real processes.

Definitions are files in the settings dir's ``workflows/`` (``ONEIRIC_CONFIG``);
the node action comes in through ``--app`` (``ONEIRIC_APP``, a real module on
``PYTHONPATH``) and appends ``run/node`` to a log file, so every test can count
what ran.  Checkpoints live in ``ONEIRIC_STATE_DIR``: each command is a new
process reading what the previous one wrote (a run failed in one process is
resumed by another).  Exit codes: 0 succeeded, 1 the run did not, 3 unknown
workflow or run, 4 invalid definition or input, 6 refused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

APP = '''
import asyncio
import os

from oneiric.actions import ActionSpec
from oneiric.core import Candidate


class Step:
    spec = ActionSpec(side_effects=False, idempotent=True)

    async def invoke(self, payload, context):
        with open(os.environ["WF_LOG"], "a") as log:
            log.write(f"{context.run_id}/{context.node_id}\\n")
        if isinstance(payload, dict):
            flag = payload.get("fail_until")
            if flag and not os.path.exists(flag):
                raise RuntimeError("the flag file is missing")
            if payload.get("sleep"):
                await asyncio.sleep(payload["sleep"])
        return {"node": context.node_id, "in": payload}


def register(resolver):
    resolver.register(Candidate("action", "t.step", "test", Step))
'''

PIPE = """\
id = "pipe"
version = 1

[[nodes]]
id = "a"
action = "t.step"
input = { n = "${input.n}" }

[[nodes]]
id = "b"
action = "t.step"
needs = ["a"]
input = { fail_until = "${input.flag}", prev = "${nodes.a.output.in.n}" }

[[nodes]]
id = "c"
action = "t.step"
needs = ["b"]

[[nodes]]
id = "side"
action = "t.step"
needs = ["a"]
"""

SLOW = """\
id = "slow"

[[nodes]]
id = "wait"
action = "t.step"
input = { sleep = 30 }

[[nodes]]
id = "after"
action = "t.step"
needs = ["wait"]
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cli_wf_app.py").write_text(APP)
    workflows = tmp_path / "settings" / "workflows"
    workflows.mkdir(parents=True)
    (tmp_path / "settings" / "oneiric.toml").write_text("")
    (workflows / "pipe.toml").write_text(PIPE)
    (workflows / "slow.toml").write_text(SLOW)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ.update(ONEIRIC_STATE_DIR=str(tmp_path / "state"),
                   ONEIRIC_CONFIG=str(tmp_path / "settings"),
                   ONEIRIC_APP="cli_wf_app:register", WF_LOG=str(tmp_path / "log"))
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    return environ


def oneiric(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _log(env: dict[str, str]) -> list[str]:
    path = Path(env["WF_LOG"])
    return path.read_text().split() if path.exists() else []


def _input(env: dict[str, str], n: int = 1) -> str:
    return json.dumps({"n": n, "flag": env["WF_LOG"] + ".flag"})


def test_list_and_plan_in_every_format(env: dict[str, str]) -> None:
    listed = _json(oneiric(env, "workflow", "list", "--json"))
    assert [(w["id"], w["version"], w["nodes"], w["provider"]) for w in listed["workflows"]] == [
        ("pipe", 1, 4, "settings"), ("slow", 1, 2, "settings")]
    assert "pipe v1 (settings) 4 nodes" in oneiric(env, "workflow", "list").stdout
    text = oneiric(env, "workflow", "plan", "pipe")
    assert text.returncode == 0 and "critical path (3): a -> b -> c" in text.stdout
    as_json = _json(oneiric(env, "workflow", "plan", "pipe", "--json"))
    assert as_json == _json(oneiric(env, "workflow", "plan", "pipe", "--format", "json"))
    assert as_json == _json(oneiric(env, "--json", "workflow", "plan", "pipe"))
    assert as_json["levels"] == [["a"], ["b", "side"], ["c"]]
    mermaid = oneiric(env, "workflow", "plan", "pipe", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "n0 --> n1" in mermaid
    assert _log(env) == []  # nothing ran


def test_run_fails_then_resume_in_a_new_process_reruns_only_failed_and_skipped(
    env: dict[str, str],
) -> None:
    failed = oneiric(env, "workflow", "run", "pipe", "--input", _input(env), "--run-id", "r1",
                     "--json")
    assert failed.returncode == 1, failed.stderr
    result = _json(failed)
    assert result["status"] == "failed"
    assert {n: s["status"] for n, s in result["nodes"].items()} == {
        "a": "succeeded", "b": "failed", "c": "skipped", "side": "succeeded"}
    assert sorted(_log(env)) == ["r1/a", "r1/b", "r1/side"]
    text = oneiric(env, "workflow", "show", "r1")
    assert text.returncode == 0 and re.search(r"\n  b\s+failed\s+x1 ", text.stdout)
    assert "the flag file is missing" in text.stdout
    Path(env["WF_LOG"] + ".flag").touch()
    resumed = oneiric(env, "workflow", "resume", "r1")
    assert resumed.returncode == 0, resumed.stderr
    assert "run r1 (workflow pipe): succeeded" in resumed.stdout
    assert sorted(_log(env)) == ["r1/a", "r1/b", "r1/b", "r1/c", "r1/side"]  # a, side: once
    shown = _json(oneiric(env, "workflow", "show", "r1", "--json"))
    assert shown["outputs"]["c"] == {"node": "c", "in": None}
    assert shown["nodes"]["b"]["attempts"] == 2 and shown["run"]["status"] == "succeeded"
    again = oneiric(env, "workflow", "run", "pipe", "--input", _input(env), "--run-id", "r1")
    assert again.returncode == 0 and len(_log(env)) == 5  # the run id is the idempotency key


def test_runs_filters_and_input_from_a_file(env: dict[str, str], tmp_path: Path) -> None:
    Path(env["WF_LOG"] + ".flag").touch()
    (tmp_path / "input.json").write_text(_input(env, 2))
    for run_id in ("one", "two"):
        proc = oneiric(env, "workflow", "run", "pipe", "--input", f"@{tmp_path / 'input.json'}",
                       "--run-id", run_id)
        assert proc.returncode == 0, proc.stderr
    runs = _json(oneiric(env, "workflow", "runs", "--json", "--workflow", "pipe"))["runs"]
    assert [r["run_id"] for r in runs] == ["two", "one"]
    assert runs[0]["input"] == {"n": 2, "flag": env["WF_LOG"] + ".flag"}
    limited = _json(oneiric(env, "workflow", "runs", "--json", "--limit", "1"))["runs"]
    assert len(limited) == 1
    assert _json(oneiric(env, "workflow", "runs", "--json", "--status", "failed"))["runs"] == []
    text = oneiric(env, "workflow", "runs", "--status", "succeeded").stdout
    assert "one  pipe v1  succeeded" in text
    bad = oneiric(env, "workflow", "runs", "--status", "bogus")
    assert bad.returncode == 2


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("run", "nosuch"), 3, "nosuch"),
        (("plan", "nosuch"), 3, "nosuch"),
        (("show", "ghost"), 3, "no workflow run 'ghost'"),
        (("resume", "ghost"), 3, "no workflow run 'ghost'"),
        (("cancel", "ghost"), 3, "no workflow run 'ghost'"),
        (("run", "pipe", "--input", "{nope"), 4, "--input is not valid JSON"),
        (("run", "pipe", "--input", '{"n": NaN}'), 4, "run input is not JSON"),
        (("run", "pipe", "--input", "@/nonexistent/in.json"), 4, "cannot read"),
        (("run", "pipe", "--run-id", "bad id"), 4, "run id 'bad id' is not valid"),
    ],
)
def test_attack_unknown_and_invalid_arguments_exit_with_their_code_in_one_line(
    env: dict[str, str], args: tuple[str, ...], code: int, fragment: str
) -> None:
    proc = oneiric(env, "workflow", *args)
    assert proc.returncode == code, proc.stderr
    assert fragment in _error(proc)
    assert _log(env) == []
    assert _json(oneiric(env, "workflow", "runs", "--json"))["runs"] == []  # no run written


def test_attack_an_invalid_definition_file_exits_4_naming_the_node(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "settings" / "workflows" / "broken.toml").write_text(
        'id = "broken"\n[[nodes]]\nid = "x"\naction = "t.step"\nneeds = ["ghost"]\n')
    proc = oneiric(env, "workflow", "run", "pipe", "--input", _input(env))
    assert proc.returncode == 4
    assert "node 'x' needs 'ghost', which is not a node" in _error(proc)
    assert _log(env) == []


def test_attack_resume_of_a_changed_definition_is_refused_unless_forced_to_a_new_version(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert oneiric(env, "workflow", "run", "pipe", "--input", _input(env),
                   "--run-id", "r").returncode == 1
    path = tmp_path / "settings" / "workflows" / "pipe.toml"
    path.write_text(PIPE.replace('needs = ["b"]', 'needs = ["b"]\ninput = { changed = true }'))
    refused = oneiric(env, "workflow", "resume", "r")
    assert refused.returncode == 6 and "another definition" in _error(refused)
    forced = oneiric(env, "workflow", "resume", "r", "--force")
    assert forced.returncode == 6 and "needs a new version" in _error(forced)
    path.write_text(path.read_text().replace("version = 1", "version = 2"))
    Path(env["WF_LOG"] + ".flag").touch()
    done = oneiric(env, "workflow", "resume", "r", "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert _json(done)["outputs"]["c"]["in"] == {"changed": True}


def test_attack_a_second_executor_is_refused_and_cancel_reaches_the_first(
    env: dict[str, str],
) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "oneiric.cli", "workflow", "run", "slow", "--run-id", "s1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "s1/wait" not in _log(env):
            assert time.monotonic() < deadline and first.poll() is None, first.stderr
            time.sleep(0.05)
        second = oneiric(env, "workflow", "resume", "s1")
        assert second.returncode == 6 and "is being executed" in _error(second)
        again = oneiric(env, "workflow", "run", "slow", "--run-id", "s1")
        assert again.returncode == 6
        cancelled = oneiric(env, "workflow", "cancel", "s1", "--json")
        assert cancelled.returncode == 0, cancelled.stderr
        assert _json(cancelled)["status"] == "cancelled"
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1 and "run s1 (workflow slow): cancelled" in out, err
    shown = _json(oneiric(env, "workflow", "show", "s1", "--json"))
    assert {n: s["status"] for n, s in shown["nodes"].items()} == {
        "wait": "cancelled", "after": "skipped"}
    assert _log(env) == ["s1/wait"]  # the second executor never ran a node
