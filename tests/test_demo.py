"""``oneiric demo --json`` with every package installed, as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _command() -> list[str]:
    script = Path(sys.executable).parent / "oneiric"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "oneiric.cli"]


def test_demo_runs_every_step_and_leaves_nothing_behind(tmp_path: Path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["TMPDIR"] = str(temp)
    proc = subprocess.run([*_command(), "demo", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    steps = {s["step"]: s for s in data["steps"]}
    assert list(steps) == ["plugins", "explain", "activate", "hot-swap", "rollback",
                           "pause-drain-resume", "remote", "actions", "events", "workflow"]
    assert all(s["ok"] for s in data["steps"]), [s["step"] for s in data["steps"] if not s["ok"]]

    distributions = {p["distribution"] for p in steps["plugins"]["data"]["plugins"]}
    assert {"oneiric-adapters-cache", "oneiric-adapters-storage", "oneiric-remote"} <= distributions
    explained = steps["explain"]["data"]
    assert explained["selected"] == "inhouse"
    assert {c["provider"] for c in explained["candidates"]} >= {"memory", "redis", "flaky"}
    assert steps["activate"]["data"]["storage"]["roundtrip"] is True

    swap = steps["hot-swap"]["data"]
    assert swap["failed_operations"] == 0 and swap["operations"] > 0
    assert "MemoryCache" in swap["providers_used"]  # the real memory adapter served load
    rollback = steps["rollback"]["data"]
    assert rollback["error_type"] == "HealthCheckFailed" and rollback["still_serving"] is True
    paused = steps["pause-drain-resume"]["data"]
    assert paused["paused_refused"] and paused["draining_refused"]
    remote = steps["remote"]["data"]
    assert remote["winner"] == "edge" and remote["winner_source"] == "manifest:demo-edge==1"
    assert remote["served_by"] == "EdgeCache" and remote["sync"]["registered"] == 1

    actions = steps["actions"]["data"]
    assert len(actions["kits"]) >= 14 and actions["failed"] == 0 and actions["decoded"] is True
    assert actions["by_provider"]["gzip"] > 0 and actions["by_provider"]["lzma"] > 0
    assert "ada@example.com" not in json.dumps(actions["sanitized"])
    events = steps["events"]["data"]
    assert [o["status"] for o in events["emit"]["outcomes"]] == ["ok", "dead_lettered"]
    assert [d["handler"] for d in events["dead_letters"]] == ["mailer"]
    assert events["left"] == 0 and events["mailed"] == ["A-17"]
    assert events["route"]["runs"] == ["invoice", "mailer"]
    workflow = steps["workflow"]["data"]
    assert workflow["before"]["reserve"] == {"status": "succeeded", "attempts": 1}
    assert workflow["before"]["charge"]["status"] == "running"
    assert (workflow["rerun"], workflow["first_run"]) == (["charge"], ["receipt"])
    assert workflow["after"]["reserve"]["attempts"] == 1  # finished: never re-run
    assert workflow["status"] == "succeeded"

    assert data["ok"] is True and data["temp_dir_removed"] is True and data["left_behind"] == []
    assert not Path(data["temp_dir"]).exists()
    assert list(temp.iterdir()) == []


def test_demo_human_output_has_a_screen_per_step(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run([*_command(), "demo"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    titles = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
    assert len(titles) == 10
    assert "failed operations: 0" in proc.stdout
    assert "left behind: nothing" in proc.stdout
    assert proc.stderr == ""  # expected failures (the rollback) are shown, not logged
