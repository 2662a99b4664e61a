"""Case 34 (the full round trip with the click commands) and the CLI's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oneiric.remote._cli import manifest, remote
from oneiric.remote._plugin import oneiric_cli_commands
from oneiric.testing import free_port

CHILD = r'''
import asyncio, json, sys
from pathlib import Path
from oneiric.core import Resolver, load_settings, resolve_factory
from oneiric.remote import RemoteSync
from oneiric.remote._sources import sources_from_settings

config = Path(sys.argv[1])
settings = load_settings(config)
(source,) = sources_from_settings(settings.remote, settings.config_dir).values()
resolver = Resolver()

async def main():
    sync = RemoteSync(resolver, source)
    first = await sync.sync()
    try:
        second = (await sync.sync()).as_dict()
    except Exception as exc:  # offline: the registered components keep serving
        second = {"error": type(exc).__name__}
    winner = resolver.resolve("service", "greeter")
    print(json.dumps({
        "first": first.as_dict(), "second": second,
        "candidates": len(resolver.candidates("service", "greeter")),
        "explain": resolver.explain("service", "greeter").as_dict(),
        "greeting": resolve_factory(winner)().greet("oneiric"),
    }))

asyncio.run(main())
'''


def _invoke(group: Any, args: list[str], **kw: Any) -> Any:
    result = CliRunner().invoke(group, args, catch_exceptions=False, **kw)
    return result


def _build_provider(tmp: Path) -> Path:
    root = tmp / "provider"
    (root / "src" / "acme_rt").mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "acme-rt-provider"
        version = "0.1.0"

        [tool.hatch.build.targets.wheel]
        packages = ["src/acme_rt"]
    """))
    (root / "src" / "acme_rt" / "__init__.py").write_text(textwrap.dedent("""
        class Greeter:
            def greet(self, name):
                return f"hello {name} from a signed manifest"


        def make():
            return Greeter()
    """))
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(root)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = dist.glob("*.whl")
    return wheel


