"""The publisher-to-application round trip through the real ``oneiric`` command.

keygen -> sign a YAML manifest -> serve it and a wheel over real local HTTPS ->
``oneiric remote sync`` -> a fresh application process resolves the delivered
provider (origin ``manifest:<repository>==<version>``) and *activates* it with
the lifecycle.  A second sync registers nothing twice.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

pytestmark = pytest.mark.slow

PROVIDER = '''
"""A provider delivered only by the signed manifest."""


class EdgeGreeter:
    def __init__(self) -> None:
        self.ready = False

    async def init(self) -> None:
        self.ready = True

    async def health(self) -> bool:
        return self.ready

    def greet(self, name: str) -> str:
        return f"edge greets {name}"


def make() -> EdgeGreeter:
    return EdgeGreeter()
'''

APP = '''
import asyncio, json, sys
from oneiric.core import Resolver, load_plugins, load_settings
from oneiric.lifecycle import DomainBridge, LifecycleManager
from oneiric.remote import RemoteSource, RemoteSync, TrustedKey

config, cache_dir, ca, url, keyid, public = sys.argv[1:7]

async def main() -> None:
    resolver = Resolver()
    load_plugins(resolver)
    source = RemoteSource(
        url, repository="acme-edge", trusted_keys=[TrustedKey(keyid, public)],
        cache_dir=cache_dir, verify=ca,
    )
    result = await RemoteSync(resolver, source).sync()
    winner = resolver.resolve("service", "greeter")
    lifecycle = LifecycleManager(resolver, settings=load_settings(config), write_status=False)
    await lifecycle.activate("service", "greeter")
    bridge = DomainBridge("service", lifecycle)
    async with bridge.lease("greeter") as greeter:
        greeting = greeter.greet("Ada")
    await lifecycle.shutdown()
    print(json.dumps({
        "unchanged": result.unchanged,
        "winner": winner.provider,
        "source": str(winner.source),
        "candidates": len(resolver.candidates("service", "greeter")),
        "greeting": greeting,
    }))

asyncio.run(main())
'''


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return


@pytest.fixture
def https_dir(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    """A real HTTPS server on 127.0.0.1 serving a directory, with a CA made here."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    root = tmp_path / "www"
    root.mkdir()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    def handler(*args: object, **kwargs: object) -> _Handler:
        return _Handler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"https://127.0.0.1:{server.server_address[1]}", ca_path
    finally:
        server.shutdown()
        server.server_close()


def _oneiric() -> list[str]:
    script = Path(sys.executable).with_name("oneiric")
    return [str(script)] if script.exists() else [sys.executable, "-m", "oneiric.cli"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_oneiric(), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _build_wheel(tmp_path: Path) -> Path:
    project = tmp_path / "edge-src"
    (project / "src" / "acme_edge").mkdir(parents=True)
    (project / "src" / "acme_edge" / "__init__.py").write_text(PROVIDER)
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "acme-edge"
        version = "1.0.0"

        [tool.hatch.build.targets.wheel]
        packages = ["src/acme_edge"]
    """))
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(project)],
        check=True,
    )
    (wheel,) = out.glob("acme_edge-*.whl")
    return wheel


def test_publish_sign_serve_sync_then_activate_in_a_fresh_process(
    tmp_path: Path, https_dir: tuple[Path, str, Path]
) -> None:
    root, base_url, ca_path = https_dir
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    env.pop("ONEIRIC_CONFIG", None)

    wheel = _build_wheel(tmp_path)
    (root / "artifacts").mkdir()
    shutil.copy(wheel, root / "artifacts" / wheel.name)

    key = tmp_path / "publisher.key"
    keygen = _run("manifest", "keygen", "--out", str(key), "--json", env=env)
    assert keygen.returncode == 0, keygen.stderr
    public = json.loads(keygen.stdout)

    publish = tmp_path / "publish"
    publish.mkdir()
    shutil.copy(wheel, publish / wheel.name)
    (publish / "manifest.yaml").write_text(textwrap.dedent(f"""
        repository: acme-edge
        version: 1
        artifacts:
          edge:
            path: {wheel.name}
            urls: ["{base_url}/artifacts/{wheel.name}"]
        components:
          - domain: service
            key: greeter
            provider: edge
            factory: acme_edge:make
            artifact: edge
            priority: 20
            description: delivered by a signed manifest
    """))
    signed = root / "manifest.json"
    sign = _run("manifest", "sign", str(publish / "manifest.yaml"), "--key", str(key),
                "--out", str(signed), env=env)
    assert sign.returncode == 0, sign.stderr

    config = tmp_path / "settings"
    config.mkdir()
    cache_dir = tmp_path / "state" / "remote"
    (config / "oneiric.toml").write_text(textwrap.dedent(f"""
        [remote]
        cache_dir = "{cache_dir}"

        [remote.sources.edge]
        url = "{base_url}/manifest.json"
        repository = "acme-edge"
        trusted_keys = [{{ keyid = "{public['keyid']}", public_key = "{public['public_key']}" }}]
        ca_bundle = "{ca_path}"
    """))
    sync = _run("--config", str(config), "remote", "sync", "--json", env=env)
    assert sync.returncode == 0, sync.stderr
    (row,) = json.loads(sync.stdout)["sources"]
    assert (row["version"], row["registered"], row["unchanged"]) == (1, 1, False)

    again = _run("--config", str(config), "remote", "sync", "--json", env=env)
    assert again.returncode == 0, again.stderr
    (row,) = json.loads(again.stdout)["sources"]
    assert row["unchanged"] is True

    status = _run("--config", str(config), "remote", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    (source_status,) = json.loads(status.stdout)["sources"]
    assert source_status["status"]["version"] == 1

    # A fresh application process: same cache, same trust; it resolves and activates.
    app = tmp_path / "app.py"
    app.write_text(APP)
    child = subprocess.run(
        [sys.executable, str(app), str(config), str(cache_dir), str(ca_path),
         f"{base_url}/manifest.json", public["keyid"], public["public_key"]],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert child.returncode == 0, child.stderr
    data = json.loads(child.stdout)
    assert data["unchanged"] is True  # same version: nothing downloaded, re-registered
    assert data["winner"] == "edge"
    assert data["source"] == "manifest:acme-edge==1"
    assert data["greeting"] == "edge greets Ada"  # built, init()ed, health-checked, leased


def test_tampered_manifest_is_refused_by_the_cli_with_exit_4(
    tmp_path: Path, https_dir: tuple[Path, str, Path]
) -> None:
    root, base_url, ca_path = https_dir
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    key = tmp_path / "k"
    public = json.loads(_run("manifest", "keygen", "--out", str(key), "--json", env=env).stdout)
    (tmp_path / "m.yaml").write_text("repository: acme-edge\nversion: 1\ncomponents: []\n")
    signed = root / "manifest.json"
    assert _run("manifest", "sign", str(tmp_path / "m.yaml"), "--key", str(key),
                "--out", str(signed), env=env).returncode == 0
    envelope = json.loads(signed.read_text())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    signed.write_text(json.dumps(envelope))
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(textwrap.dedent(f"""
        [remote.sources.edge]
        url = "{base_url}/manifest.json"
        repository = "acme-edge"
        trusted_keys = [{{ keyid = "{public['keyid']}", public_key = "{public['public_key']}" }}]
        ca_bundle = "{ca_path}"
    """))
    sync = _run("--config", str(config), "remote", "sync", env=env)
    assert sync.returncode == 4, (sync.returncode, sync.stderr)
    lines = [line for line in sync.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "signature" in lines[0].lower()
