"""Adversarial review: discovery, bytecode, hostile input in watch mode, strict parsing.

Each test is named after the attack it replays; every variant of a class is its own
parametrized case.  Components are real: zips and wheels on disk, the HTTPS fixture
server, ``load_plugins`` over the real ``sys.path``, fresh interpreters for bytecode.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Resolver, load_plugins
from oneiric.remote import (
    InsecureURLError,
    ManifestFormatError,
    ModuleShadowingError,
    RemoteError,
    RemoteSync,
    StateError,
    UnsafeArchiveError,
    verify_envelope,
)

pytestmark = pytest.mark.anyio

EVIL_PLUGIN = b'''
from oneiric.core import hookimpl

@hookimpl
def oneiric_register(registry):
    registry.register(domain="service", key="billing", provider="evil",
                      factory="evil_ep:make", priority=10**6)

def make():
    return "pwned"
'''
EGG_PKG_INFO = b"Metadata-Version: 1.1\nName: evil-ep\nVersion: 1.0\n"
DIST_METADATA = b"Metadata-Version: 2.1\nName: evil-ep\nVersion: 1.0\n"
ENTRY_POINTS = b"[oneiric]\nevil = evil_ep\n"


def _serve_artifact(https, data: bytes, kind: str, path: str = "/a.bin") -> dict[str, Any]:
    https.serve(path, data)
    return {"urls": [https.url(path)], "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), "kind": kind}


def _component(factory: str = "acme_ok:make", **kw: Any) -> dict[str, Any]:
    return {"domain": "adapter", "key": "cache", "provider": "z", "factory": factory,
            "artifact": "a", **kw}


async def _sync_artifact(kit, resolver, h, https, data: bytes, *, kind: str = "zip",
                         factory: str = "acme_ok:make", version: int = 1, **source: Any):
    artifacts = {"a": _serve_artifact(https, data, kind, f"/a{version}.bin")}
    url = https.serve("/m.json", kit.envelope(kit.payload(
        version, artifacts=artifacts, components=[_component(factory, priority=10)])))
    src = kit.source(url, verify=str(https.ca_path), **source)
    return await RemoteSync(resolver, src, now=h.fixed_now).sync()


def _wheel(kit, h, files: dict[str, bytes | str], name: str = "acme_ok") -> bytes:
    kit.counter += 1
    path = kit.tmp / f"w{kit.counter}.whl"
    h.make_wheel(path, {"acme_ok/__init__.py": "def make():\n    return 'ok'\n", **files},
                 name=name)
    return path.read_bytes()


def _distributions_under(root: Path) -> list[str]:
    """Names of the distributions importlib.metadata finds with files under ``root``."""
    root = root.resolve()
    found = []
    for dist in importlib.metadata.distributions():
        where = Path(str(dist.locate_file(""))).resolve()
        located = getattr(dist, "_path", None)
        paths = [where] + ([Path(str(located)).resolve()] if located is not None else [])
        if any(p == root or root in p.parents for p in paths):
            found.append(str(dist.metadata["Name"]))
    return found


# ------------------------------------------------------------------- item 1


def _egg_info_zip(h) -> bytes:
    return h.zip_bytes([
        ("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
        ("evil_ep/__init__.py", EVIL_PLUGIN),
        ("evil_ep-1.0.egg-info/PKG-INFO", EGG_PKG_INFO),
        ("evil_ep-1.0.egg-info/entry_points.txt", ENTRY_POINTS),
    ])


METADATA_SMUGGLING = {
    # kind, entries beside a valid acme_ok package
    "egg-info-dir": ("zip", {"evil_ep/__init__.py": EVIL_PLUGIN,
                             "evil_ep-1.0.egg-info/PKG-INFO": EGG_PKG_INFO,
                             "evil_ep-1.0.egg-info/entry_points.txt": ENTRY_POINTS}),
    "egg-info-upper-case": ("zip", {"evil_ep/__init__.py": EVIL_PLUGIN,
                                    "EVIL_EP-1.0.EGG-INFO/PKG-INFO": EGG_PKG_INFO,
                                    "EVIL_EP-1.0.EGG-INFO/entry_points.txt": ENTRY_POINTS}),
    "egg-info-file": ("zip", {"evil_ep-1.0.egg-info": EGG_PKG_INFO}),
    "egg-info-nested": ("zip", {"acme_ok/sub/evil-1.0.egg-info/PKG-INFO": EGG_PKG_INFO}),
    "egg-info-bare-name": ("zip", {"EGG-INFO/PKG-INFO": EGG_PKG_INFO}),
    "dist-info-in-zip": ("zip", {"evil_ep-1.0.dist-info/METADATA": DIST_METADATA,
                                 "evil_ep-1.0.dist-info/entry_points.txt": ENTRY_POINTS}),
    "second-dist-info-in-wheel": ("wheel", {
        "evil_ep-1.0.dist-info/METADATA": DIST_METADATA,
        "evil_ep-1.0.dist-info/entry_points.txt": ENTRY_POINTS}),
    "second-dist-info-upper-case": ("wheel", {
        "Evil_Ep-1.0.DIST-INFO/METADATA": DIST_METADATA,
        "Evil_Ep-1.0.DIST-INFO/entry_points.txt": ENTRY_POINTS}),
    "dist-info-nested": ("wheel", {"acme_ok/evil_ep-1.0.dist-info/METADATA": DIST_METADATA}),
    "egg-info-in-wheel": ("wheel", {"evil_ep/__init__.py": EVIL_PLUGIN,
                                    "evil_ep-1.0.egg-info/PKG-INFO": EGG_PKG_INFO,
                                    "evil_ep-1.0.egg-info/entry_points.txt": ENTRY_POINTS}),
    "pth-nested": ("zip", {"acme_ok/evil.pth": b"import os; os.system('id')\n"}),
    "pth-upper-case": ("zip", {"EVIL.PTH": b"import os\n"}),
    "pth-in-wheel": ("wheel", {"acme_ok/deep/x.pth": b"import os\n"}),
}


@pytest.mark.parametrize("variant", sorted(METADATA_SMUGGLING))
async def test_attack_distribution_metadata_smuggled_in_artifact(
    kit, resolver, h, https, unchanged, variant
) -> None:
    kind, files = METADATA_SMUGGLING[variant]
    if kind == "zip":
        data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                            *files.items()])
    else:
        data = _wheel(kit, h, files)
    with pytest.raises(UnsafeArchiveError) as info:
        await _sync_artifact(kit, resolver, h, https, data, kind=kind)
    assert "\n" not in str(info.value)
    unchanged()
    assert not (kit.cache / "vendor").exists() or list((kit.cache / "vendor").iterdir()) == []


@pytest.mark.parametrize("top", ["sitecustomize.py", "usercustomize.py",
                                 "sitecustomize/__init__.py", "usercustomize/__init__.py",
                                 "SiteCustomize.py"])
async def test_attack_site_customize_hook_in_artifact(
    kit, resolver, h, https, unchanged, top
) -> None:
    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        (top, b"import os\n")])
    with pytest.raises(ModuleShadowingError, match="customize"):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


@pytest.fixture
def fake_installed(tmp_path: Path):
    """A real installed distribution (on sys.path) whose extra needs an uninstalled package."""
    site = tmp_path / "site"
    info = site / "hostapp_zz-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hostapp-zz\nVersion: 1.0\n"
        "Provides-Extra: redis\n"
        'Requires-Dist: Redis-Acme.ZZ>=4; extra == "redis"\n'
        "Requires-Dist: python-acmeclient-zz\n"
    )
    (info / "RECORD").write_text("")
    sys.path.append(str(site))
    yield
    # the autouse fixture restores sys.path


@pytest.mark.parametrize("top", ["redis_acme_zz", "Redis_Acme_ZZ", "acmeclient_zz",
                                 "python_acmeclient_zz", "h2", "socksio"])
async def test_attack_artifact_ships_uninstalled_requirement_of_installed_dist(
    kit, resolver, h, https, fake_installed, unchanged, top
) -> None:
    """An installed dist's (optional) requirement would import the artifact's code out of scope."""
    import importlib.util

    if top in ("h2", "socksio") and importlib.util.find_spec(top) is not None:
        pytest.skip(f"{top} is installed here; the case needs it missing")
    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        (f"{top}/__init__.py", b"print('imported by the host')\n")])
    with pytest.raises(ModuleShadowingError, match="requirement"):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


@pytest.mark.parametrize("variant", ["egg-info-zip", "second-dist-info-wheel"])
async def test_attack_entry_points_escape_source_scope(kit, h, https, variant) -> None:
    """End to end: a source scoped to adapter.cache, max_priority 50, must not deliver
    service/billing at priority 10**6 through discovery."""
    if variant == "egg-info-zip":
        data, kind = _egg_info_zip(h), "zip"
    else:
        data, kind = _wheel(kit, h, {
            "evil_ep/__init__.py": EVIL_PLUGIN,
            "evil_ep-1.0.dist-info/METADATA": DIST_METADATA,
            "evil_ep-1.0.dist-info/entry_points.txt": ENTRY_POINTS,
        }), "wheel"
    sync_resolver = Resolver()
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, sync_resolver, h, https, data, kind=kind,
                             allowed_keys=["adapter.cache"], max_priority=50)
    fresh = Resolver()
    report = load_plugins(fresh)
    assert "service" not in fresh.domains()
    assert not [p for p in report.entries if "evil" in p.distribution.lower()]
    assert "evil_ep" not in sys.modules
    assert _distributions_under(kit.cache) == []


async def test_attack_entry_points_of_legit_wheel_not_discoverable(kit, h, https) -> None:
    """A wheel's own .dist-info (with entry points) is kept off sys.path after a good sync."""
    data = _wheel(kit, h, {
        "acme_ok/plugin.py": EVIL_PLUGIN.replace(b"evil_ep:make", b"acme_ok:make"),
        "acme_ok-1.0.dist-info/entry_points.txt": b"[oneiric]\nlegit = acme_ok.plugin\n",
    })
    sync_resolver = Resolver()
    result = await _sync_artifact(kit, sync_resolver, h, https, data, kind="wheel",
                                  allowed_keys=["adapter.cache"], max_priority=50)
    assert result.registered == 1
    vendor = kit.cache / "vendor"
    assert any(str(d).startswith(str(vendor)) for d in sys.path)
    assert _distributions_under(kit.cache) == []
    fresh = Resolver()
    report = load_plugins(fresh)
    assert "service" not in fresh.domains()
    assert not [p for p in report.entries if "acme" in p.distribution.lower()]
    assert "acme_ok.plugin" not in sys.modules
    assert not [p for p in vendor.rglob("*") if "-info" in p.name.lower()]


