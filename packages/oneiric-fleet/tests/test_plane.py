"""The ``redis`` control plane end to end: a real Host follows it, the operator side waits.

A ``Host`` whose settings select ``[control.selections] plane = "redis"``
applies the fleet's selections before activating anything, swaps when an
operator selects another provider and acknowledges ``swapped``; ``missing``
for a provider it does not have; ``paused`` at once, ``drained`` when its
leases end, ``resumed``; a failing provider's swap acknowledges
``health_failed`` and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Candidate, ComponentPaused, Resolver
from oneiric.fleet import StaleRevision
from oneiric.fleet._plane import RedisControlPlane
from oneiric.fleet._settings import RedisPlaneSettings
from oneiric.lifecycle import Host
from oneiric.testing import PrivateRedis, apoll_until

pytestmark = [pytest.mark.live, pytest.mark.anyio]


class Cache:
    def __init__(self, name: str, healthy: bool = True) -> None:
        self.name = name
        self.healthy = healthy

    def health(self) -> bool:
        return self.healthy


def register(resolver: Resolver) -> None:
    resolver.register(Candidate("adapter", "cache", "memory", lambda: Cache("memory")))
    resolver.register(Candidate("adapter", "cache", "redis", lambda: Cache("redis")))
    resolver.register(Candidate("adapter", "cache", "broken",
                                lambda: Cache("broken", healthy=False)))


def settings_dir(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(textwrap.dedent(f"""
        [control.selections]
        plane = "redis"
        [control.provider_settings.plane.redis]
        url = "{url}"
        fleet = "shop"
        heartbeat = 0.2
        [adapter.selections]
        cache = "memory"
        [lifecycle]
        grace_period = 0
        health_timeout = 1
    """))
    return config


def operator(url: str) -> RedisControlPlane:
    return RedisControlPlane(RedisPlaneSettings(url=url, fleet="shop", heartbeat=0.2))


def bound(host: Host) -> str:
    instance: Any = host.lifecycle.status()["keys"][0]["bound"]
    return str(instance)


async def test_a_host_follows_the_fleet_and_acknowledges(
    tmp_path: Path, private_redis: PrivateRedis,
) -> None:
    ops = operator(private_redis.url)
    ops.select("adapter", "cache", "redis")  # before the host starts: it starts with it
    async with Host(settings_dir(tmp_path, private_redis.url), state_dir=tmp_path / "state",
                    plugins=True, watch=False, app=register,
                    activate=["adapter/cache"]) as host:
        assert host.control_plane.provider == "redis"
        assert bound(host) == "redis"
        assert host.lifecycle.status()["keys"][0]["swaps"] == 0  # started with it, no swap
        await apoll_until(lambda: ops.instances().documents, message="the host reports")
        (doc,) = ops.instances().documents
        assert doc["control_plane"]["state"] == "ok" and doc["applied_revision"] == 1

        change = ops.select("adapter", "cache", "memory")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert (result.result, result.detail) == ("swapped", "redis -> memory")
        assert bound(host) == "memory"

        change = ops.select("adapter", "cache", "nowhere")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "missing" and bound(host) == "memory"

        change = ops.select("adapter", "cache", "broken")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "health_failed" and bound(host) == "memory"

        change = ops.set_activity("adapter", "cache", "paused", note="maintenance")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "paused" and change.previous == "active"
        with pytest.raises(ComponentPaused):
            async with host.lease("adapter", "cache"):
                pass

        change = ops.set_activity("adapter", "cache", "draining")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "drained"

        change = ops.set_activity("adapter", "cache", "active")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "resumed"
        async with host.lease("adapter", "cache") as cache:
            assert cache.name == "memory"

        desired = ops.desired()
        assert desired.selection("adapter", "cache") == "broken" and not desired.activity
        assert ops.describe() == {"provider": "redis", "state": "ok", "revision": 7}
    assert ops.instances(include_lost=True).documents == ()  # a clean stop leaves
    ops.close()


async def test_compare_and_set_and_the_reserved_domain(private_redis: PrivateRedis) -> None:
    from oneiric.core import OneiricError
    from oneiric.core.helpers import exit_code_for

    ops = operator(private_redis.url)
    first = ops.select("adapter", "cache", "redis", expect_revision=0)
    assert first.revision == 1 and first.previous is None and first.action == "select"
    with pytest.raises(StaleRevision) as info:
        ops.select("adapter", "cache", "memory", expect_revision=0)
    assert exit_code_for(info.value) == 6
    cleared = ops.select("adapter", "cache", None)
    assert (cleared.action, cleared.previous) == ("clear", "redis")
    with pytest.raises(OneiricError) as refused:
        ops.set_activity("control", "plane", "paused")
    assert exit_code_for(refused.value) == 6
    ops.close()


async def test_an_unreachable_fleet_at_start_keeps_the_settings_selection(
    tmp_path: Path, private_redis: PrivateRedis,
) -> None:
    url = private_redis.url
    private_redis.kill()
    async with Host(settings_dir(tmp_path, url), state_dir=tmp_path / "state",
                    watch=False, app=register, activate=["adapter/cache"]) as host:
        assert bound(host) == "memory"
        assert host.control_plane.describe()["state"] == "unreachable"


async def test_the_documented_acl_users_instance_cannot_change_desired_state(
    tmp_path: Path, private_redis: PrivateRedis,
) -> None:
    """docs/fleet.md's two ACL users, verbatim: the fleet works, the instance cannot steer it."""
    import redis

    admin = redis.Redis.from_url(private_redis.url)
    admin.execute_command(
        "ACL", "SETUSER", "operator", "on", ">operator-secret", "resetkeys",
        "~oneiric:v1:shop:*", "+@all", "-@dangerous")
    admin.execute_command(
        "ACL", "SETUSER", "instance", "on", ">instance-secret", "resetkeys",
        "%R~oneiric:v1:shop:*", "%W~oneiric:v1:shop:status:*", "%W~oneiric:v1:shop:acks:*",
        "%W~oneiric:v1:shop:seen", "+@all", "-@dangerous", "-@scripting")
    port = private_redis.port
    instance_url = f"redis://instance:instance-secret@127.0.0.1:{port}/0"
    ops = operator(f"redis://operator:operator-secret@127.0.0.1:{port}/0")
    async with Host(settings_dir(tmp_path, instance_url), state_dir=tmp_path / "state",
                    watch=False, app=register, activate=["adapter/cache"]) as host:
        await apoll_until(lambda: ops.instances().documents, message="the instance reports")
        change = ops.select("adapter", "cache", "redis")
        (result,) = await asyncio.to_thread(ops.wait, change, timeout=30)
        assert result.result == "swapped" and bound(host) == "redis"
    as_instance = redis.Redis.from_url(instance_url)
    for attempt in (lambda: as_instance.hset("oneiric:v1:shop:desired", "x", "y"),
                    lambda: as_instance.hset("oneiric:v1:shop:meta", "revision", "0"),
                    lambda: as_instance.xadd("oneiric:v1:shop:log", {"entry": "{}"}),
                    lambda: as_instance.eval("return 1", 0)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    ops.close()
