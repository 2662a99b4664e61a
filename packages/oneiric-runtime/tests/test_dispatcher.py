"""The event dispatcher's guarantees (issue #13 acceptance), on a real lifecycle.

Isolation, bounds, the inbox's overflow policies, retries with backoff, dead
letters and redrive, timeouts that really cancel, group tie-break and
failover, bad input, cancellation, and a hot swap with events in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oneiric.core import Candidate, Resolver, RetryPolicy
from oneiric.lifecycle import ActivityStore
from oneiric.runtime import Event, EventDispatcher, InboxFullError, InvalidEventError
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


class Peak:
    """Counts concurrent calls of the handlers that share it."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, event: Event, context: Any) -> None:
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.now -= 1


async def test_a_failing_handler_does_not_touch_its_slow_sibling(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    finished: list[str] = []

    async def slow(event: Event, context: Any) -> None:
        await asyncio.sleep(0.05)
        finished.append(event.id)

    def boom(event: Event, context: Any) -> None:
        raise RuntimeError("handler bug")

    dispatcher.subscribe("slow", slow, topics="orders.created")
    dispatcher.subscribe("boom", boom, topics="orders.*")
    report = await dispatcher.emit("orders.created", {"n": 1})
    statuses = {o.handler: o.status for o in report.outcomes}
    assert statuses == {"slow": "ok", "boom": "dead_lettered"}
    assert finished == [report.event_id]
    (failure,) = [o for o in report.outcomes if not o.ok]
    assert failure.error == "RuntimeError: handler bug"
    assert not report.ok


async def test_per_handler_bound_holds_under_ten_concurrent_emits(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    peak = Peak()
    dispatcher.subscribe("one-at-a-time", peak, topics="jobs.run", max_concurrency=1,
                         idempotent=True)
    await asyncio.gather(*(dispatcher.emit("jobs.run", {"i": i}) for i in range(10)))
    assert (peak.calls, peak.peak) == (10, 1)


async def test_global_bound_holds_under_a_hundred_emits(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher(max_concurrency=4)
    peak = Peak()
    for n in range(3):  # three groups share the global bound
        dispatcher.subscribe(f"h{n}", peak, topics="jobs.run", idempotent=True)
    await asyncio.gather(*(dispatcher.emit("jobs.run", {"i": i}) for i in range(100)))
    assert peak.calls == 300
    assert peak.peak == 4
    assert dispatcher.stats()["peak"] == 4


@pytest.mark.parametrize("overflow", ["block", "reject", "drop_oldest"])
async def test_inbox_overflow_policies(make_dispatcher: Any, overflow: str) -> None:
    dispatcher = make_dispatcher(inbox=100, overflow=overflow)
    release = asyncio.Event()
    seen: list[int] = []

    async def blocked(event: Event, context: Any) -> None:
        await release.wait()
        seen.append(event.payload["i"])

    dispatcher.subscribe("blocked", blocked, topics="work.item", idempotent=True)
    consumer = asyncio.ensure_future(dispatcher.consume(workers=1))
    await dispatcher.publish("work.item", {"i": -1})  # the consumer takes it and blocks
    await apoll_until(lambda: dispatcher.stats()["inbox"] == 0, message="first event taken")
    for i in range(100):
        await dispatcher.publish("work.item", {"i": i})
    assert dispatcher.stats()["inbox"] == 100
    if overflow == "block":
        waiting = asyncio.ensure_future(dispatcher.publish("work.item", {"i": 100}))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # it waits for room
        release.set()
        await waiting
    elif overflow == "reject":
        with pytest.raises(InboxFullError, match="inbox is full"):
            await dispatcher.publish("work.item", {"i": 100})
        release.set()
    else:
        for i in (100, 101):
            await dispatcher.publish("work.item", {"i": i})
        assert dispatcher.stats()["dropped"] == 2
        release.set()
    await dispatcher.transport.join()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    expected = {"block": list(range(-1, 101)), "reject": list(range(-1, 100)),
                "drop_oldest": [-1, *range(2, 102)]}[overflow]
    assert seen == expected


async def test_fail_twice_then_succeed_with_backoff(make_dispatcher: Any,
                                                    waits: list[float]) -> None:
    dispatcher = make_dispatcher()
    calls: list[int] = []

    def flaky(event: Event, context: Any) -> None:
        calls.append(context.attempt)
        if context.attempt < 3:
            raise ConnectionError("down")

    policy = RetryPolicy(max_attempts=4, initial=0.5, multiplier=2.0, jitter=0)
    dispatcher.subscribe("flaky", flaky, topics="t.x", retry=policy)
    report = await dispatcher.emit("t.x", {})
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.attempts) == ("ok", 3)
    assert calls == [1, 2, 3]
    assert waits == [0.5, 1.0]


async def test_exhausted_retries_one_dead_letter_and_redrive_same_id(
    make_dispatcher: Any,
) -> None:
    dispatcher = make_dispatcher()
    healthy = False
    handled: list[str] = []

    def sometimes(event: Event, context: Any) -> None:
        if not healthy:
            raise ConnectionError("smtp down")
        handled.append(event.id)

    dispatcher.subscribe("mailer", sometimes, topics="orders.created",
                         retry={"max_attempts": 3, "jitter": 0})
    report = await dispatcher.emit("orders.created", {"order": 7})
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.attempts) == ("dead_lettered", 3)
    (letter,) = dispatcher.dead_letters.list()
    assert (letter.handler, letter.attempts, letter.event.id) == ("mailer", 3, report.event_id)
    assert letter.error_type == "ConnectionError"
    healthy = True
    (redriven,) = await dispatcher.dead_letters.redrive(dispatcher)
    assert redriven.event_id == report.event_id and redriven.ok
    assert handled == [report.event_id]
    assert dispatcher.dead_letters.list() == []


async def test_non_retryable_failure_is_called_once(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    calls: list[int] = []

    def refuses(event: Event, context: Any) -> None:
        calls.append(1)
        raise PermissionError("no")

    dispatcher.subscribe("refuses", refuses, topics="t.x",
                         retry=RetryPolicy(max_attempts=5, non_retryable=(PermissionError,)))
    (outcome,) = (await dispatcher.emit("t.x", {})).outcomes
    assert (outcome.attempts, len(calls)) == (1, 1)


async def test_timeout_cancels_the_handler_for_real(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    cancelled: list[bool] = []

    async def stuck(event: Event, context: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    dispatcher.subscribe("stuck", stuck, topics="t.x", timeout="50ms")
    (outcome,) = (await dispatcher.emit("t.x", {})).outcomes
    assert outcome.status == "dead_lettered"
    assert "did not finish within 0.05s" in (outcome.error or "")
    assert cancelled == [True]
    assert dispatcher.stats()["in_flight"] == 0


async def test_group_tie_break_by_name_and_failover(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    ran: list[str] = []

    def make(name: str, fail: bool = False) -> Any:
        def handler(event: Event, context: Any) -> None:
            ran.append(name)
            if fail:
                raise RuntimeError(f"{name} failed")
        return handler

    dispatcher.subscribe("beta", make("beta"), topics="t.x", group="billing")
    dispatcher.subscribe("alpha", make("alpha", fail=True), topics="t.x", group="billing",
                         failover=True)
    dispatcher.subscribe("low", make("low"), topics="t.x", group="billing", priority=-1)
    report = await dispatcher.emit("t.x", {})
    assert ran == ["alpha", "beta"]  # tie on priority 0: alpha sorts first, fails over to beta
    assert [(o.handler, o.status) for o in report.outcomes] == [
        ("alpha", "dead_lettered"), ("beta", "ok")]
    assert report.ok  # the group's final outcome is ok
    plan = dispatcher.route("t.x", {})
    reasons = {d.handler: (d.runs, d.reason) for d in plan.decisions}
    assert reasons["alpha"][0] is True
    assert "broken by name: 'alpha' sorts first" in reasons["beta"][1]
    assert "(fails over to it)" in reasons["beta"][1]
    assert "lower priority -1 < 0" in reasons["low"][1]


@pytest.mark.parametrize(
    ("topic", "payload", "fragment"),
    [
        ("", {}, "is not a topic"),
        ("a..b", {}, "is not a topic"),
        ("orders.*", {}, "has a wildcard"),
        ("orders.#", {}, "has a wildcard"),
        ("Orders", {}, "is not a topic"),
        ("t.x", [1, 2], "must be a JSON object"),
        ("t.x", {"when": object()}, "payload field when is not JSON"),
        ("t.x", {"n": float("nan")}, "payload field n is not JSON"),
        ("t.x", {"raw": b"\x00"}, "payload field raw is not JSON"),
        ("t.x", {"blob": "x" * 2000}, "over the 1024-byte cap"),
    ],
)
async def test_bad_input_is_one_clear_error_and_the_dispatcher_keeps_running(
    make_dispatcher: Any, topic: str, payload: Any, fragment: str
) -> None:
    dispatcher = make_dispatcher(max_payload_bytes=1024)
    ran: list[str] = []
    dispatcher.subscribe("ok", lambda e, c: ran.append(e.id), topics="t.x")
    for call in (dispatcher.emit, dispatcher.publish):
        with pytest.raises(InvalidEventError) as info:
            await call(topic, payload)
        assert fragment in str(info.value) and "\n" not in str(info.value)
    report = await dispatcher.emit("t.x", {"fine": True})
    assert report.ok and ran == [report.event_id]


async def test_cancelling_emit_cancels_in_flight_handlers(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    started = asyncio.Event()
    cancelled: list[str] = []

    def make(name: str) -> Any:
        async def handler(event: Event, context: Any) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
        return handler

    for name in ("a", "b", "c"):
        dispatcher.subscribe(name, make(name), topics="t.x")
        await dispatcher.lifecycle.activate("event", name)  # the lifecycle's own tasks start
    baseline = len(asyncio.all_tasks())
    emitting = asyncio.ensure_future(dispatcher.emit("t.x", {}))
    await started.wait()
    await asyncio.sleep(0.01)
    emitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await emitting
    assert sorted(cancelled) == ["a", "b", "c"]
    assert len(asyncio.all_tasks()) == baseline
    assert dispatcher.stats()["in_flight"] == 0
    assert dispatcher.dead_letters.list() == []  # cancelled, not failed


class Versioned:
    """A handler component whose calls block until released (to swap with events in flight)."""

    version = "v1"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.handled: list[int] = []

    async def handle(self, event: Event, context: Any) -> None:
        await self.release.wait()
        self.handled.append(event.payload["i"])


class Versioned2(Versioned):
    version = "v2"


async def test_hot_swap_with_five_events_in_flight(make_dispatcher: Any) -> None:
    resolver = Resolver()
    metadata = {"topics": ["orders.created"], "idempotent": True}
    resolver.register(Candidate("event", "indexer", "v1", Versioned, metadata=metadata))
    resolver.register(Candidate("event", "indexer", "v2", Versioned2, metadata=metadata,
                                priority=-5))
    dispatcher = make_dispatcher(resolver)
    lifecycle = dispatcher.lifecycle
    old = await lifecycle.activate("event", "indexer")
    in_flight = [asyncio.ensure_future(dispatcher.emit("orders.created", {"i": i}))
                 for i in range(5)]
    await apoll_until(lambda: dispatcher.stats()["in_flight"] == 5, message="5 in flight")
    swap = await lifecycle.swap("event", "indexer", "v2")
    assert (swap.old_provider, swap.new_provider) == ("v1", "v2")
    new = await lifecycle.activate("event", "indexer")
    new.release.set()
    after = await dispatcher.emit("orders.created", {"i": 99})
    assert after.outcomes[0].provider == "v2" and new.handled == [99]
    old.release.set()
    reports = await asyncio.gather(*in_flight)
    assert all(r.outcomes[0].provider == "v1" and r.ok for r in reports)
    assert sorted(old.handled) == [0, 1, 2, 3, 4]


async def test_non_idempotent_handlers_are_deduplicated_per_event_and_group(
    make_dispatcher: Any,
) -> None:
    dispatcher = make_dispatcher()
    once: list[str] = []
    every: list[str] = []
    dispatcher.subscribe("charge", lambda e, c: once.append(e.id), topics="pay.due")
    dispatcher.subscribe("log", lambda e, c: every.append(e.id), topics="pay.due",
                         idempotent=True)
    first = await dispatcher.emit("pay.due", {}, id="evt-1")
    second = await dispatcher.emit("pay.due", {}, id="evt-1")
    assert {o.handler: o.status for o in second.outcomes} == {"charge": "duplicate",
                                                             "log": "ok"}
    assert first.ok and second.ok
    assert (once, every) == (["evt-1"], ["evt-1", "evt-1"])


async def test_filters_route_and_explain(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher()
    ran: list[str] = []
    dispatcher.subscribe("us-only", lambda e, c: ran.append("us"), topics="orders.*",
                         filter={"order.region": {"equals": "us"}})
    dispatcher.subscribe("big", lambda e, c: ran.append("big"), topics="orders.created",
                         filter={"order.total": {"any_of": [100, 1000]},
                                 "order.vip": {"exists": True}})
    dispatcher.subscribe("refunds", lambda e, c: ran.append("refunds"), topics="refunds.#")
    payload = {"order": {"region": "eu", "total": 100, "vip": False}}
    plan = dispatcher.route("orders.created", payload)
    reasons = {d.handler: d.reason for d in plan.decisions}
    assert plan.handlers == ("big",)
    assert reasons["us-only"] == "filter order.region: 'eu' is not 'us'"
    assert reasons["refunds"] == "topic mismatch: subscribes to refunds.#"
    await dispatcher.emit("orders.created", payload)
    assert ran == ["big"]


async def test_paused_handler_is_passed_over_and_all_paused_dead_letters(
    make_dispatcher: Any, activity: ActivityStore
) -> None:
    dispatcher = make_dispatcher()
    ran: list[str] = []
    dispatcher.subscribe("primary", lambda e, c: ran.append("primary"), topics="t.x",
                         group="g", priority=5)
    dispatcher.subscribe("standby", lambda e, c: ran.append("standby"), topics="t.x",
                         group="g")
    await dispatcher.lifecycle.activate("event", "primary")
    activity.pause("event", "primary", note="maintenance")

    def paused(name: str) -> bool:
        return any(d.handler == name and d.reason.startswith("paused")
                   for d in dispatcher.route("t.x", {}).decisions)

    await apoll_until(lambda: paused("primary"), message="the pause seen")
    reasons = {d.handler: d.reason for d in dispatcher.route("t.x", {}).decisions}
    assert reasons["primary"] == "paused (maintenance)"
    await dispatcher.emit("t.x", {})
    assert ran == ["standby"]
    activity.pause("event", "standby")
    await apoll_until(lambda: paused("standby"), message="the second pause seen")
    plan = dispatcher.route("t.x", {})
    assert "would be dead-lettered for redrive" in {d.handler: d.reason
                                                   for d in plan.decisions}["primary"]
    report = await dispatcher.emit("t.x", {})
    assert [o.status for o in report.outcomes] == ["dead_lettered"]
    activity.resume("event", "primary")
    activity.resume("event", "standby")
    await apoll_until(lambda: not paused("primary"), message="the resume seen")
    (redriven,) = await dispatcher.dead_letters.redrive(dispatcher)
    assert redriven.ok and ran == ["standby", "primary"]


async def test_plugin_metadata_subscriptions_and_invalid_ones(make_dispatcher: Any) -> None:
    resolver = Resolver()
    resolver.register(Candidate("event", "audit", "plugin", "builtins:object",
                                metadata={"topics": ["#"], "priority": 2,
                                          "requires": ["json"], "install": "pip install json"}))
    resolver.register(Candidate("event", "broken", "plugin", "builtins:object",
                                metadata={"topics": ["a..b"]}))
    resolver.register(Candidate("event", "typo", "plugin", "builtins:object",
                                metadata={"topic": "a"}))
    dispatcher = make_dispatcher(resolver)
    names = [s.name for s in dispatcher.subscriptions()]
    assert names == ["audit"]
    errors = dispatcher.errors()
    assert "'a..b' is not a topic pattern" in errors["broken"]
    assert "unknown subscription field 'topic'" in errors["typo"]


async def test_a_dead_letter_store_that_fails_does_not_make_emit_raise(
    make_dispatcher: Any, tmp_path: Any
) -> None:
    from oneiric.runtime import DeadLetterStore

    broken = tmp_path / "not-sqlite.db"
    broken.write_bytes(b"this is not a database" * 100)
    dispatcher = make_dispatcher(dead_letters=DeadLetterStore(broken))

    def boom(event: Event, context: Any) -> None:
        raise RuntimeError("bug")

    dispatcher.subscribe("boom", boom, topics="t.x")
    (outcome,) = (await dispatcher.emit("t.x", {})).outcomes
    assert outcome.status == "failed"
    assert "not dead-lettered" in (outcome.error or "")


async def test_dispatcher_rejects_bad_construction(make_dispatcher: Any) -> None:
    from oneiric.core import ConfigError

    for kwargs in ({"max_concurrency": 0}, {"inbox": -1}, {"overflow": "explode"}):
        with pytest.raises(ConfigError):
            make_dispatcher(**kwargs)
    assert isinstance(make_dispatcher(), EventDispatcher)


async def test_a_span_per_handler_call(make_dispatcher: Any, spans: Any) -> None:
    dispatcher = make_dispatcher()
    dispatcher.subscribe("a", lambda e, c: None, topics="t.x")
    dispatcher.subscribe("b", lambda e, c: None, topics="t.x")
    report = await dispatcher.emit("t.x", {}, correlation_id="order-7")
    handled = [s for s in spans.get_finished_spans() if s.name == "oneiric.event.handle"]
    assert sorted(s.attributes["handler"] for s in handled) == ["a", "b"]
    for s in handled:
        assert s.attributes["event_id"] == report.event_id
        assert s.attributes["correlation_id"] == "order-7"


async def test_attack_a_handler_timeout_binds_to_the_handler_not_the_emitter(
    make_dispatcher: Any,
) -> None:
    """A handler's own ``asyncio.timeout`` (and the dispatcher's) cancels that handler only.

    Starting a group eagerly in the emitter's task and moving the rest to a new
    task would leave such a timeout bound to the *emitter*: it would be
    cancelled instead, and the handler never would.
    """
    dispatcher = make_dispatcher()
    cancelled: list[str] = []

    async def own_timeout(event: Event, context: Any) -> None:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(3600)
        except TimeoutError:
            cancelled.append("own")
            raise

    async def dispatcher_timeout(event: Event, context: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("dispatcher")
            raise

    dispatcher.subscribe("own", own_timeout, topics="t.x")
    dispatcher.subscribe("limited", dispatcher_timeout, topics="t.x", timeout="50ms")
    dispatcher.subscribe("quick", lambda e, c: None, topics="t.x")
    report = await asyncio.wait_for(dispatcher.emit("t.x", {}), 30)
    statuses = {o.handler: o.status for o in report.outcomes}
    assert statuses == {"own": "dead_lettered", "limited": "dead_lettered", "quick": "ok"}
    assert sorted(cancelled) == ["dispatcher", "own"]
