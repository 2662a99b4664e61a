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
    config = _synced_source(tmp_path, env)  # then the repository is gone: only the cache
    host = Host(config, state_dir=state, plugins=False, watch=False, activate=["service/greeter"])
    async with host:
        assert host.resolver.resolve("service", "greeter").provider == "edge"
        instance = await host.activate("service", "greeter")
        assert type(instance).__name__ == "JSONDecoder"


def _synced_source(tmp_path: Path, env: dict[str, str], bundle: str | None = None) -> Path:
    """keygen, sign, configure and sync one source with the CLI, then delete the signed
    manifest (the repository is unreachable); return the settings dir."""
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
    section = f'[remote]\nbundle = "{bundle}"\n\n' if bundle else ""
    (config / "oneiric.toml").write_text(
        f'{section}[remote.sources.edge]\nurl = "{signed}"\nrepository = "acme-edge"\n'
        f'factory_allowlist = ["json"]\ntrusted_keys = [{trusted}]\n'
    )
    sync = _oneiric("--config", str(config), "remote", "sync", "--json", env=env)
    assert sync.returncode == 0, sync.stderr
    signed.unlink()
    return config


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for current, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            info = (Path(current) / name).lstat()
            found[str(Path(current) / name)] = (info.st_mtime_ns, info.st_size, info.st_mode)
    return found


async def test_serverless_host_loads_the_bundle_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ONEIRIC_PROFILE=serverless`` + ``[remote] bundle``: the bundled candidate resolves,
    the cache is not needed and nothing is written in the bundle or the state dir."""
    import shutil

    state = tmp_path / "state"
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(state)}
    env.pop("ONEIRIC_CONFIG", None)
    env.pop("ONEIRIC_REMOTE_BUNDLE", None)
    config = _synced_source(tmp_path, env, bundle="../deploy/bundle")
    (tmp_path / "deploy").mkdir()
    bundle = _oneiric("--config", str(config), "remote", "bundle",
                      str(tmp_path / "deploy" / "bundle"), env=env)
    assert bundle.returncode == 0, bundle.stderr
    shutil.rmtree(state)  # the function has no cache: only the bundle
    state.mkdir()
    monkeypatch.setenv("ONEIRIC_PROFILE", "serverless")
    monkeypatch.delenv("ONEIRIC_REMOTE_BUNDLE", raising=False)
    monkeypatch.delenv("ONEIRIC_CONFIG", raising=False)
    before = _tree(tmp_path / "deploy")
    host = Host(config, state_dir=state, plugins=False, activate=["service/greeter"])
    async with host:
        winner = host.resolver.resolve("service", "greeter")
        assert (winner.provider, str(winner.source)) == ("edge", "manifest:acme-edge==3")
    assert _tree(tmp_path / "deploy") == before
    assert not (state / "remote").exists()


def test_serverless_host_without_a_bundle_warns_once_and_uses_the_cache(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(state), "ONEIRIC_PROFILE": "serverless"}
    env.pop("ONEIRIC_CONFIG", None)
    env.pop("ONEIRIC_REMOTE_BUNDLE", None)
    config = _synced_source(tmp_path, {**env, "ONEIRIC_PROFILE": "default"})
    child = (
        "import asyncio, sys\n"
        "from oneiric.core import configure_logging\n"
        "from oneiric.lifecycle import Host\n"
        "configure_logging('WARNING', json=True)\n"
        "async def main():\n"
        "    async with Host(sys.argv[1], plugins=False) as host:\n"
        "        print(host.resolver.resolve('service', 'greeter').provider)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, str(config)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "edge"
    assert proc.stderr.count("serverless profile without a remote bundle") == 1
