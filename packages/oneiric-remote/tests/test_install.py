"""Cases 13, 23, 28, 29, 31, 32, 33 and retention: artifacts, restarts and several processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import resolve_factory
from oneiric.remote import (
    ExpiredManifestError,
    FetchError,
    RemoteSync,
    SyncRetry,
)
from oneiric.testing import free_port

pytestmark = pytest.mark.anyio

CHILD = r'''
import asyncio, json, sys
from datetime import datetime
from oneiric.core import Resolver, resolve_factory
from oneiric.remote import RemoteSource, RemoteSync, TrustedKey

cfg = json.loads(sys.argv[1])
src = RemoteSource(cfg["url"], repository=cfg["repository"],
                   trusted_keys=[TrustedKey(**k) for k in cfg["keys"]],
                   cache_dir=cfg["cache"], verify=cfg["ca"], factory_allowlist=cfg["allow"])
now = datetime.fromisoformat(cfg["now"])
resolver = Resolver()

async def main():
    try:
        result = await RemoteSync(resolver, src, now=lambda: now).sync()
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return
    out = {"result": result.as_dict()}
    if cfg.get("resolve"):
        domain, key = cfg["resolve"]
        winner = resolver.resolve(domain, key)
        out["source"] = str(winner.source)
        out["explain"] = resolver.explain(domain, key).as_dict()
        out["value"] = resolve_factory(winner)()
    print(json.dumps(out))

asyncio.run(main())
'''


def _child_args(kit, https, url: str, resolve: tuple[str, str] | None = None) -> list[str]:
    cfg = {
        "url": url, "repository": kit.repository, "keys": [kit.trusted[0].as_dict()],
        "cache": str(kit.cache), "ca": str(https.ca_path), "allow": ["json"],
        "now": kit_now(), "resolve": resolve,
    }
    script = kit.tmp / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), json.dumps(cfg)]


def kit_now() -> str:
    from datetime import UTC, datetime

    return datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).isoformat()


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _artifact_manifest(kit, https, version: int, pkgs: list[str], *, bodies: dict | None = None,
                       broken: set[str] = frozenset(), requires: dict | None = None):
    artifacts, components = {}, []
    for pkg in pkgs:
        default = f"# version {version}\ndef make():\n    return {pkg!r}\n"
        body = (bodies or {}).get(pkg, default)
        wheel, spec = kit.wheel(pkg, body, requires=tuple((requires or {}).get(pkg, ())))
        path = f"/{pkg}-{version}.whl"
        if pkg not in broken:
            https.serve(path, wheel.read_bytes())
        aid = pkg.replace("_", "-")
        artifacts[aid] = {**spec, "urls": [https.url(path)]}
        components.append({"domain": "adapter", "key": aid, "provider": "remote",
                           "factory": f"{pkg}:make", "artifact": aid})
    return kit.payload(version, artifacts=artifacts, components=components)


def _source(kit, https, url: str, **kw: Any):
    return kit.source(url, verify=str(https.ca_path), **kw)


async def _no_sleep(_: float) -> None:
    return None


async def test_case13_fresh_process_resolves_again_without_download(
    kit, resolver, h, https
) -> None:
    url = https.serve("/m.json", kit.envelope(_artifact_manifest(kit, https, 1, ["acme_i13"])))
    await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    https.hits.clear()
    out = _run_child(_child_args(kit, https, url, ("adapter", "acme-i13")))
    assert out["result"]["unchanged"] is True and out["result"]["registered"] == 1
    assert out["source"] == "manifest:acme==1"
    assert out["value"] == "acme_i13"
    assert https.hits == ["/m.json"]  # no artifact download in the fresh process


@pytest.mark.parametrize("what", ["blob", "vendor"])
async def test_case23_modified_cache_detected_and_refetched(kit, resolver, h, https, what) -> None:
    url = https.serve("/m.json", kit.envelope(_artifact_manifest(kit, https, 1, ["acme_i23"])))
    await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    (blob,) = (kit.cache / "blobs").iterdir()
    vendor_file = kit.cache / "vendor" / blob.name / "acme_i23" / "__init__.py"
    original = vendor_file.read_bytes()
    target = blob if what == "blob" else vendor_file
    os.chmod(target.parent, 0o700)
    os.chmod(target, 0o600)
    target.write_bytes(b"def make():\n    return 'evil'\n")
    https.hits.clear()
    fresh = type(resolver)()  # a new start: a new RemoteSync re-verifies the cache
    result = await RemoteSync(fresh, _source(kit, https, url), now=h.fixed_now).sync()
    assert result.registered == 1
    assert vendor_file.read_bytes() == original
    downloads = [p for p in https.hits if p.endswith(".whl")]
    assert downloads == (["/acme_i23-1.whl"] if what == "blob" else [])


async def test_case23_modified_blob_offline_is_refused(kit, resolver, h, https) -> None:
    url = https.serve("/m.json", kit.envelope(_artifact_manifest(kit, https, 1, ["acme_i23o"])))
    await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    (blob,) = (kit.cache / "blobs").iterdir()
    os.chmod(blob, 0o600)
    blob.write_bytes(b"tampered")
    https.close()
    fresh = type(resolver)()
    path_before = list(sys.path)
    with pytest.raises(FetchError):
        await RemoteSync(fresh, _source(kit, https, url), now=h.fixed_now, sleep=_no_sleep).sync()
    assert fresh.domains() == ()
    assert sys.path == path_before


async def test_case28_watch_third_artifact_fails(kit, resolver, h, https) -> None:
    pkgs = ["acme_w1", "acme_w2", "acme_w3"]
    url = https.serve("/m.json", kit.envelope(_artifact_manifest(kit, https, 1, pkgs)))
    sync = RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now, sleep=_no_sleep)
    await sync.watch(0, iterations=1)
    before = h.snapshot(resolver, kit.cache)
    v2 = _artifact_manifest(kit, https, 2, pkgs, broken={"acme_w3"})
    https.serve("/m.json", kit.envelope(v2))
    await sync.watch(0, iterations=2)
    assert h.snapshot(resolver, kit.cache) == before
    assert h.leftovers(kit.cache) == []
    assert {c.source.version for c in sync.resolver_candidates()} == {"1"}
    status = json.loads(next(kit.cache.glob("status-*.json")).read_bytes())
    assert status["version"] == 1 and "404" in status["last_error"]


@pytest.mark.parametrize("expired", [False, True])
async def test_case29_offline_cold_start(kit, resolver, h, https, expired) -> None:
    payload = _artifact_manifest(kit, https, 1, ["acme_i29"])
    url = https.serve("/m.json", kit.envelope(payload))
    await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    offline = f"https://127.0.0.1:{free_port()}/m.json"
    source = _source(kit, https, offline, retry=SyncRetry(attempts=2))
    later = h.NOW + timedelta(days=30 if expired else 1)
    fresh = type(resolver)()
    sync = RemoteSync(fresh, source, now=lambda: later, sleep=_no_sleep)
    if expired:
        with pytest.raises(ExpiredManifestError):
            await sync.sync()
        assert fresh.domains() == ()
        return
    result = await sync.sync()
    assert (result.offline, result.version, result.registered) == (True, 1, 1)
    assert resolve_factory(fresh.resolve("adapter", "acme-i29"))() == "acme_i29"
    status = json.loads(next(kit.cache.glob("status-*.json")).read_bytes())
    assert status["offline"] is True and status["last_error"]


async def test_case31_two_processes_at_once(kit, h, https) -> None:
    url = https.serve("/m.json", kit.envelope(_artifact_manifest(kit, https, 1, ["acme_i31"])))
    args = _child_args(kit, https, url, ("adapter", "acme-i31"))
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert all("error" not in o for o in outs), outs
    assert sorted(o["result"]["unchanged"] for o in outs) == [False, True]
    assert all(o["value"] == "acme_i31" for o in outs)
    assert [p for p in https.hits if p.endswith(".whl")] == ["/acme_i31-1.whl"]
    assert len(list((kit.cache / "vendor").iterdir())) == 1
    (state,) = kit.cache.glob("state-*.json")
    doc = json.loads(state.read_bytes())
    assert (doc["highest_version"], doc["active_version"]) == (1, 1)
    assert h.leftovers(kit.cache) == []


async def test_case32_missing_requirement_unavailable(kit, resolver, h, https) -> None:
    payload = _artifact_manifest(
        kit, https, 1, ["acme_i32a", "acme_i32b"],
        requires={"acme_i32a": ["definitely-not-installed-xyz>=1", "pytest"]},
    )
    url = https.serve("/m.json", kit.envelope(payload))
    result = await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    assert result.registered == 2
    assert result.unavailable == (
        "adapter/acme-i32a/remote: requires definitely-not-installed-xyz>=1 which is not "
        "installed",
    )
    explanation = resolver.explain("adapter", "acme-i32a").as_dict()
    (row,) = explanation["candidates"]
    assert row["reason"] == (
        "vetoed by oneiric-remote: requires definitely-not-installed-xyz>=1 which is not "
        "installed"
    )
    assert resolve_factory(resolver.resolve("adapter", "acme-i32b"))() == "acme_i32b"


async def test_case33_restart_required(kit, resolver, h, https) -> None:
    v1 = _artifact_manifest(kit, https, 1, ["acme_i33"])
    url = https.serve("/m.json", kit.envelope(v1))
    sync = RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now)
    assert (await sync.sync()).restart_required is False
    assert resolve_factory(resolver.resolve("adapter", "acme-i33"))() == "acme_i33"
    v2 = _artifact_manifest(kit, https, 2, ["acme_i33"],
                            bodies={"acme_i33": "def make():\n    return 'v2'\n"})
    https.serve("/m.json", kit.envelope(v2))
    result = await sync.sync()
    assert (result.version, result.restart_required) == (2, True)
    assert sys.modules["acme_i33"].make() == "acme_i33"  # old code until the next start


async def test_retention_keeps_last_three_versions(kit, resolver, h, https) -> None:
    sync = None
    for version in range(1, 6):
        payload = _artifact_manifest(kit, https, version, [f"acme_k{version}"])
        url = https.serve("/m.json", kit.envelope(payload))
        sync = sync or RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now)
        await sync.sync()
    blobs = sorted(p.name for p in (kit.cache / "blobs").iterdir())
    vendors = sorted(p.name for p in (kit.cache / "vendor").iterdir())
    assert len(blobs) == 3 and blobs == vendors
    vendor_paths = [p for p in sys.path if str(kit.cache) in p]
    assert len(vendor_paths) == 1 and Path(vendor_paths[0]).name in blobs