# ------------------------------------------------------------------- item 2

BYTECODE = {
    "pycache-dir": [("acme_ok/__pycache__/__init__.cpython-311.pyc", b"\x00" * 16)],
    "pycache-empty-dir": [("acme_ok/__pycache__/", b"")],
    "sourceless-nested": [("acme_ok/helper.pyc", b"\x00" * 16)],
    "sourceless-top": [("helper.pyc", b"\x00" * 16)],
    "pyo": [("acme_ok/helper.pyo", b"\x00" * 16)],
    "upper-case": [("acme_ok/__PYCACHE__/X.PYC", b"\x00" * 16)],
}


@pytest.mark.parametrize("variant", sorted(BYTECODE))
async def test_attack_bytecode_shipped_in_artifact(
    kit, resolver, h, https, unchanged, variant
) -> None:
    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        *BYTECODE[variant]])
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


CHILD = r'''
import asyncio, importlib.util, json, os, py_compile, sys
from datetime import datetime
from oneiric.core import Resolver, resolve_factory
from oneiric.remote import RemoteSource, RemoteSync, TrustedKey

cfg = json.loads(sys.argv[1])
src = RemoteSource(cfg["url"], repository=cfg["repository"],
                   trusted_keys=[TrustedKey(**k) for k in cfg["keys"]],
                   cache_dir=cfg["cache"], verify=cfg["ca"])
now = datetime.fromisoformat(cfg["now"])
resolver = Resolver()

def plant(source_file):
    evil = source_file + ".evil.py"
    with open(evil, "w") as fh:
        fh.write("def make():\n    return 'evil'\n")
    target = importlib.util.cache_from_source(source_file)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    py_compile.compile(evil, cfile=target, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    os.unlink(evil)

async def main():
    await RemoteSync(resolver, src, now=lambda: now).sync()
    if cfg["plant_after_sync"]:
        plant(cfg["plant_after_sync"])
    value = resolve_factory(resolver.resolve("adapter", "cache"))()
    caches = [os.path.join(d, n) for d, dirs, files in os.walk(cfg["cache"] + "/vendor")
              for n in dirs + files if "pycache" in n or n.endswith(".pyc")]
    print(json.dumps({"value": value, "bytecode": caches,
                      "file": sys.modules["acme_ok"].__file__}))

asyncio.run(main())
'''


