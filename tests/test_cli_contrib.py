"""The CLI with the other first-party packages: contributed commands and real adapters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _oneiric(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["ONEIRIC_STATE_DIR"] = str(cwd / "state")
    env["ONEIRIC_CLI_CACHE"] = str(cwd / "cli-commands.json")
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_remote_commands_appear_under_oneiric(tmp_path: Path):
    for attempt in ("cold", "from the summary cache"):
        result = _oneiric(tmp_path, "--help")
        assert result.returncode == 0, (attempt, result.stderr)
        assert "Commands from installed packages" in result.stdout
        assert "  manifest " in result.stdout and "  remote " in result.stdout
    assert (tmp_path / "cli-commands.json").is_file()
    plugins = json.loads(_oneiric(tmp_path, "plugins", "--json").stdout)
    assert {"name": "manifest", "plugin": "oneiric-remote:remote"} in plugins["commands"]
    assert plugins["command_errors"] == []


def test_contributed_command_runs_and_its_errors_keep_their_exit_codes(tmp_path: Path):
    key = tmp_path / "key.json"
    made = _oneiric(tmp_path, "manifest", "keygen", "--out", str(key), "--json")
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)) >= {"keyid", "public_key"}
    again = _oneiric(tmp_path, "manifest", "keygen", "--out", str(key))
    assert again.returncode == 2
    config = tmp_path / "settings"
    config.mkdir()
    no_sources = _oneiric(tmp_path, "--config", str(config), "remote", "sync")
    assert no_sources.returncode == 4
    lines = [line for line in no_sources.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "remote.sources" in lines[0]


def test_explain_real_adapters(tmp_path: Path):
    data = json.loads(_oneiric(tmp_path, "explain", "adapter", "cache", "--json").stdout)
    sources = {c["provider"]: c["source"] for c in data["candidates"]}
    assert set(sources) >= {"memory", "redis", "memcached"}
    assert sources["memory"].startswith("entry_point:oneiric-adapters-cache==")
    swapped = _oneiric(tmp_path, "swap", "adapter", "cache", "memory", "--validate", "--json")
    assert swapped.returncode == 0, swapped.stderr
    assert json.loads(swapped.stdout)["health"]["ok"] is True
    listed = json.loads(_oneiric(tmp_path, "list", "--json", "--domain", "adapter").stdout)
    cache = next(r for r in listed["keys"] if r["key"] == "cache")
    assert cache["provider"] == "memory" and cache["reason"] == "selected"


def test_swap_validate_of_an_unreachable_server_is_unavailable(tmp_path: Path):
    from oneiric.testing import free_port

    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        f'[adapter.provider_settings.cache.redis]\nurl = "redis://127.0.0.1:{free_port()}/0"\n'
    )
    result = _oneiric(tmp_path, "--config", str(config), "swap", "adapter", "cache", "redis",
                      "--validate")
    assert result.returncode in (4, 5), result.stderr  # 4 if redis-py is not installed
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert not (tmp_path / "state" / "selections.json").exists()
