"""After ``oneiric remote sync``, ``oneiric list``/``explain`` show what it delivered.

The CLI builds its resolver like an application: plugins, settings, then the
last-good manifest of every configured ``[remote]`` source, loaded from the
cache without the network (signatures and expiry re-verified).  Real keygen,
sign and sync through the ``oneiric`` command; a local-path source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _oneiric() -> list[str]:
    script = Path(sys.executable).with_name("oneiric")
    return [str(script)] if script.exists() else [sys.executable, "-m", "oneiric.cli"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_oneiric(), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def synced(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A signed manifest delivering service/greeter=edge, synced by the real CLI."""
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    env.pop("ONEIRIC_CONFIG", None)
    key = tmp_path / "publisher.key"
    keygen = _run("manifest", "keygen", "--out", str(key), "--json", env=env)
    assert keygen.returncode == 0, keygen.stderr
    public = json.loads(keygen.stdout)
    trusted = f'{{ keyid = "{public["keyid"]}", public_key = "{public["public_key"]}" }}'
    (tmp_path / "manifest.yaml").write_text(
        textwrap.dedent(
            """
            repository: acme-edge
            version: 3
            components:
              - domain: service
                key: greeter
                provider: edge
                factory: json:loads
                priority: 20
                description: delivered by a signed manifest
            """
        )
    )
    signed = tmp_path / "www" / "manifest.json"
    signed.parent.mkdir()
    sign = _run("manifest", "sign", str(tmp_path / "manifest.yaml"), "--key", str(key),
                "--out", str(signed), env=env)
    assert sign.returncode == 0, sign.stderr
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        textwrap.dedent(
            f"""
            [remote.sources.edge]
            url = "{signed}"
            repository = "acme-edge"
            factory_allowlist = ["json"]
            trusted_keys = [{trusted}]
            """
        )
    )
    sync = _run("--config", str(config), "remote", "sync", "--json", env=env)
    assert sync.returncode == 0, sync.stderr
    signed.unlink()  # the CLI must not need the source: it reads the last-good cache
    return config, env


def test_attack_list_and_explain_hide_what_remote_sync_delivered(
    synced: tuple[Path, dict[str, str]],
) -> None:
    config, env = synced
    listed = _run("--config", str(config), "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "manifest:acme-edge==3" in listed.stdout
    assert '"edge"' in listed.stdout
    explained = _run("--config", str(config), "explain", "service", "greeter", "--json", env=env)
    assert explained.returncode == 0, explained.stderr
    data = json.loads(explained.stdout)
    assert data["selected"] == "edge"
    (row,) = [c for c in data["candidates"] if c["provider"] == "edge"]
    assert row["source"] == "manifest:acme-edge==3"


def test_attack_broken_last_good_cache_is_a_one_line_warning(
    synced: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, env = synced
    (state_file,) = (tmp_path / "state" / "remote").glob("state-*.json")
    doc = json.loads(state_file.read_text())
    doc["last_good"] = doc["last_good"][:-40] + "A" * 40  # tampered envelope
    state_file.write_text(json.dumps(doc))
    listed = _run("--config", str(config), "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "manifest:acme-edge" not in listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if "edge" in line]
    assert len(warnings) == 1, listed.stderr
    assert "remote source 'edge'" in warnings[0]


def _config_with(tmp_path: Path, key_line: str) -> tuple[Path, dict[str, str]]:
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    env.pop("ONEIRIC_CONFIG", None)
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        "[remote.sources.edge]\n"
        'url = "https://127.0.0.1:9/manifest.json"\n'
        'repository = "acme-edge"\n'
        f"{key_line}\n"
    )
    return config, env


def test_never_synced_source_is_silent(tmp_path: Path) -> None:
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    keygen = _run("manifest", "keygen", "--out", str(tmp_path / "k"), "--json", env=env)
    public = json.loads(keygen.stdout)
    trusted = f'{{ keyid = "{public["keyid"]}", public_key = "{public["public_key"]}" }}'
    config, env = _config_with(tmp_path, f"trusted_keys = [{trusted}]")
    listed = _run("--config", str(config), "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""


def test_attack_bad_remote_section_is_a_one_line_warning_for_list(tmp_path: Path) -> None:
    config, env = _config_with(tmp_path, 'trusted_keys = [{ keyid = "k", public_key = "AAAA" }]')
    listed = _run("--config", str(config), "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (warning,) = listed.stderr.splitlines()
    assert "[remote] not loaded" in warning and "public_key" in warning