def _run_child(kit, https, url: str, *, plant_after_sync: str | None = None,
               write_bytecode: bool = True) -> dict[str, Any]:
    cfg = {"url": url, "repository": kit.repository, "keys": [kit.trusted[0].as_dict()],
           "cache": str(kit.cache), "ca": str(https.ca_path),
           "now": "2030-01-01T12:00:00+00:00", "plant_after_sync": plant_after_sync}
    script = kit.tmp / "child_pyc.py"
    script.write_text(CHILD)
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, str(script), json.dumps(cfg)], capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _plant(source_file: Path, body: str = "def make():\n    return 'evil'\n") -> Path:
    evil = source_file.parent.parent / "evil_src.py"
    os.chmod(source_file.parent, 0o700)
    evil.parent.chmod(0o700)
    evil.write_text(body)
    target = Path(importlib.util.cache_from_source(str(source_file)))
    target.parent.mkdir(exist_ok=True)
    py_compile.compile(str(evil), cfile=str(target), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    evil.unlink()
    return target


async def _legit_sync(kit, h, https) -> tuple[str, Path]:
    data = _wheel(kit, h, {})
    artifacts = {"a": _serve_artifact(https, data, "wheel", "/a.whl")}
    url = https.serve("/m.json", kit.envelope(kit.payload(1, artifacts=artifacts,
                                                          components=[_component()])))
    src = kit.source(url, verify=str(https.ca_path))
    await RemoteSync(Resolver(), src, now=h.fixed_now).sync()
    (vendor,) = (kit.cache / "vendor").iterdir()
    return url, vendor / "acme_ok" / "__init__.py"



async def test_attack_pyc_planted_between_runs(kit, h, https) -> None:
    url, source_file = await _legit_sync(kit, h, https)
    planted = _plant(source_file)
    out = _run_child(kit, https, url)
    assert out["value"] == "ok"
    assert not planted.exists()  # the start check re-extracted the vendor dir
    assert out["bytecode"] == []


async def test_attack_unrecorded_file_planted_between_runs(kit, h, https) -> None:
    url, source_file = await _legit_sync(kit, h, https)
    os.chmod(source_file.parent, 0o700)
    extra = source_file.parent / "__pycache__" / "notes.txt"
    extra.parent.mkdir()
    extra.write_text("unrecorded")
    out = _run_child(kit, https, url)
    assert out["value"] == "ok"
    assert not extra.exists()


async def test_attack_pyc_planted_while_running_is_never_read(kit, h, https) -> None:
    url, source_file = await _legit_sync(kit, h, https)
    out = _run_child(kit, https, url, plant_after_sync=str(source_file))
    assert out["value"] == "ok"
    assert out["file"] == str(source_file)


async def test_attack_bytecode_never_written_into_vendor_dir(kit, h, https) -> None:
    url, _source_file = await _legit_sync(kit, h, https)
    out = _run_child(kit, https, url, write_bytecode=True)
    assert out["value"] == "ok"
    assert out["bytecode"] == []
    # and sys.flags / sys.pycache_prefix of the host are left alone
    assert sys.pycache_prefix is None


# ------------------------------------------------------------------- item 3


def _clash_zip(h) -> bytes:
    return h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        ("acme_ok/a", b"file"), ("acme_ok/a/b.py", b"x = 1\n")])


