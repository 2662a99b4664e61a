"""Desired state, revisions, the log, compare-and-set, status and acks - on a real Redis."""

from __future__ import annotations

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for
from oneiric.fleet import FleetAdmin, FleetMember, FleetUnavailable, LoggedChange, StaleRevision
from oneiric.testing import PrivateRedis, apoll_until

pytestmark = [pytest.mark.live, pytest.mark.anyio]


def _select(provider: str | None, tenant: str | None = None) -> LoggedChange:
    return LoggedChange(0, "", "select", "adapter", "cache", tenant=tenant, provider=provider,
                  actor="ops@host")


def _activity(state: str, note: str = "") -> LoggedChange:
    return LoggedChange(0, "", "activity", "adapter", "cache", state=state, note=note, actor="ops")


async def test_each_write_is_one_revision_in_state_and_log(admin: FleetAdmin) -> None:
    first = admin.write(_select("redis"))
    assert first.revision == 1 and first.epoch and first.at > 0
    second = admin.write(_activity("paused", "maintenance"))
    third = admin.write(_select("memory", tenant="acme"))
    assert (second.revision, third.revision) == (2, 3)
    assert len({first.epoch, second.epoch, third.epoch}) == 1
    state = admin.desired()
    assert state.revision == 3 and state.epoch == first.epoch
    assert state.selections == {("adapter", "cache", None): "redis",
                                ("adapter", "cache", "acme"): "memory"}
    assert state.activity[("adapter", "cache")]["state"] == "paused"
    admin.write(_activity("active"))  # resume: the decision is removed
    admin.write(_select(None))  # clear: the selection is removed
    state = admin.desired()
    assert state.revision == 5 and state.activity == {}
    assert state.selections == {("adapter", "cache", "acme"): "memory"}
    history = admin.history()
    assert [c.revision for c in history] == [5, 4, 3, 2, 1]
    assert history[-1].provider == "redis" and history[-1].actor == "ops@host"
    assert history[3].note == "maintenance"


async def test_a_stale_compare_and_set_is_refused_with_exit_6(admin: FleetAdmin) -> None:
    admin.write(_select("redis"))
    assert admin.write(_select("memory"), expect_revision=1).revision == 2
    with pytest.raises(StaleRevision, match="at revision 2, not 1; nothing was written") as info:
        admin.write(_select("redis"), expect_revision=1)
    assert exit_code_for(info.value) == 6 and (info.value.expected, info.value.current) == (1, 2)
    assert admin.desired().selections[("adapter", "cache", None)] == "memory"


async def test_status_expires_into_lost_and_acks_are_per_revision(
    admin: FleetAdmin, member: FleetMember,
) -> None:
    await member.publish({"applied_revision": 0, "keys": []})
    (listed,) = admin.instances()
    assert listed["id"] == "web-1" and listed["lost"] is False and listed["keys"] == []
    await member.ack(1, "swapped", "memory -> redis")
    assert admin.acks(1)["web-1"]["result"] == "swapped" and admin.acks(2) == {}
    # no heartbeat for three of them: the status expires; the instance is lost, still listed
    await apoll_until(lambda: admin.instances()[0]["lost"], timeout=30,
                      message="web-1's status expires")
    assert admin.instances()[0]["id"] == "web-1"


async def test_unreachable_redis_is_a_one_line_unavailable_error(
    private_redis: PrivateRedis,
) -> None:
    url = f"redis://ops:hunter2@127.0.0.1:{private_redis.port}/0"
    admin = FleetAdmin(url)
    private_redis.kill()
    with pytest.raises(FleetUnavailable) as info:
        admin.write(_select("redis"))
    assert exit_code_for(info.value) == 5
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)
    admin.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs url="),
    ({"url": "redis://x", "fleet": "no spaces"}, "fleet"),
])
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FleetAdmin(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        FleetMember(**kwargs)  # type: ignore[arg-type]


def test_a_bad_heartbeat_is_refused() -> None:
    with pytest.raises(ConfigError, match="heartbeat must be more than 0"):
        FleetMember("redis://x", heartbeat=0)


async def test_trim_keeps_history_and_never_passes_the_slowest_live_instance(
    admin: FleetAdmin, member: FleetMember,
) -> None:
    for i in range(12):
        admin.write(_activity("paused" if i % 2 else "active"))
    await member.publish({"applied_revision": 4, "keys": []})  # a slow live instance
    assert admin.trim(keep=3) == 4  # revisions 1-4 go; 5 onwards is what it reads next
    assert [c.revision for c in admin.history(limit=100)][-1] == 5
    await member.publish({"applied_revision": 12, "keys": []})
    assert admin.trim(keep=3) == 5  # now only the last three revisions stay
    assert [c.revision for c in admin.history(limit=100)] == [12, 11, 10]
    with pytest.raises(ConfigError, match="history must be an integer"):
        FleetAdmin("redis://x", history=0)


@pytest.mark.parametrize(("fields", "message"), [
    ({"url": "http://redis:6379"}, "redis://, rediss://"),
    ({"fleet": "Shop!"}, "fleet"),
    ({"heartbeat": 0}, "heartbeat"),
    ({"history": 0}, "history"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_plane_settings_are_refused(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from oneiric.fleet._settings import RedisPlaneSettings

    with pytest.raises(ValidationError, match=message):
        RedisPlaneSettings(**fields)  # type: ignore[arg-type]