@pytest.mark.slow
def test_case34_round_trip(tmp_path: Path, https) -> None:
    wheel = _build_provider(tmp_path)
    key = tmp_path / "publisher.key"
    out = _invoke(manifest, ["keygen", "--out", str(key), "--json"])
    assert out.exit_code == 0, out.output
    public = json.loads(out.output)
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    wheel_url = https.url("/artifacts/acme_rt.whl")
    (tmp_path / "manifest.yaml").write_text(textwrap.dedent(f"""
        repository: acme-prod
        version: 1
        artifacts:
          acme-rt:
            path: dist/{wheel.name}
            urls: ["{wheel_url}"]
        components:
          - domain: service
            key: greeter
            provider: acme
            factory: acme_rt:make
            artifact: acme-rt
            priority: 20
            description: delivered by a signed manifest
    """))
    signed = tmp_path / "manifest.json"
    out = _invoke(manifest, ["sign", str(tmp_path / "manifest.yaml"), "--key", str(key),
                             "--out", str(signed), "--json"])
    assert out.exit_code == 0, out.output
    out = _invoke(manifest, ["verify", str(signed), "--trusted-key", str(key),
                             "--repository", "acme-prod"])
    assert out.exit_code == 0 and out.output.startswith("ok: acme-prod version 1")
    https.serve("/manifest.json", signed.read_bytes())
    https.serve("/artifacts/acme_rt.whl", wheel.read_bytes())

    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(textwrap.dedent(f"""
        [remote]
        cache_dir = "{tmp_path / 'state' / 'remote'}"

        [remote.sources.prod]
        url = "{https.url('/manifest.json')}"
        repository = "acme-prod"
        trusted_keys = [{{ keyid = "{public['keyid']}", public_key = "{public['public_key']}" }}]
        ca_bundle = "{https.ca_path}"
    """))
    out = _invoke(remote, ["sync", "--config", str(config), "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)["sources"]
    assert (row["version"], row["registered"], row["unchanged"]) == (1, 1, False)
    out = _invoke(remote, ["sync", "--config", str(config)])
    assert out.exit_code == 0 and "unchanged" in out.output
    out = _invoke(remote, ["status", "--config", str(config), "--json"])
    (status,) = json.loads(out.output)["sources"]
    assert status["status"]["version"] == 1 and status["status"]["last_error"] is None

    https.hits.clear()
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    for online in (True, False):
        if not online:
            https.close()
        proc = subprocess.run([sys.executable, str(child), str(config)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert got["greeting"] == "hello oneiric from a signed manifest"
        assert got["candidates"] == 1  # a second sync registers nothing twice
        assert got["first"]["unchanged"] is True
        assert got["second"] == ({"error": "FetchError"} if not online else got["second"])
        assert not online or got["second"]["registered"] == 0
        assert got["first"]["offline"] is (not online)
        (cand,) = got["explain"]["candidates"]
        assert cand["source"] == "manifest:acme-prod==1" and cand["selected"] is True
    assert not any(p.endswith(".whl") for p in https.hits)


def test_exit_codes(tmp_path: Path, kit) -> None:
    # 5: server down and nothing cached
    config = kit.settings(f"https://127.0.0.1:{free_port()}/m.json")
    out = CliRunner().invoke(remote, ["sync", "--config", str(config)], env={})
    assert out.exit_code == 5 and out.stderr.startswith("Error: s: ")
    # 3: unknown source
    out = CliRunner().invoke(remote, ["sync", "--config", str(config), "--source", "nope"])
    assert out.exit_code == 3
    # 4: invalid signature; 6: out of scope
    from datetime import UTC, datetime, timedelta

    issued = datetime.now(UTC) - timedelta(hours=1)
    bad = kit.write(kit.envelope(kit.payload(issued=issued), keys=[1]), "bad.json")
    config = kit.settings(str(bad))
    assert CliRunner().invoke(remote, ["sync", "--config", str(config)]).exit_code == 4
    scoped = kit.write(kit.envelope(kit.payload(issued=issued)), "scoped.json")
    config = kit.settings(str(scoped), 'allowed_keys = ["service.*"]\n'
                          'factory_allowlist = ["json"]\n')
    assert CliRunner().invoke(remote, ["sync", "--config", str(config)]).exit_code == 6
    # 4: invalid config, one line
    config = kit.settings("x.json", "surprise = 1\n")
    out = CliRunner().invoke(remote, ["sync", "--config", str(config)])
    assert out.exit_code == 4 and "unknown setting" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    # 2: usage
    assert CliRunner().invoke(manifest, ["sign"]).exit_code == 2


def test_sign_refuses_invalid_yaml_manifest(tmp_path: Path) -> None:
    key = tmp_path / "k.json"
    assert _invoke(manifest, ["keygen", "--out", str(key)]).exit_code == 0
    (tmp_path / "m.yaml").write_text("repository: acme\nversion: 1\nsurprise: true\n")
    out = CliRunner().invoke(manifest, ["sign", str(tmp_path / "m.yaml"), "--key", str(key)])
    assert out.exit_code == 4 and "surprise" in out.stderr


def test_pack_prints_artifact_entries(tmp_path: Path, kit) -> None:
    wheel, spec = kit.wheel("acme_pack")
    out = _invoke(manifest, ["pack", str(wheel), "--url-prefix", "https://cdn.example/a",
                             "--json"])
    entry = json.loads(out.output)["artifacts"]["acme-pack"]
    assert entry["sha256"] == spec["sha256"] and entry["size"] == spec["size"]
    assert entry["urls"] == [f"https://cdn.example/a/{wheel.name}"]


def test_hook_returns_click_groups() -> None:
    groups = oneiric_cli_commands()
    assert [g.name for g in groups] == ["manifest", "remote"]