@pytest.mark.parametrize("entries", [
    [("acme_ok/a", b"file"), ("acme_ok/a/b.py", b"x = 1\n")],
    [("acme_ok/a/b.py", b"x = 1\n"), ("acme_ok/a", b"file")],
    [("acme_ok/A", b"file"), ("acme_ok/a/b.py", b"x = 1\n")],
    [("acme_ok/a/", b""), ("acme_ok/a", b"file")],
], ids=["file-then-dir", "dir-then-file", "case-clash", "dir-entry-then-file"])
async def test_attack_file_dir_clash_in_archive(kit, resolver, h, https, unchanged,
                                                entries) -> None:
    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"), *entries])
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


@pytest.mark.parametrize("factory", ["json:loads\n", "json\n:loads", "json:loads\r",
                                     "json:loads\u2028"])
async def test_attack_factory_with_trailing_newline(kit, resolver, h, unchanged,
                                                    factory) -> None:
    payload = kit.payload(components=[{"domain": "adapter", "key": "cache", "provider": "p",
                                       "factory": factory}])
    path = kit.write(kit.envelope(payload))
    with pytest.raises(ManifestFormatError, match="factory"):
        await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    unchanged()


async def test_attack_core_refuses_candidate_named_component(kit, resolver, h, unchanged,
                                                             monkeypatch) -> None:
    """Any core candidate error becomes a ManifestFormatError naming the component."""
    from oneiric.core import InvalidCandidateError
    from oneiric.remote import _candidates

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise InvalidCandidateError("core says no")

    monkeypatch.setattr(_candidates, "Candidate", refuse)
    path = kit.write(kit.envelope(kit.payload()))
    with pytest.raises(ManifestFormatError, match=r"adapter/cache/remote-memory.*core says no"):
        await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    unchanged()


@pytest.mark.parametrize("which", ["state", "lock", "blobs", "tmp", "status"])
async def test_attack_cache_path_is_wrong_type(kit, resolver, h, which) -> None:
    path = kit.write(kit.envelope(kit.payload()))
    source = kit.source(str(path))
    cache = source.resolved_cache_dir()
    name = {"state": f"state-{source.fingerprint}.json", "lock": "lock", "blobs": "blobs",
            "tmp": "tmp", "status": f"status-{source.fingerprint}.json"}[which]
    target = cache / name
    if which in ("blobs", "tmp"):
        target.write_text("not a directory")
    else:
        target.mkdir()
    sync = RemoteSync(resolver, source, now=h.fixed_now)
    if which == "status":  # observability only: the sync still works
        assert (await sync.sync()).registered == 1
        return
    with pytest.raises(StateError) as info:
        await sync.sync()
    assert "\n" not in str(info.value)
    assert resolver.domains() == ()


def _add_signature(envelope: bytes, entry: Any) -> bytes:
    doc = json.loads(envelope)
    doc["signatures"].insert(0, entry)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


JUNK_SIGNATURES = {
    "non-ascii-keyid": {"keyid": "\u00e9\u4e2d", "sig": "AAAA"},
    "non-ascii-sig": {"keyid": "ab" * 32, "sig": "\u00e9"},
    "empty-strings": {"keyid": "", "sig": ""},
    "unknown-keyid-junk-sig": {"keyid": "00" * 32, "sig": "not base64!"},
}


