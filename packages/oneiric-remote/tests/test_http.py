"""HTTP cases (12, 14, 16-19, 21, 22) against a real HTTPS server on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oneiric.remote import (
    ArtifactDigestError,
    ArtifactSizeError,
    CircuitOpenError,
    DeadlineExceeded,
    DownloadTooLargeError,
    FetchError,
    InsecureURLError,
    RemoteSync,
    RollbackError,
    SyncRetry,
    Timeouts,
)

pytestmark = pytest.mark.anyio


def _with_artifact(kit, pkg: str, urls: list[str], spec: dict[str, Any], version: int = 1):
    return kit.payload(
        version,
        artifacts={"a": {**spec, "urls": urls}},
        components=[{"domain": "adapter", "key": "cache", "provider": pkg.replace("_", "-"),
                     "factory": f"{pkg}:make", "artifact": "a"}],
    )


def _source(kit, https, url: str, **kw: Any):
    return kit.source(url, verify=str(https.ca_path), **kw)


async def test_https_sync_with_artifact(kit, resolver, h, https) -> None:
    wheel, spec = kit.wheel("acme_h1")
    art = https.serve("/a.whl", wheel.read_bytes())
    url = https.serve("/m.json", kit.envelope(_with_artifact(kit, "acme_h1", [art], spec)))
    result = await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    assert result.registered == 1
    winner = resolver.resolve("adapter", "cache")
    assert str(winner.source) == "manifest:acme==1"
    assert (kit.cache / "vendor" / spec["sha256"] / "acme_h1" / "__init__.py").is_file()
    assert "acme_h1" not in __import__("sys").modules  # a sync never imports a factory
    assert oct((kit.cache).stat().st_mode & 0o777) == "0o700"


async def test_case12_same_version_same_process_downloads_nothing(kit, resolver, h, https) -> None:
    wheel, spec = kit.wheel("acme_h12")
    art = https.serve("/a.whl", wheel.read_bytes())
    url = https.serve("/m.json", kit.envelope(_with_artifact(kit, "acme_h12", [art], spec)))
    sync = RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now)
    await sync.sync()
    state_before = h.snapshot(resolver, kit.cache)
    https.hits.clear()
    result = await sync.sync()
    assert (result.unchanged, result.registered) == (True, 0)
    assert https.hits == ["/m.json"]  # the manifest only: no artifact download
    assert h.snapshot(resolver, kit.cache) == state_before


async def test_case14_artifact_fails_then_replay(kit, resolver, h, https) -> None:
    w1, s1 = kit.wheel("acme_h14a")
    _w2, s2 = kit.wheel("acme_h14b")
    https.serve("/1.whl", w1.read_bytes())
    v1 = kit.envelope(_with_artifact(kit, "acme_h14a", [https.url("/1.whl")], s1, 1))
    v2 = kit.envelope(_with_artifact(kit, "acme_h14b", [https.url("/missing.whl")], s2, 2))
    url = https.serve("/m.json", v1)
    sync = RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now)
    await sync.sync()
    https.serve("/m.json", v2)
    path_before = h.snapshot(resolver, kit.cache)["sys.path"]
    with pytest.raises(FetchError):
        await sync.sync()
    assert resolver.resolve("adapter", "cache").source.version == "1"  # active stays N
    assert h.snapshot(resolver, kit.cache)["sys.path"] == path_before
    assert h.leftovers(kit.cache) == []
    https.serve("/m.json", v1)
    with pytest.raises(RollbackError):
        await sync.sync()
    assert resolver.resolve("adapter", "cache").source.version == "1"


@pytest.mark.parametrize("variant", ["endless", "content-length"])
async def test_case16_manifest_too_large(kit, resolver, h, https, unchanged, variant) -> None:
    if variant == "endless":
        route = h.Route(endless=True)
    else:
        route = h.Route(b"{}", content_length=50 * 1024 * 1024)
    url = https.serve("/m.json", route)
    with pytest.raises(DownloadTooLargeError):
        await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    unchanged()


async def test_case17_drip_hits_deadline(kit, resolver, h, https, unchanged) -> None:
    class Clock:
        t = 0.0

        def __call__(self) -> float:
            self.t += 1.0  # one simulated second per look at the clock
            return self.t

    url = https.serve("/m.json", h.Route(drip=0.005))
    source = _source(kit, https, url, timeouts=Timeouts(manifest_deadline=20))
    with pytest.raises(DeadlineExceeded):
        await RemoteSync(resolver, source, now=h.fixed_now, clock=Clock()).sync()
    unchanged()
    assert https.hits == ["/m.json"]  # a deadline is not retried


async def test_case18_503_backoff_and_breaker(kit, resolver, h, https, unchanged, clock) -> None:
    url = https.serve("/m.json", h.Route(b"busy", status=503, headers={"Retry-After": "2"}))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = SyncRetry(attempts=3, base_delay=0.5, breaker_threshold=3, breaker_cooldown=60)
    sync = RemoteSync(resolver, _source(kit, https, url, retry=policy), now=h.fixed_now,
                      clock=clock, sleep=sleep, rng=lambda: 0.0)
    with pytest.raises(FetchError, match="3 attempts"):
        await sync.sync()
    assert https.hits == ["/m.json"] * 3
    assert slept == [2.0, 2.0]  # Retry-After beats the 0.5 s / 1.0 s backoff
    for _ in range(2):
        with pytest.raises(FetchError):
            await sync.sync()
    assert sync.breaker.state == "open"
    hits = len(https.hits)
    with pytest.raises(CircuitOpenError):
        await sync.sync()
    assert len(https.hits) == hits  # open breaker: no request at all
    clock.t += 61
    assert sync.breaker.state == "half-open"
    with pytest.raises(FetchError):
        await sync.sync()
    assert len(https.hits) == hits + 3
    unchanged()
    status = json.loads(next(kit.cache.glob("status-*.json")).read_bytes())
    assert status["last_error_type"] == "FetchError" and status["last_success"] is None


async def test_case18_backoff_without_retry_after_is_jittered_exponential(
    kit, resolver, h, https
) -> None:
    url = https.serve("/m.json", h.Route(b"", status=502))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = SyncRetry(attempts=4, base_delay=1.0, jitter=0.5)
    sync = RemoteSync(resolver, _source(kit, https, url, retry=policy), now=h.fixed_now,
                      sleep=sleep, rng=lambda: 1.0)
    with pytest.raises(FetchError):
        await sync.sync()
    assert slept == [0.5, 1.0, 2.0]


async def test_404_is_not_retried(kit, resolver, h, https) -> None:
    url = https.url("/nothing.json")
    with pytest.raises(FetchError) as info:
        await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    assert info.value.status == 404
    assert https.hits == ["/nothing.json"]


@pytest.mark.parametrize("bad", ["http://127.0.0.1:9/a.whl", "file:///etc/passwd",
                                 "data:application/zip;base64,UEsFBg=="])
async def test_case19_insecure_artifact_urls(kit, resolver, h, https, unchanged, bad) -> None:
    _, spec = kit.wheel("acme_h19")
    url = https.serve("/m.json", kit.envelope(_with_artifact(kit, "acme_h19", [bad], spec)))
    with pytest.raises(InsecureURLError):
        await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    unchanged()
    assert https.hits == ["/m.json"]


async def test_case19_local_artifacts_only_when_allowed(kit, resolver, h, tmp_path) -> None:
    wheel, spec = kit.wheel("acme_h19b")
    payload = _with_artifact(kit, "acme_h19b", [wheel.as_uri()], spec)
    path = kit.write(kit.envelope(payload))
    with pytest.raises(InsecureURLError):
        await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    dev = kit.source(str(path), allow_local_artifacts=True)
    assert (await RemoteSync(resolver, dev, now=h.fixed_now).sync()).registered == 1


@pytest.mark.parametrize("what", ["manifest", "artifact"])
async def test_case19_redirect_to_http(kit, resolver, h, https, unchanged, what) -> None:
    to_http = h.Route(status=302, headers={"Location": f"http://127.0.0.1:{https.port}/x"})
    if what == "manifest":
        url = https.serve("/m.json", to_http)
    else:
        _, spec = kit.wheel("acme_h19r")
        https.serve("/a.whl", to_http)
        url = https.serve("/m.json", kit.envelope(
            _with_artifact(kit, "acme_h19r", [https.url("/a.whl")], spec)))
    with pytest.raises(InsecureURLError):
        await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    if what == "manifest":
        unchanged()
    assert resolver.domains() == ()


async def test_redirects_followed_up_to_three(kit, resolver, h, https) -> None:
    data = kit.envelope(kit.payload())
    https.serve("/final.json", data)
    for i in range(3):
        target = https.url(f"/r{i + 1}") if i < 2 else https.url("/final.json")
        https.serve(f"/r{i}", h.Route(status=307, headers={"Location": target}))
    ok = await RemoteSync(resolver, _source(kit, https, https.url("/r0")), now=h.fixed_now).sync()
    assert ok.version == 1
    https.serve("/s0", h.Route(status=307, headers={"Location": https.url("/r0")}))
    with pytest.raises(FetchError, match="redirected more than 3"):
        await RemoteSync(type(resolver)(), _source(kit, https, https.url("/s0"),
                                                   cache_dir=kit.tmp / "other"),
                         now=h.fixed_now).sync()


async def test_case21_tampered_mirror_then_good(kit, resolver, h, https) -> None:
    wheel, spec = kit.wheel("acme_h21")
    good = wheel.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    https.serve("/bad.whl", bytes(bad))
    https.serve("/good.whl", good)
    payload = _with_artifact(kit, "acme_h21", [https.url("/bad.whl"), https.url("/good.whl")], spec)
    envelope = kit.envelope(payload)
    tampered = json.loads(envelope)
    tampered["signatures"][0]["sig"] = tampered["signatures"][0]["sig"][::-1]
    https.serve("/m1.json", json.dumps(tampered).encode())
    https.serve("/m2.json", envelope)
    source = _source(kit, https, https.url("/m1.json"), mirrors=[https.url("/m2.json")])
    result = await RemoteSync(resolver, source, now=h.fixed_now).sync()
    assert result.version == 1
    assert sorted(p.name for p in (kit.cache / "blobs").iterdir()) == [spec["sha256"]]
    assert h.leftovers(kit.cache) == []
    assert https.hits == ["/m1.json", "/m2.json", "/bad.whl", "/good.whl"]


@pytest.mark.parametrize("variant", ["digest", "larger", "smaller"])
async def test_case22_digest_and_size(kit, resolver, h, https, unchanged, variant) -> None:
    wheel, spec = kit.wheel("acme_h22")
    data = wheel.read_bytes()
    if variant == "digest":
        spec = {**spec, "sha256": "0" * 64}
        error: type = ArtifactDigestError
    elif variant == "larger":
        data = data + b"\0" * 100
        error = ArtifactSizeError
    else:
        data = data[:-10]
        error = ArtifactSizeError
    https.serve("/1.whl", data)
    https.serve("/2.whl", data)
    payload = _with_artifact(kit, "acme_h22", [https.url("/1.whl"), https.url("/2.whl")], spec)
    url = https.serve("/m.json", kit.envelope(payload))
    with pytest.raises(error):
        await RemoteSync(resolver, _source(kit, https, url), now=h.fixed_now).sync()
    assert resolver.domains() == ()
    assert list((kit.cache / "blobs").iterdir()) == []
    assert h.leftovers(kit.cache) == []
    assert https.hits.count("/2.whl") == 1  # every mirror tried, none retried


def test_retry_policy_alias_is_deprecated_and_is_sync_retry() -> None:
    import oneiric.remote

    with pytest.warns(DeprecationWarning, match="use oneiric.remote.SyncRetry"):
        alias = oneiric.remote.RetryPolicy
    assert alias is SyncRetry
