"""The Follower on a real Redis: in order, nothing lost, never told to unbind.

Start -> relist; each write -> one ``Changed`` in revision order; a log
trimmed below the applied revision -> relist; Redis killed -> ``unreachable``
then, once back, a relist (the state written meanwhile is not lost); Redis
restarted empty or written under a new epoch -> ``regressed`` and nothing
applied until an operator adopts the epoch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from oneiric.fleet import (
    Changed,
    Condition,
    FleetAdmin,
    FleetMember,
    Follower,
    LoggedChange,
    Relisted,
)
from oneiric.testing import PrivateRedis, apoll_until

pytestmark = [pytest.mark.live, pytest.mark.anyio]


def _pause(key: str) -> LoggedChange:
    return LoggedChange(0, "", "activity", "adapter", key, state="paused", actor="ops")


class Recorder:
    """Runs a Follower in the background and keeps every event it yields."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.events: list[Any] = []

    async def run(self) -> None:
        async for event in self.follower.events():
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def conditions(self) -> list[str]:
        return [e.state for e in self.of(Condition)]


@asynccontextmanager
async def following(member: FleetMember) -> AsyncIterator[Recorder]:
    recorder = Recorder(Follower(member, block=0.1, verify_every=0.2,
                                 sleep=lambda s: asyncio.sleep(min(s, 0.05))))
    task = asyncio.ensure_future(recorder.run())
    try:
        yield recorder
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_relist_then_every_change_in_order(admin: FleetAdmin, member: FleetMember) -> None:
    admin.write(_pause("a"))
    async with following(member) as seen:
        await apoll_until(lambda: seen.of(Relisted), message="the first relist")
        assert seen.of(Relisted)[0].state.revision == 1
        for key in ("b", "c", "d"):
            admin.write(_pause(key))
        await apoll_until(lambda: len(seen.of(Changed)) == 3, message="three changes")
        assert [e.change.revision for e in seen.of(Changed)] == [2, 3, 4]
        assert seen.follower.applied == 4 and seen.conditions() == []


class GatedMember(FleetMember):
    """Reads the log only while the gate is open: the test decides what was missed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self, after: int, *, block: float, count: int = 100) -> list[LoggedChange]:
        await self.gate.wait()
        return await super().read(after, block=block, count=count)


async def test_a_trimmed_log_below_the_applied_revision_means_a_relist(
    admin: FleetAdmin, private_redis: PrivateRedis,
) -> None:
    import redis

    member = GatedMember(private_redis.url, fleet="shop", instance="web-1")
    admin.write(_pause("a"))
    async with following(member) as seen:
        await apoll_until(lambda: seen.follower.applied == 1, message="the first relist")
        member.gate.clear()
        await asyncio.sleep(0.3)  # let a read in progress finish (it returns nothing)
        for key in ("b", "c", "d"):
            admin.write(_pause(key))
        client = redis.Redis.from_url(private_redis.url)
        client.xtrim(admin.keys.log, minid="3-1", approximate=False)  # revision 2 is gone
        member.gate.set()
        await apoll_until(lambda: seen.follower.applied == 4, message="caught up")
        assert len(seen.of(Relisted)) == 2 and not seen.of(Changed)
        assert set(seen.of(Relisted)[-1].state.activity) == {
            ("adapter", k) for k in "abcd"}
    await member.aclose()


async def test_redis_down_then_back_loses_nothing(
    admin: FleetAdmin, member: FleetMember, private_redis: PrivateRedis,
) -> None:
    admin.write(_pause("a"))
    async with following(member) as seen:
        await apoll_until(lambda: seen.of(Relisted), message="the first relist")
        private_redis.pause()
        await apoll_until(lambda: "unreachable" in seen.conditions(), timeout=60,
                          message="the follower notices")
        private_redis.resume()
        admin.write(_pause("b"))  # written right after the outage
        await apoll_until(lambda: seen.follower.applied == 2, timeout=60, message="caught up")
        assert seen.conditions()[-1] == "ok"
        applied = {k for e in seen.of(Relisted) for k in e.state.activity}
        applied |= {("adapter", e.change.key) for e in seen.of(Changed)}
        assert applied == {("adapter", "a"), ("adapter", "b")}


async def test_a_wiped_redis_regresses_and_nothing_applies_until_adopted(
    admin: FleetAdmin, member: FleetMember, private_redis: PrivateRedis,
) -> None:
    import redis

    admin.write(_pause("a"))
    async with following(member) as seen:
        await apoll_until(lambda: seen.of(Relisted), message="the first relist")
        old_epoch = seen.follower.epoch
        private_redis.kill()
        private_redis.start()  # empty: no state, no epoch
        await apoll_until(lambda: "regressed" in seen.conditions(), timeout=60,
                          message="the follower reports regressed")
        relists = len(seen.of(Relisted))
        admin.write(_pause("z"))  # under a new epoch
        await asyncio.sleep(0.5)
        assert len(seen.of(Relisted)) == relists and not seen.of(Changed)  # nothing applied
        assert seen.follower.condition == "regressed" and seen.follower.epoch == old_epoch
        client = redis.Redis.from_url(private_redis.url)
        client.hset(admin.keys.meta, "adopted", admin.desired().epoch or "")  # what adopt does
        await apoll_until(lambda: seen.follower.condition == "ok", timeout=60,
                          message="adopted")
        assert seen.follower.epoch != old_epoch
        assert set(seen.of(Relisted)[-1].state.activity) == {("adapter", "z")}