@pytest.mark.parametrize("variant", sorted(JUNK_SIGNATURES))
async def test_attack_mirror_adds_junk_signature(kit, resolver, h, variant) -> None:
    """Unknown keyids are ignored: a junk signature does not fail the sync."""
    genuine = kit.envelope(kit.payload())
    path = kit.write(_add_signature(genuine, JUNK_SIGNATURES[variant]))
    result = await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    assert result.registered == 1
    # the last-good copy kept for offline starts still verifies
    (state,) = kit.cache.glob("state-*.json")
    last_good = json.loads(state.read_bytes())["last_good"].encode()
    assert verify_envelope(last_good, trusted_keys=kit.trusted[:1])["version"] == 1


async def test_attack_junk_signature_with_trusted_keyid(kit, resolver, h) -> None:
    genuine = kit.envelope(kit.payload())
    path = kit.write(_add_signature(genuine, {"keyid": kit.trusted[0].keyid, "sig": ""}))
    assert (await RemoteSync(resolver, kit.source(str(path)),
                             now=h.fixed_now).sync()).registered == 1


@pytest.mark.parametrize("entry", [{"keyid": 5, "sig": "AAAA"}, {"keyid": "a"},
                                   ["not", "an", "object"], {"keyid": "a", "sig": "b", "x": 1}],
                         ids=["int-keyid", "missing-sig", "list", "extra-field"])
async def test_attack_malformed_signature_on_mirror_then_good_mirror(kit, resolver, h,
                                                                     entry) -> None:
    genuine = kit.envelope(kit.payload())
    bad = kit.write(_add_signature(genuine, entry), "bad.json")
    good = kit.write(genuine, "good.json")
    source = kit.source(str(bad), mirrors=[str(good)])
    assert (await RemoteSync(resolver, source, now=h.fixed_now).sync()).registered == 1


class _Scenario:
    """Serves one manifest per watch cycle; the sleep between cycles runs the checks."""

    def __init__(self, https, h, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.h = h
        self.cycle = 0
        self.actions: dict[int, Any] = {}
        https.serve("/m.json", self._route)

    def _route(self, hit: int) -> Any:
        return self.h.Route(self.bodies[min(hit, len(self.bodies)) - 1])

    async def sleep(self, _seconds: float) -> None:
        self.cycle += 1
        action = self.actions.get(self.cycle)
        if action is not None:
            action()


def _status(kit) -> dict[str, Any]:
    return json.loads(next(kit.cache.glob("status-*.json")).read_bytes())


def _versioned_zip(h, version: int, extra: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    return h.zip_bytes([("acme_ok/__init__.py",
                         f"def make():\n    return {version}\n".encode()), *extra])


HOSTILE_CYCLES = ["file-dir-clash", "factory-newline", "state-dir", "junk-signature",
                  "corrupt-zip", "unexpected-exception", "unextractable-name"]


@pytest.mark.parametrize("hostile", HOSTILE_CYCLES)
async def test_attack_hostile_input_does_not_kill_watch(kit, resolver, h, https,
                                                        hostile) -> None:
    """Cycle 1 good (v1), cycle 2 hostile (v1 keeps serving, error recorded), cycle 3 good."""
    import oneiric.remote as remote

    def envelope(version: int, data: bytes, factory: str = "acme_ok:make") -> bytes:
        artifacts = {"a": _serve_artifact(https, data, "zip", f"/w{version}.zip")}
        return kit.envelope(kit.payload(version, artifacts=artifacts,
                                        components=[_component(factory)]))

    good1 = envelope(1, _versioned_zip(h, 1))
    good3 = envelope(3, _versioned_zip(h, 3))
    expected: type[RemoteError] | None = RemoteError
    verifier = None
    if hostile == "file-dir-clash":
        bad = envelope(2, _versioned_zip(h, 2, (("acme_ok/a", b"x"), ("acme_ok/a/b.py", b""))))
        expected = UnsafeArchiveError
    elif hostile == "unextractable-name":
        bad = envelope(2, _versioned_zip(h, 2, (("acme_ok/" + "n" * 300 + ".py", b""),)))
        expected = UnsafeArchiveError
    elif hostile == "factory-newline":
        bad = envelope(2, _versioned_zip(h, 2), factory="acme_ok:make\n")
        expected = ManifestFormatError
    elif hostile == "corrupt-zip":
        bad = envelope(2, b"PK\x03\x04" + b"\x01" * 64)
        expected = UnsafeArchiveError
    elif hostile == "junk-signature":
        bad = _add_signature(envelope(2, _versioned_zip(h, 2)),
                             {"keyid": "\u00e9", "sig": "AAAA"})
        expected = None  # ignored: version 2 applies
    else:
        bad = envelope(2, _versioned_zip(h, 2))
    # a broken state file stops the cycle before the manifest is fetched
    bodies = [good1, good3] if hostile == "state-dir" else [good1, bad, good3]
    scenario = _Scenario(https, h, bodies)
    source = kit.source(https.url("/m.json"), verify=str(https.ca_path))
    state = kit.cache / f"state-{source.fingerprint}.json"
    if hostile == "state-dir":
        expected = StateError

        def break_state() -> None:
            state.unlink()
            state.mkdir()

        scenario.actions[1] = break_state
    if hostile == "unexpected-exception":
        real = remote.Ed25519Verifier(kit.trusted[:1])

        class Flaky:
            calls = 0

            def verify(self, data: bytes) -> Any:
                Flaky.calls += 1
                if Flaky.calls == 2:
                    raise ZeroDivisionError("a verifier bug")
                return real.verify(data)

        verifier = Flaky()
    seen: dict[str, Any] = {}

    def after_hostile_cycle() -> None:
        seen["versions"] = {c.source.version for c in sync.resolver_candidates()}
        seen["status"] = _status(kit)
        seen["path"] = [p for p in sys.path if str(kit.cache) in p]
        if hostile == "state-dir":
            state.rmdir()  # the operator repairs it (a lost state file is a fresh start)

    scenario.actions[2] = after_hostile_cycle
    sync = RemoteSync(resolver, source, now=h.fixed_now, sleep=scenario.sleep,
                      verifier=verifier)
    await sync.watch(0, iterations=3)
    status = seen["status"]
    if expected is None:
        assert seen["versions"] == {"2"} and status["last_error"] is None
    else:
        assert seen["versions"] == {"1"}
        assert status["version"] == 1
        assert status["last_error"] and "\n" not in status["last_error"]
        assert issubclass(getattr(remote, status["last_error_type"]), expected)
        assert len(seen["path"]) == 1
    assert {c.source.version for c in sync.resolver_candidates()} == {"3"}
    assert _status(kit)["last_error"] is None
    from oneiric.core import resolve_factory

    assert resolve_factory(resolver.resolve("adapter", "cache"))() in (1, 2, 3)


@pytest.mark.parametrize("exc", [asyncio.CancelledError, KeyboardInterrupt])
async def test_attack_watch_never_swallows_cancellation(kit, resolver, h, exc) -> None:
    class Cancelling:
        def verify(self, data: bytes) -> Any:
            raise exc()

    path = kit.write(kit.envelope(kit.payload()))
    sync = RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now, verifier=Cancelling())
    with pytest.raises(exc):
        await sync.watch(0, iterations=3)


async def test_attack_unexpected_exception_from_sync_is_a_remote_error(kit, resolver,
                                                                       h) -> None:
    class Buggy:
        def verify(self, data: bytes) -> Any:
            raise RecursionError("maximum recursion depth exceeded")

    path = kit.write(kit.envelope(kit.payload()))
    sync = RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now, verifier=Buggy())
    with pytest.raises(RemoteError, match="RecursionError"):
        await sync.sync()
    assert _status(kit)["last_error_type"] == "RemoteError"


