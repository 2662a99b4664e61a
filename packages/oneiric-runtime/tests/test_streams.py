"""The Redis Streams transport against a real redis-server each test owns (``private_redis``).

In one process: a round trip, two groups each getting an event once, two
consumers of one group sharing the work, dead letters after N deliveries
moved atomically, trimming that never drops what a group still needs, dedupe
on a real redelivery, a server killed and restarted under a consumer, and
every bad setting refused in one line.  Real processes: test_streams_processes.py.
Nothing here asserts a duration: states are polled with a generous ceiling.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for
from oneiric.runtime import EventDispatcher, EventTransportError, RedisStreamsTransport
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

#: Fast enough for tests; handler timeouts below stay under min_idle.
FAST = {"fleet": "t", "min_idle": "1s", "claim_every": "0.1s", "block": "0.1s"}


@pytest.fixture
async def started() -> AsyncIterator[Callable[[EventDispatcher, int], None]]:
    """``start(dispatcher, workers)``: its consumers run until the test ends."""
    tasks: list[asyncio.Task[None]] = []
    transports: list[Any] = []

    def start(dispatcher: EventDispatcher, workers: int = 2) -> None:
        tasks.append(asyncio.ensure_future(dispatcher.consume(workers)))
        transports.append(dispatcher.transport)

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for transport in transports:
        await transport.aclose()


def transport(url: str, **options: Any) -> RedisStreamsTransport:
    return RedisStreamsTransport(url, **{**FAST, **options})


async def groups_ready(dispatcher: EventDispatcher) -> None:
    """The consumer groups exist (a group created later starts at ``$``, as in production)."""
    t = dispatcher.transport
    await t.ensure_groups(t._wanted())


@pytest.mark.live
async def test_round_trip_and_each_group_gets_the_event_once(
    private_redis: Any, make_dispatcher: Any, started: Any
) -> None:
    seen: list[tuple[str, str]] = []
    d = make_dispatcher(transport=transport(private_redis.url))
    d.subscribe("audit", lambda e, c: seen.append(("audit", e.id)), topics="orders.#",
                timeout="0.5s")
    d.subscribe("ship", lambda e, c: seen.append(("ship", e.id)), topics="orders.paid",
                timeout="0.5s")
    d.subscribe("refund", lambda e, c: seen.append(("refund", e.id)), topics="orders.refunded",
                timeout="0.5s")
    await groups_ready(d)
    started(d)
    event_id = await d.publish("orders.paid", {"order": 1})
    await apoll_until(lambda: d.stats()["acked"] == 3, message="three groups acked")
    assert sorted(seen) == [("audit", event_id), ("ship", event_id)]  # refund: acked, not run
    assert d.stats()["transport"] == "redis" and d.stats()["redis"] == "ok"
    await apoll_until(lambda: d.stats()["pending"] == 0, message="nothing pending")


@pytest.mark.live
async def test_two_consumers_of_one_group_share_the_work_each_event_once(
    private_redis: Any, make_dispatcher: Any, started: Any
) -> None:
    runs: collections.Counter[str] = collections.Counter()
    by: dict[str, set[str]] = {"a": set(), "b": set()}
    dispatchers = []
    for name in ("a", "b"):
        d = make_dispatcher(transport=transport(private_redis.url, consumer=name))

        async def work(event: Any, context: Any, name: str = name) -> None:
            runs[event.id] += 1
            by[name].add(event.id)
            await asyncio.sleep(0.01)  # let the other consumer read too

        d.subscribe("mail", work, topics="orders.*", timeout="0.5s")
        await groups_ready(d)
        dispatchers.append(d)
    for d in dispatchers:
        started(d, 2)
    ids = [await dispatchers[0].publish("orders.paid", {"n": n}) for n in range(40)]
    await apoll_until(lambda: len(runs) == 40, message="all 40 handled")
    await apoll_until(lambda: sum(d.stats()["acked"] for d in dispatchers) == 40,
                      message="all acked")
    assert set(runs) == set(ids) and set(runs.values()) == {1}
    assert by["a"] and by["b"]  # both consumers took part


@pytest.mark.live
async def test_always_failing_handler_is_dead_lettered_after_n_deliveries_atomically(
    private_redis: Any, make_dispatcher: Any, started: Any
) -> None:
    attempts: list[str] = []

    def broken(event: Any, context: Any) -> None:
        attempts.append(event.id)
        raise RuntimeError("ledger down")

    t = transport(private_redis.url, max_deliveries=3, min_idle="0.3s", claim_every="0.05s",
                  block="0.05s")
    d = make_dispatcher(transport=t)
    d.subscribe("ledger", broken, topics="pay.*", timeout="0.2s")
    await groups_ready(d)
    started(d)
    event_id = await d.publish("pay.captured", {"amount": 5})
    letters = await apoll_until(lambda: t.dead_letters("ledger"), message="a dead letter")
    assert len(attempts) == 3 and set(attempts) == {event_id}
    (letter,) = letters
    assert letter["event_id"] == event_id and letter["deliveries"] == "3"
    assert letter["handler"] == "ledger" and "RuntimeError: ledger down" in letter["error"]
    pending = await t.client.xpending(t.keys.events, t.keys.group("ledger"))
    assert pending["pending"] == 0  # never both dead and pending
    (stored,) = d.dead_letters.list()  # the final delivery wrote the local store too
    assert stored.event.id == event_id and stored.group == "ledger"
    assert d.stats()["dead_lettered"] == 1 and d.stats()["left_pending"] == 2


@pytest.mark.live
async def test_redelivery_is_deduplicated_for_non_idempotent_handlers_only(
    private_redis: Any, make_dispatcher: Any, started: Any, monkeypatch: Any
) -> None:
    runs: collections.Counter[str] = collections.Counter()
    t = transport(private_redis.url, min_idle="0.3s", claim_every="0.05s", block="0.05s")
    d = make_dispatcher(transport=t)
    d.subscribe("charge", lambda e, c: runs.update(["charge"]), topics="pay.*", timeout="0.2s")
    d.subscribe("audit", lambda e, c: runs.update(["audit"]), topics="pay.*", timeout="0.2s",
                idempotent=True)
    await groups_ready(d)
    lost = {"charge": 1, "audit": 1}  # the first ack of each group is lost: a redelivery follows
    ack = t.ack

    async def flaky_ack(delivery: Any) -> None:
        if lost.get(delivery.group):
            lost[delivery.group] -= 1
            raise OSError("connection reset while acking")
        await ack(delivery)

    monkeypatch.setattr(t, "ack", flaky_ack)
    started(d)
    await d.publish("pay.captured", {"amount": 5})
    await apoll_until(lambda: t.counts["acked"] == 2 and t.counts["claimed"] == 2,
                      message="both groups redelivered and acked")
    assert runs == {"charge": 1, "audit": 2}
    assert d.outcomes["duplicate"] == 1


@pytest.mark.live
async def test_trimming_never_drops_pending_or_undelivered_entries(
    private_redis: Any, make_dispatcher: Any
) -> None:
    clock = [0.0]
    t = transport(private_redis.url, retention="1s", clock=lambda: clock[0])
    d = make_dispatcher(transport=t)
    d.subscribe("fast", lambda e, c: None, topics="x.*", timeout="0.5s")
    d.subscribe("slow", lambda e, c: None, topics="x.*", timeout="0.5s")
    await groups_ready(d)
    ids = [await d.publish("x.y", {"n": n}) for n in range(6)]
    client, stream = t.client, t.keys.events
    # group fast reads all six and acks the first four; group slow reads two, acks none
    got = await client.xreadgroup(t.keys.group("fast"), "c", {stream: ">"}, count=6)
    entries = [i for i, _ in got[0][1]]
    await client.xack(stream, t.keys.group("fast"), *entries[:4])
    await client.xreadgroup(t.keys.group("slow"), "c", {stream: ">"}, count=2)
    clock[0] = 10_000_000_000.0  # far past the retention: only the floor holds entries back
    assert await t.trim() == 0  # slow's oldest pending is the first entry
    await client.xack(stream, t.keys.group("slow"), *entries[:2])
    assert await t.trim() == 2  # slow's next undelivered is the third: the first two may go
    remaining = [i for i, _ in await client.xrange(stream)]
    assert remaining == entries[2:] and len(ids) == 6
    got = await client.xreadgroup(t.keys.group("slow"), "c", {stream: ">"}, count=10)
    assert [i for i, _ in got[0][1]] == entries[2:]  # nothing slow needed was lost
    await client.xack(stream, t.keys.group("slow"), *entries[2:])
    assert await t.trim() == 2  # fast still has entries 4 and 5 pending
    await client.xack(stream, t.keys.group("fast"), *entries[4:])
    assert await t.trim() == 2 and await client.xlen(stream) == 0
    await t.aclose()


@pytest.mark.live
async def test_max_length_trims_only_above_the_floor(
    private_redis: Any, make_dispatcher: Any
) -> None:
    t = transport(private_redis.url, max_length=3)
    d = make_dispatcher(transport=t)
    d.subscribe("g", lambda e, c: None, topics="x.*", timeout="0.5s")
    await groups_ready(d)
    for n in range(5):
        await d.publish("x.y", {"n": n})
    assert await t.trim() == 0  # nothing delivered yet: the group needs all five
    client, stream = t.client, t.keys.events
    got = await client.xreadgroup(t.keys.group("g"), "c", {stream: ">"}, count=5)
    await client.xack(stream, t.keys.group("g"), *[i for i, _ in got[0][1]])
    assert await t.trim() == 2 and await client.xlen(stream) == 3
    await t.aclose()


@pytest.mark.live
async def test_redis_killed_and_restarted_under_a_consumer(
    private_redis: Any, make_dispatcher: Any, started: Any
) -> None:
    seen: list[int] = []
    t = transport(private_redis.url)
    backoffs: list[int] = []
    real_backoff = t._backoff

    async def counted(failures: int) -> None:
        backoffs.append(failures)
        await real_backoff(failures)

    t._backoff = counted  # type: ignore[method-assign]
    d = make_dispatcher(transport=t)
    d.subscribe("count", lambda e, c: seen.append(e.payload["n"]), topics="n.*", timeout="0.5s")
    await groups_ready(d)
    started(d)
    await d.publish("n.x", {"n": 1})
    await apoll_until(lambda: seen == [1], message="first event")
    private_redis.kill()
    await apoll_until(lambda: t.state == "unreachable", message="outage noticed")
    with pytest.raises(EventTransportError) as info:
        await d.publish("n.x", {"n": 2})
    assert info.value.category == "unavailable" and exit_code_for(info.value) == 5
    assert f"127.0.0.1:{private_redis.port}" in str(info.value) and "\n" not in str(info.value)
    await apoll_until(lambda: len(backoffs) >= 3, message="backing off")
    private_redis.start()  # empty: the stream and its groups are gone
    await apoll_until(lambda: t.state == "ok", message="reconnected")

    async def published() -> bool:
        try:
            await d.publish("n.x", {"n": 3})
        except EventTransportError:
            return False
        return True

    await apoll_until(published, message="publish works again")
    await apoll_until(lambda: 3 in seen, message="event after the restart")
    assert seen.count(3) == 1 and 2 not in seen
    # failed attempts waited before the next one (no busy loop), longer as failures went on
    assert 0 in backoffs and 1 in backoffs


async def test_publish_to_an_unreachable_server_names_the_url_without_credentials(
    make_dispatcher: Any
) -> None:
    pytest.importorskip("redis")
    from oneiric.testing import free_port

    url = f"redis://ops:hunter2@127.0.0.1:{free_port()}/0"
    d = make_dispatcher(transport=RedisStreamsTransport(url, fleet="t"))
    with pytest.raises(EventTransportError) as info:
        await d.publish("a.b", {})
    text = str(info.value)
    assert "hunter2" not in text and "127.0.0.1" in text and "\n" not in text
    await d.transport.aclose()


@pytest.mark.parametrize(("options", "words"), [
    ({"fleet": "Shop!"}, "fleet 'Shop!' is not a fleet name"),
    ({"url": "http://x"}, "url must start with redis://"),
    ({"min_idle": "soon"}, "min_idle"),
    ({"min_idle": 0}, "min_idle must be > 0"),
    ({"max_deliveries": 0}, "max_deliveries must be an integer >= 1"),
    ({"batch": True}, "batch must be an integer >= 1"),
    ({"retention": "-1s"}, "retention"),
    ({"claim_every": "40s", "min_idle": "60s"}, "claim_every (40s) must be at most half"),
    ({"consumer": ""}, "consumer must be a non-empty string"),
    ({"colour": "red"}, "unknown setting 'colour'"),
])
def test_every_bad_setting_is_one_line(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisStreamsTransport(**options)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("timeout", "words"), [
    (None, "has no timeout"),
    ("2s", "timeout 2s is not under the redis transport's min_idle (1s)"),
])
async def test_handler_timeouts_must_stay_under_min_idle(
    make_dispatcher: Any, timeout: str | None, words: str
) -> None:
    pytest.importorskip("redis")
    d = make_dispatcher(transport=RedisStreamsTransport(**FAST))
    d.subscribe("slow", lambda e, c: None, topics="a.*", timeout=timeout)
    with pytest.raises(ConfigError) as info:
        await d.consume()
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.live
async def test_host_events_table_chooses_the_redis_transport(
    private_redis: Any, make_runtime: Any
) -> None:
    runtime = await make_runtime(
        f'[host.events]\ntransport = "redis"\nurl = "{private_redis.url}"\nfleet = "shop"\n'
        'min_idle = "30s"\n')
    t = runtime.dispatcher.transport
    assert isinstance(t, RedisStreamsTransport)
    assert t.keys.events == "oneiric:v1:shop:events" and t.settings.min_idle == 30.0
    runtime.dispatcher.subscribe("mail", lambda e, c: None, topics="a.*", timeout="1s")
    await runtime.dispatcher.publish("a.b", {})  # creates the group it subscribes
    assert await t.client.xlen(t.keys.events) == 1
    (group,) = await t.client.xinfo_groups(t.keys.events)
    assert group["name"] == b"shop:mail"
    await t.aclose()


async def test_without_host_events_the_local_inbox_stays(make_runtime: Any) -> None:
    from oneiric.runtime import Inbox

    runtime = await make_runtime("")
    assert isinstance(runtime.dispatcher.transport, Inbox)


@pytest.mark.parametrize(("toml", "words"), [
    ('[host.events]\ntransport = "kafka"\n', 'transport must be "local" or "redis"'),
    ('[host.events]\nurl = "redis://x"\n', "'url' applies to transport = \"redis\" only"),
    ('[host.events]\ntransport = "redis"\nfleet = "a:b"\n', "is not a fleet name"),
    ('[host.events]\ntransport = "redis"\nmin_idel = "5s"\n', "unknown setting 'min_idel'"),
    ('[host]\nevents = "redis"\n', "[host.events] must be a table"),
])
async def test_every_bad_host_events_setting_is_one_line(
    make_runtime: Any, toml: str, words: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigError) as info:
        await make_runtime(toml)
    assert words in str(info.value) and "\n" not in str(info.value)
