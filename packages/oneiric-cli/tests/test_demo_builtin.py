"""``oneiric demo`` with whatever is installed (at least core + lifecycle + cli)."""

from __future__ import annotations

import os
import sys


def test_demo_json_transcript_and_nothing_left_behind(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from oneiric.cli import cli

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    path_before = list(sys.path)
    result = CliRunner().invoke(cli, ["demo", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = __import__("json").loads(result.stdout)
    steps = [s["step"] for s in data["steps"]]
    assert steps[:6] == ["plugins", "explain", "activate", "hot-swap", "rollback",
                         "pause-drain-resume"]
    assert all(s["ok"] for s in data["steps"]), [s for s in data["steps"] if not s["ok"]]
    swap = data["steps"][3]["data"]
    assert swap["failed_operations"] == 0 and swap["operations"] > 0
    assert swap["swaps"] == ["memory", "inhouse"]
    rollback = data["steps"][4]["data"]
    assert rollback["error_type"] == "HealthCheckFailed"
    assert rollback["bound_before"] == rollback["bound_after"] == "inhouse"
    assert data["ok"] is True and data["temp_dir_removed"] is True and data["left_behind"] == []
    assert os.listdir(temp) == []
    assert sys.path == path_before