# ------------------------------------------------------------------- item 4


@pytest.mark.parametrize("change", [
    {"version": True}, {"version": 0}, {"version": -3}, {"_type": "other"},
    {"repository": "Bad Name"}, {"spec_version": "2.0"}, {"spec_version": "1.1\n"},
    {"issued_at": "2030-01-01T10:00:00Z\n"}, {"expires": "2030-01-05T10:00:00Z\n"},
    {"unknown": 1},
], ids=["version-bool", "version-zero", "version-negative", "type", "repository",
        "spec-major", "spec-newline", "issued-newline", "expires-newline", "unknown-field"])
def test_attack_verify_envelope_returns_schema_invalid_payload(kit, change) -> None:
    payload = kit.payload()
    payload.update(change)
    with pytest.raises(ManifestFormatError):
        verify_envelope(kit.envelope(payload), trusted_keys=kit.trusted[:1])


@pytest.mark.parametrize("field", ["_type", "version", "issued_at", "expires", "repository",
                                   "spec_version"])
def test_attack_verify_envelope_missing_field(kit, field) -> None:
    payload = kit.payload()
    del payload[field]
    with pytest.raises(ManifestFormatError):
        verify_envelope(kit.envelope(payload), trusted_keys=kit.trusted[:1])


@pytest.mark.parametrize("spec", ["1.0", "1.1"])
def test_verify_envelope_accepts_valid_payload(kit, spec) -> None:
    payload = kit.payload(spec_version=spec)
    assert verify_envelope(kit.envelope(payload), trusted_keys=kit.trusted[:1]) == payload


@pytest.mark.parametrize("field", ["issued_at", "expires"])
async def test_attack_timestamp_with_trailing_newline(kit, resolver, h, unchanged,
                                                      field) -> None:
    payload = kit.payload()
    payload[field] = payload[field] + "\n"
    path = kit.write(kit.envelope(payload))
    with pytest.raises(ManifestFormatError, match=field):
        await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    unchanged()


def test_attack_newline_in_local_config_patterns(kit) -> None:
    from oneiric.core import ConfigError
    from oneiric.remote import RemoteSource, TrustedKey

    for bad in ({"factory_allowlist": ["acme\n"]}, {"allowed_keys": ["adapter.cache\n"]}):
        with pytest.raises(ConfigError):
            kit.source("/nonexistent.json", **bad)
    key = kit.trusted[0]
    with pytest.raises(ConfigError):
        TrustedKey(key.keyid + "\n", key.public_key)
    with pytest.raises(ConfigError):
        RemoteSource("/x.json", repository="acme", trusted_keys=[key],
                     factory_allowlist=["acme.x\n"])


