"""``Host`` starts with what ``oneiric remote sync`` delivered, offline (lifecycle + remote + CLI).

Cross-package: the lifecycle package's own tests run without oneiric-remote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oneiric.lifecycle import Host

pytestmark = pytest.mark.anyio


def _oneiric(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


async def test_host_loads_remote_last_good_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source synced once, then unreachable: the host starts with what it delivered."""
    state = tmp_path / "state"
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "elsewhere"))  # Host(state_dir=) wins
    monkeypatch.delenv("ONEIRIC_CONFIG", raising=False)
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(state)}
    env.pop("ONEIRIC_CONFIG", None)
    key = tmp_path / "publisher.key"
    keygen = _oneiric("manifest", "keygen", "--out", str(key), "--json", env=env)
    assert keygen.returncode == 0, keygen.stderr
    public = json.loads(keygen.stdout)
    (tmp_path / "manifest.yaml").write_text(
        "repository: acme-edge\nversion: 3\ncomponents:\n"
        "  - {domain: service, key: greeter, provider: edge, factory: 'json:JSONDecoder'}\n"
    )
    signed = tmp_path / "www" / "manifest.json"
    signed.parent.mkdir()
    sign = _oneiric("manifest", "sign", str(tmp_path / "manifest.yaml"), "--key", str(key),
                    "--out", str(signed), env=env)
    assert sign.returncode == 0, sign.stderr
    config = tmp_path / "remote-settings"
    config.mkdir()
    trusted = f'{{ keyid = "{public["keyid"]}", public_key = "{public["public_key"]}" }}'
    (config / "oneiric.toml").write_text(
        f'[remote.sources.edge]\nurl = "{signed}"\nrepository = "acme-edge"\n'
        f'factory_allowlist = ["json"]\ntrusted_keys = [{trusted}]\n'
    )
    sync = _oneiric("--config", str(config), "remote", "sync", "--json", env=env)
    assert sync.returncode == 0, sync.stderr
    signed.unlink()  # the repository is gone: only the last-good cache remains
    host = Host(config, state_dir=state, plugins=False, watch=False, activate=["service/greeter"])
    async with host:
        assert host.resolver.resolve("service", "greeter").provider == "edge"
        instance = await host.activate("service", "greeter")
        assert type(instance).__name__ == "JSONDecoder"
