"""The Redis Streams transport across real processes (issue #15's runtime acceptance).

Each consumer is a real ``python`` process running an ``EventDispatcher``
over ``RedisStreamsTransport`` against the test's own redis-server; its
handler appends ``start|done <consumer> <event id>`` lines to a log file
(one ``O_APPEND`` write each).  Outcomes are read from that log and from
Redis, polled with a generous ceiling - never timed.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.testing import apoll_until, poll_until

pytestmark = [pytest.mark.anyio, pytest.mark.live]

CONSUMER = '''
import asyncio, os, sys

from oneiric.core import Resolver
from oneiric.lifecycle import LifecycleManager
from oneiric.runtime import EventDispatcher, RedisStreamsTransport

url, name, mode, log = sys.argv[1:5]


def write(line):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


async def handle(event, context):
    write(f"start {name} {event.id}")
    if mode == "block":
        await asyncio.sleep(3600)  # held until the process is killed (or times out)
    await asyncio.sleep(0.02)
    write(f"done {name} {event.id}")


async def main():
    transport = RedisStreamsTransport(url, fleet="p", consumer=name, min_idle="4s",
                                      claim_every="0.2s", block="0.2s", batch=1)
    lifecycle = LifecycleManager(Resolver(), activity_store=False, write_status=False)
    events = EventDispatcher(lifecycle, transport=transport, dead_letters=False)
    events.subscribe("work", handle, topics="jobs.*", timeout="3s")
    await transport.ensure_groups(["work"])
    write(f"ready {name} -")
    await events.consume(workers=4 if mode == "block" else 1)


asyncio.run(main())
'''


class Consumers:
    """Start consumer processes and read what their handlers logged."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.script = tmp / "consumer.py"
        self.script.write_text(CONSUMER)
        self.log = tmp / "handled.log"
        self.url = url
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, mode: str = "work") -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, str(self.script), self.url, name, mode, str(self.log)],
            env={**os.environ}, stdout=subprocess.DEVNULL,
        )
        self.processes.append(process)
        poll_until(lambda: f"ready {name} -" in self.lines(), message=f"consumer {name} ready")
        return process

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def ids(self, kind: str, name: str | None = None) -> collections.Counter[str]:
        return collections.Counter(
            parts[2] for parts in (line.split() for line in self.lines())
            if parts[0] == kind and (name is None or parts[1] == name))


@pytest.fixture
def consumers(tmp_path: Path, private_redis: Any) -> Iterator[Consumers]:
    made = Consumers(tmp_path, private_redis.url)
    yield made
    for process in made.processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def publish(url: str, count: int) -> list[str]:
    """Publish ``count`` events from this process (a dispatcher with no handlers)."""
    from oneiric.core import Resolver
    from oneiric.lifecycle import LifecycleManager
    from oneiric.runtime import EventDispatcher, RedisStreamsTransport

    transport = RedisStreamsTransport(url, fleet="p")
    lifecycle = LifecycleManager(Resolver(), activity_store=False, write_status=False)
    async with EventDispatcher(lifecycle, transport=transport, dead_letters=False) as events:
        ids = [await events.publish("jobs.run", {"n": n}) for n in range(count)]
    await transport.aclose()
    await lifecycle.shutdown()
    return ids


async def pending(url: str) -> int:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        summary = await client.xpending("oneiric:v1:p:events", "p:work")
        return int(summary["pending"])
    finally:
        await client.aclose()


async def test_two_consumer_processes_share_a_group_each_event_once(
    consumers: Consumers, private_redis: Any
) -> None:
    consumers.start("a")
    consumers.start("b")
    ids = await publish(private_redis.url, 30)
    await apoll_until(lambda: len(consumers.ids("done")) == 30, message="30 events handled")
    done = consumers.ids("done")
    assert set(done) == set(ids) and set(done.values()) == {1}
    assert consumers.ids("done", "a") and consumers.ids("done", "b")  # both took part
    await apoll_until(lambda: none_pending(private_redis.url), message="all acked")


async def none_pending(url: str) -> bool:
    return await pending(url) == 0


async def test_sigkilled_consumer_s_unacked_events_are_taken_over_after_min_idle(
    consumers: Consumers, private_redis: Any
) -> None:
    doomed = consumers.start("doomed", mode="block")
    ids = await publish(private_redis.url, 3)
    await apoll_until(lambda: set(consumers.ids("start", "doomed")) == set(ids),
                      message="the doomed consumer holds all three")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    assert await pending(private_redis.url) == 3  # un-acked: still pending on the dead consumer
    consumers.start("heir")
    await apoll_until(lambda: set(consumers.ids("done", "heir")) == set(ids),
                      message="the heir processed every event after min_idle")
    assert all(n >= 1 for n in consumers.ids("done", "heir").values())
    assert not consumers.ids("done", "doomed")
    await apoll_until(lambda: none_pending(private_redis.url), message="all acked")