@pytest.mark.parametrize("location", ["data:text/plain,hello", "file:///etc/passwd",
                                      "ftp://127.0.0.1/x", "javascript:alert(1)",
                                      "gopher://127.0.0.1/x"])
@pytest.mark.parametrize("what", ["manifest", "artifact"])
async def test_attack_redirect_to_non_https_scheme(kit, resolver, h, https, location,
                                                   what) -> None:
    redirect = h.Route(status=302, headers={"Location": location})
    if what == "manifest":
        url = https.serve("/m.json", redirect)
    else:
        _, spec = kit.wheel("acme_ok")
        https.serve("/a.whl", redirect)
        url = https.serve("/m.json", kit.envelope(kit.payload(
            artifacts={"a": {**spec, "urls": [https.url("/a.whl")]}},
            components=[_component()])))
    with pytest.raises(InsecureURLError):
        await RemoteSync(resolver, kit.source(url, verify=str(https.ca_path)),
                         now=h.fixed_now).sync()
    assert resolver.domains() == ()


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04garbage", b"\xff" * 100],
                         ids=["empty", "truncated", "noise"])
async def test_attack_corrupt_archive_is_unsafe_archive_error(kit, resolver, h, https,
                                                              unchanged, data) -> None:
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


@pytest.mark.parametrize("name", ["acme_ok/" + "x" * 300 + ".py",
                                  "acme_ok/" + "/".join(["d" * 200] * 30) + "/x.py"],
                         ids=["name-too-long", "path-too-long"])
async def test_attack_unextractable_entry_name(kit, resolver, h, https, unchanged,
                                               name) -> None:
    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        (name, b"x = 1\n")])
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


# ------------------------------------- raw errors from the fetch/extract path


def _corrupt_deflate(h) -> bytes:
    import zipfile

    body = bytes(range(256)) * 64
    data = bytearray(h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 1\n"),
                                  ("acme_ok/blob.py", body)]))
    (info,) = [i for i in zipfile.ZipFile(__import__("io").BytesIO(bytes(data))).infolist()
               if i.filename == "acme_ok/blob.py"]
    start = info.header_offset + 30 + len(info.filename)
    for offset in range(start, start + info.compress_size):
        data[offset] = 0xFF  # invalid deflate block type
    return bytes(data)


async def test_attack_corrupt_deflate_stream(kit, resolver, h, https, unchanged) -> None:
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, _corrupt_deflate(h))
    unchanged()


@pytest.mark.parametrize("what", ["blob-is-dir", "vendor-is-file", "vendor-is-symlink"])
async def test_attack_cache_entry_replaced_between_runs(kit, h, https, tmp_path, what) -> None:
    import shutil

    url, source_file = await _legit_sync(kit, h, https)
    vendor = source_file.parent.parent
    blob = kit.cache / "blobs" / vendor.name
    elsewhere = tmp_path / "elsewhere"
    if what == "blob-is-dir":
        blob.unlink()
        blob.mkdir()
        (blob / "junk").write_text("x")
    elif what == "vendor-is-file":
        shutil.rmtree(vendor)
        vendor.write_text("not a dir")
    else:
        shutil.copytree(vendor, elsewhere)
        shutil.rmtree(vendor)
        vendor.symlink_to(elsewhere, target_is_directory=True)
    from oneiric.remote import _activate

    sys.path[:] = [p for p in sys.path if str(kit.cache) not in p]  # as in a new process
    _activate._active_paths.clear()
    fresh = Resolver()
    result = await RemoteSync(fresh, kit.source(url, verify=str(https.ca_path)),
                              now=h.fixed_now).sync()
    assert result.registered == 1
    assert vendor.is_dir() and not vendor.is_symlink()
    assert blob.is_file()
    if what == "vendor-is-symlink":  # the link's target was not used
        assert (elsewhere / "acme_ok" / "__init__.py").is_file()
        assert not [p for p in sys.path if str(elsewhere) in os.path.realpath(p)]


async def _offline_sync_fails_with_state_error(kit, h, https) -> None:
    """A fresh resolver, every URL down: the cold start reads the state file and must refuse."""
    from oneiric.remote import SyncRetry
    from oneiric.testing import free_port

    offline = f"https://127.0.0.1:{free_port()}/m.json"

    async def no_sleep(_: float) -> None:
        return None

    source = kit.source(offline, verify=str(https.ca_path), retry=SyncRetry(attempts=1))
    with pytest.raises(StateError) as info:
        await RemoteSync(Resolver(), source, now=h.fixed_now, sleep=no_sleep).sync()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("garbage", ["deep", "non-ascii-last-good"])
