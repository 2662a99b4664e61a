"""Cases 11, 15, 30 and equivocation: the rollback floor and the state file."""

from __future__ import annotations

import json

import pytest

from oneiric.remote import (
    EquivocationError,
    RemoteSync,
    RollbackError,
    StateError,
    TrustedKey,
)

pytestmark = pytest.mark.anyio


async def _sync(kit, resolver, h, data: bytes, **source):
    path = kit.write(data)
    return await RemoteSync(resolver, kit.source(str(path), **source), now=h.fixed_now).sync()


def _state(kit) -> dict:
    (path,) = kit.cache.glob("state-*.json")
    return json.loads(path.read_bytes())


async def test_case11_replay_of_older_version(kit, resolver, h) -> None:
    old = kit.envelope(kit.payload(1))
    await _sync(kit, resolver, h, old)
    await _sync(kit, resolver, h, kit.envelope(kit.payload(2)))
    before = h.snapshot(resolver, kit.cache)
    with pytest.raises(RollbackError):
        await _sync(kit, resolver, h, old)
    assert h.snapshot(resolver, kit.cache) == before
    assert resolver.resolve("adapter", "cache").source.version == "2"
    assert _state(kit)["highest_version"] == 2


async def test_equivocation_same_version_other_bytes(kit, resolver, h) -> None:
    await _sync(kit, resolver, h, kit.envelope(kit.payload(3)))
    before = h.snapshot(resolver, kit.cache)
    other = kit.payload(3)
    other["components"][0]["priority"] = 8
    with pytest.raises(EquivocationError):
        await _sync(kit, resolver, h, kit.envelope(other))
    assert h.snapshot(resolver, kit.cache) == before


async def test_min_version_survives_state_loss(kit, resolver, h, unchanged) -> None:
    with pytest.raises(RollbackError, match="min_version"):
        await _sync(kit, resolver, h, kit.envelope(kit.payload(4)), min_version=5)
    unchanged()


@pytest.mark.parametrize("garbage", [b"{not json", b'{"format": 1}', b"[]",
                                     b'{"format": 1, "repository": "acme", "keyids": [],'
                                     b' "threshold": "1"}'])
async def test_case15_corrupt_state_file(kit, resolver, h, garbage) -> None:
    await _sync(kit, resolver, h, kit.envelope(kit.payload(1)))
    (path,) = kit.cache.glob("state-*.json")
    path.write_bytes(garbage)
    fresh = type(resolver)()
    with pytest.raises(StateError, match="corrupt"):
        await _sync(kit, fresh, h, kit.envelope(kit.payload(2)))
    assert path.read_bytes() == garbage  # never silently reset
    assert fresh.domains() == ()
    assert h.leftovers(kit.cache) == []


async def test_case30_rotation_keeping_threshold_carries_floor(kit, resolver, h) -> None:
    old_keys = kit.trusted[:2]
    v1 = kit.envelope(kit.payload(1), keys=[0, 1])
    await _sync(kit, resolver, h, v1, trusted_keys=old_keys, threshold=1)
    await _sync(kit, resolver, h, kit.envelope(kit.payload(2), keys=[0, 1, 2]),
                trusted_keys=old_keys, threshold=1)
    # rotate: new set {0, 2} keeps one old key = the old threshold -> floor carries over
    new_keys = [kit.trusted[0], kit.trusted[2]]
    fresh = type(resolver)()
    with pytest.raises(RollbackError):
        await _sync(kit, fresh, h, v1, trusted_keys=new_keys, threshold=1)
    assert fresh.domains() == ()
    assert len(list(kit.cache.glob("state-*.json"))) == 1  # the new state was never written


async def test_rotation_without_overlap_resets_floor_to_min_version(kit, resolver, h) -> None:
    await _sync(kit, resolver, h, kit.envelope(kit.payload(5), keys=[0]),
                trusted_keys=kit.trusted[:1])
    new = [kit.trusted[3]]
    fresh = type(resolver)()
    result = await _sync(kit, fresh, h, kit.envelope(kit.payload(3), keys=[3]),
                         trusted_keys=new, min_version=3)
    assert result.version == 3  # recovery from a fast-forward attack
    with pytest.raises(RollbackError):
        await _sync(kit, type(resolver)(), h, kit.envelope(kit.payload(2), keys=[3]),
                    trusted_keys=new, min_version=3)


def test_fingerprint_ignores_urls(kit) -> None:
    a = kit.source("https://a.example/m.json")
    b = kit.source("https://b.example/m.json", mirrors=["https://c.example/m.json"])
    assert a.fingerprint == b.fingerprint
    c = kit.source("https://a.example/m.json", trusted_keys=kit.trusted[:2])
    assert c.fingerprint != a.fingerprint
    assert isinstance(kit.trusted[0], TrustedKey)


@pytest.mark.parametrize("target", ["dangling", "existing"])
async def test_attack_lock_file_symlink_is_not_followed(kit, resolver, h, tmp_path,
                                                        target) -> None:
    """A ``lock`` symlink in the cache dir must not make a sync create or lock another file."""
    path = kit.write(kit.envelope(kit.payload()))
    source = kit.source(str(path))
    planted = tmp_path / "elsewhere" / "planted"
    planted.parent.mkdir()
    if target == "existing":
        planted.write_bytes(b"keep")
    (source.resolved_cache_dir() / "lock").symlink_to(planted)
    with pytest.raises(StateError, match="lock") as info:
        await RemoteSync(resolver, source, now=h.fixed_now).sync()
    assert "\n" not in str(info.value)
    assert resolver.domains() == ()
    assert planted.exists() is (target == "existing")
    assert target == "dangling" or planted.read_bytes() == b"keep"


async def test_status_timestamps_use_the_one_json_format(kit, resolver, h) -> None:
    """``status-*.json`` (what ``oneiric remote status --json`` prints) uses core's format."""
    from datetime import timedelta

    from oneiric.core.helpers import format_timestamp

    moment = h.NOW + timedelta(microseconds=123456)
    path = kit.write(kit.envelope(kit.payload()))
    await RemoteSync(resolver, kit.source(str(path)), now=lambda: moment).sync()
    (status_file,) = kit.cache.glob("status-*.json")
    status = json.loads(status_file.read_bytes())
    assert status["last_attempt"] == status["last_success"] == format_timestamp(moment)
    assert status["last_attempt"].endswith(".123Z")


async def test_registered_versions_are_held_by_the_resolver(kit, resolver, h) -> None:
    """What a sync registered lives in ``resolver.extension``: a new resolver starts empty."""
    from oneiric.core import Resolver

    path = kit.write(kit.envelope(kit.payload()))
    source = kit.source(str(path))
    await RemoteSync(resolver, source, now=h.fixed_now).sync()
    held = resolver.extension("oneiric.remote", dict)
    assert list(held) == [source.repository] and held[source.repository][0] == 1
    fresh = Resolver()
    assert fresh.extension("oneiric.remote", dict) == {}
    again = await RemoteSync(fresh, source, now=h.fixed_now).sync()
    assert again.unchanged and again.registered == 1  # re-registered into the new resolver