async def test_attack_state_file_raw_errors(kit, resolver, h, https, garbage) -> None:
    _url, _ = await _legit_sync(kit, h, https)
    (state,) = kit.cache.glob("state-*.json")
    if garbage == "deep":
        state.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    else:
        doc = json.loads(state.read_bytes())
        doc["last_good"] = "\u00e9" + doc["last_good"]
        state.write_text(json.dumps(doc))
    await _offline_sync_fails_with_state_error(kit, h, https)


async def test_attack_deep_status_file_is_ignored(kit, resolver, h) -> None:
    path = kit.write(kit.envelope(kit.payload()))
    source = kit.source(str(path))
    status = source.resolved_cache_dir() / f"status-{source.fingerprint}.json"
    status.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    assert (await RemoteSync(resolver, source, now=h.fixed_now).sync()).registered == 1
    from oneiric.remote import read_status

    assert [s["version"] for s in read_status(kit.cache)] == [1]


# --------------------------------------------- fuzz findings (fuzz/ harness, notes/fuzz.md)


@pytest.mark.parametrize("kind", ["zip", "wheel"])
@pytest.mark.parametrize("others", [[], [("acme_ok/__init__.py", b"x = 1\n")]],
                         ids=["alone", "with-files"])
def test_attack_archive_entry_with_empty_name(kit, h, kind, others) -> None:
    import zipfile

    from oneiric.remote import Limits
    from oneiric.remote._archive import inspect

    blob = kit.tmp / "empty-name.zip"
    blob.write_bytes(h.zip_bytes([*others, (zipfile.ZipInfo(""), b"")]))
    with pytest.raises(UnsafeArchiveError, match="empty name") as info:
        inspect(blob, kind, Limits())
    assert "\n" not in str(info.value)


async def test_attack_archive_entry_with_empty_name_via_sync(kit, resolver, h, https,
                                                             unchanged) -> None:
    import zipfile

    data = h.zip_bytes([("acme_ok/__init__.py", b"def make():\n    return 'ok'\n"),
                        (zipfile.ZipInfo(""), b"")])
    with pytest.raises(UnsafeArchiveError):
        await _sync_artifact(kit, resolver, h, https, data)
    unchanged()


_NEWLINE_NAMES = ["\n", "a\nb", "\r", "\u2028", "\x1c", ""]
_NEWLINE_IDS = ["lf", "lf-inside", "cr", "line-separator", "file-separator", "empty"]


@pytest.mark.parametrize("name", _NEWLINE_NAMES, ids=_NEWLINE_IDS)
def test_attack_newline_in_unknown_envelope_field(kit, name) -> None:
    data = json.dumps({name: 0}).encode()
    with pytest.raises(ManifestFormatError) as info:
        verify_envelope(data, trusted_keys=kit.trusted[:1])
    assert len(str(info.value).splitlines()) == 1
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("where", ["payload", "component"])
@pytest.mark.parametrize("name", ["\n", "a\nb", "\r", "\x1c", ""],  # keys must be ASCII
                         ids=["lf", "lf-inside", "cr", "file-separator", "empty"])
def test_attack_newline_in_unknown_payload_field(kit, name, where) -> None:
    payload = kit.payload(components=[_component()])
    if where == "payload":
        payload[name] = 1
    else:
        payload["components"][0][name] = 1
    with pytest.raises(ManifestFormatError, match="unknown field") as info:
        verify_envelope(kit.envelope(payload), trusted_keys=kit.trusted[:1])
    assert len(str(info.value).splitlines()) == 1
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("value", [2**53, -(2**53), 1.5, object()],
                         ids=["too-big", "too-small", "float", "object"])
@pytest.mark.parametrize("name", _NEWLINE_NAMES, ids=_NEWLINE_IDS)
def test_attack_newline_in_sign_payload_key(kit, name, value) -> None:
    from oneiric.remote import sign_payload

    with pytest.raises(ManifestFormatError) as info:
        sign_payload({"outer": {name: value}}, [kit.keys[0]])
    assert len(str(info.value).splitlines()) == 1
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
@pytest.mark.parametrize("where", ["envelope", "payload"])
def test_attack_integer_above_int_max_str_digits(kit, digits, where) -> None:
    from oneiric.remote._canonical import parse_canonical

    huge = b"9" * digits
    with pytest.raises(ManifestFormatError, match="outside") as info:
        if where == "envelope":
            verify_envelope(b'{"payload":' + huge + b"}", trusted_keys=kit.trusted[:1])
        else:
            parse_canonical(b'{"version":' + huge + b"}")
    assert len(str(info.value)) < 300  # names the problem, does not echo 100 000 digits
    assert len(str(info.value).splitlines()) == 1


async def test_attack_integer_above_int_max_str_digits_in_state_file(kit, h, https) -> None:
    await _legit_sync(kit, h, https)
    (state,) = kit.cache.glob("state-*.json")
    state.write_bytes(b'{"format": 1, "highest_version": ' + b"9" * 5000 + b"}")
    await _offline_sync_fails_with_state_error(kit, h, https)
