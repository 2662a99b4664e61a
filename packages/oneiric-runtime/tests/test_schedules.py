"""Schedules with an injected clock: DST, misfires, coalesce, restarts, two hosts, bounds.

Real settings files, the real catalogs, a real lifecycle, a real SQLite
schedule store; the clock is a number the test moves and ``sleep`` moves it
(no test waits on real time).  A "host" is a ``Scheduler`` with its own store
object on the shared ``<state dir>/schedules.sqlite``; a "restart" is a new one.
"""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from oneiric.actions import ActionSpec
from oneiric.core import Candidate, ConfigError, PluginRegistry, Resolver, Source, load_settings
from oneiric.core.helpers import format_timestamp
from oneiric.lifecycle import ActivityStore, LifecycleConfig, LifecycleManager
from oneiric.runtime._schedule import MAX_CATCH_UP, dedupe_id, parse_schedules
from oneiric.runtime._schedule_runner import Scheduler, scheduler_for
from oneiric.runtime._schedule_store import ScheduleStore

pytestmark = pytest.mark.anyio

NY = ZoneInfo("America/New_York")


def ts(*args: int, zone: Any = UTC) -> float:
    return datetime(*args, tzinfo=zone).timestamp()  # type: ignore[misc]


class Clock:
    """The injected clock; ``sleep`` advances it and records the request."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Calls:
    """A test action ``test.record``: records (payload, idempotency key); may block."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []
        self.gate: asyncio.Event | None = None

    def register(self, resolver: Resolver) -> None:
        calls = self

        class Record:
            spec = ActionSpec(side_effects=False, idempotent=True, timeout=None)

            async def invoke(self, payload: Any, context: Any) -> Any:
                calls.calls.append((payload, context.idempotency_key))
                if calls.gate is not None:
                    await calls.gate.wait()
                return {"ok": True}

        resolver.register(Candidate("action", "test.record", "mem", Record))

    @property
    def keys(self) -> list[str]:
        return [key for _payload, key in self.calls]


@pytest.fixture
async def make_host(tmp_path: Path) -> Any:
    """``make_host(toml, calls, clock, activity=None)`` → a ``Scheduler`` on a fresh lifecycle;
    every host of one test shares ``tmp_path/state`` (so the schedule store)."""
    from oneiric.actions import _plugin as actions_plugin
    from oneiric.runtime import _plugin as runtime_plugin

    made: list[Scheduler] = []

    def make(toml: str, calls: Calls, clock: Clock, *, activity: Any = False,
             rng: Any = lambda: 0.0) -> Scheduler:
        config = tmp_path / f"settings-{len(made)}"
        config.mkdir()
        (config / "oneiric.toml").write_text(textwrap.dedent(toml))
        resolver = Resolver()
        for plugin, dist in ((actions_plugin, "oneiric-actions"),
                             (runtime_plugin, "oneiric-runtime")):
            registry = PluginRegistry(Source("entry_point", dist, "test"))
            plugin.oneiric_register(registry)
            with resolver.batch():
                for candidate in registry.candidates:
                    resolver.register(candidate)
        calls.register(resolver)
        settings = load_settings(config, state_dir=tmp_path / "state")
        settings.apply(resolver)
        manager = LifecycleManager(
            resolver, settings=settings, activity_store=activity, write_status=False,
            state_dir=tmp_path / "state",
            config=LifecycleConfig(grace_period=0, health_interval=0),
        )
        scheduler_for(manager)  # registers [schedules] as task candidates
        scheduler = Scheduler(manager, state_dir=tmp_path / "state", clock=clock,
                              sleep=clock.sleep, rng=rng,
                              store=ScheduleStore(tmp_path / "state" / "schedules.sqlite",
                                                  clock=clock))
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.aclose()
        await scheduler.lifecycle.shutdown()


def table(body: str, name: str = "job") -> str:
    return f'[schedules.{name}]\nrun = "action:test.record"\n' + textwrap.dedent(body)


async def look(scheduler: Scheduler, at: float, clock: Clock) -> list[Any]:
    clock.now = at
    await scheduler.tick()
    return await scheduler.wait_idle()


# ------------------------------------------------------------------ DST


def test_dst_gap_fires_at_the_next_valid_instant_once() -> None:
    schedule = parse_schedules({"job": {"cron": "30 2 * * *", "timezone": "America/New_York",
                                        "run": "action:test.record"}})["job"]
    fires = [datetime.fromtimestamp(t, NY) for t in
             islice(schedule.instants(ts(2026, 3, 7, 12, zone=NY)), 3)]
    # 2026-03-08 02:30 does not exist in New York: the next valid instant, 03:00 EDT
    assert [f.isoformat() for f in fires] == [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00",
    ]


def test_dst_overlap_fires_once_at_the_first_occurrence() -> None:
    schedule = parse_schedules({"job": {"cron": "30 1 * * *", "timezone": "America/New_York",
                                        "run": "action:test.record"}})["job"]
    fires = list(islice(schedule.instants(ts(2026, 10, 31, 12, zone=NY)), 2))
    # 01:30 happens twice on 2026-11-01 (EDT, then EST): one fire, the first
    assert [format_timestamp(t) for t in fires] == [
        "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z",
    ]
    # looking from inside the repeated hour (01:10 EST) never finds the 01:30 already past
    second_pass = datetime(2026, 11, 1, 1, 10, tzinfo=NY, fold=1).timestamp()
    assert schedule.next_after(second_pass) == ts(2026, 11, 2, 6, 30)
    # and 02:30 on the fall-back day is an ordinary single instant
    at_230 = parse_schedules({"j": {"cron": "30 2 * * *", "timezone": "America/New_York",
                                    "run": "action:a.b"}})["j"]
    assert list(islice(at_230.instants(ts(2026, 10, 31, 12, zone=NY)), 2)) == [
        ts(2026, 11, 1, 7, 30), ts(2026, 11, 2, 7, 30)]


async def test_dst_gap_and_overlap_through_the_scheduler(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 3, 7, 12, zone=NY)), Calls()
    scheduler = make_host(table('cron = "30 2 * * *"\ntimezone = "America/New_York"\n'),
                          calls, clock)
    await look(scheduler, clock.now, clock)  # the first look starts the cursor
    for _ in range(2):  # sleep to each next instant, as serve() does
        wake = scheduler.next_wakeup()
        assert wake is not None
        await look(scheduler, wake, clock)
    assert calls.keys == ["job:2026-03-08T07:00:00.000Z", "job:2026-03-09T06:30:00.000Z"]


async def test_serve_sleeps_until_each_instant_with_the_injected_clock(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 10, 31, 12, zone=NY)), Calls()
    scheduler = make_host(table('cron = "30 1 * * *"\ntimezone = "America/New_York"\n'),
                          calls, clock)
    task = asyncio.ensure_future(scheduler.serve())
    while len(calls.calls) < 2:
        await asyncio.sleep(0)
    task.cancel()
    await scheduler.wait_idle()
    assert calls.keys == ["job:2026-11-01T05:30:00.000Z", "job:2026-11-02T06:30:00.000Z"]
    assert all(0 <= s <= 60 for s in clock.sleeps)  # MAX_SLEEP bounds each wait


# ---------------------------------------------------------- misfires, coalesce


EVERY_MINUTE = 'every = "1m"\nmisfire_grace = "5m"\ncoalesce = "{policy}"\n'


async def _restart_after_gap(make_host: Any, policy: str, gap_minutes: int) -> tuple[Calls, Any]:
    """Fire at 12:00, stop, restart ``gap_minutes`` later: what does the new host fire?"""
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    first = make_host(table(EVERY_MINUTE.format(policy=policy)), calls, clock)
    await look(first, clock.now, clock)
    await look(first, ts(2026, 6, 1, 12, 0), clock)
    assert calls.keys == ["job:2026-06-01T12:00:00.000Z"]
    calls.calls.clear()
    await first.aclose()
    second = make_host(table(EVERY_MINUTE.format(policy=policy)), calls, clock)
    await look(second, ts(2026, 6, 1, 12, gap_minutes, 30), clock)
    return calls, second.state("job")


async def test_misfire_within_grace_latest_fires_once_for_the_latest(make_host: Any) -> None:
    calls, state = await _restart_after_gap(make_host, "latest", 3)  # missed 12:01..12:03
    assert calls.keys == ["job:2026-06-01T12:03:00.000Z"]
    assert (state.fires, state.misfires) == (2, 2)


async def test_misfire_within_grace_all_fires_each_missed_instant(make_host: Any) -> None:
    calls, state = await _restart_after_gap(make_host, "all", 3)
    assert calls.keys == [f"job:2026-06-01T12:0{m}:00.000Z" for m in (1, 2, 3)]
    assert (state.fires, state.misfires) == (4, 0)


async def test_misfire_within_grace_skip_fires_none(make_host: Any) -> None:
    calls, state = await _restart_after_gap(make_host, "skip", 3)
    assert calls.keys == []
    assert (state.fires, state.misfires) == (1, 3)


@pytest.mark.parametrize("policy", ["latest", "all", "skip"])
async def test_misfire_beyond_grace_is_skipped_and_counted(make_host: Any, policy: str) -> None:
    # down from 12:00 to 12:20:30 with a 5 minute grace: 12:01..12:15 are beyond it
    calls, state = await _restart_after_gap(make_host, policy, 20)
    within = {"latest": ["12:20"], "all": ["12:16", "12:17", "12:18", "12:19", "12:20"],
              "skip": []}[policy]
    assert calls.keys == [f"job:2026-06-01T{t}:00.000Z" for t in within]
    assert state.misfires == 20 - len(within)


async def test_coalesce_all_is_bounded_and_counts_the_rest(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 0, 0, 0, 500)), Calls()
    scheduler = make_host(table('every = "1s"\nmisfire_grace = "1h"\ncoalesce = "all"\n'),
                          calls, clock)
    await look(scheduler, clock.now, clock)
    await look(scheduler, clock.now + 250, clock)  # 250 instants due at once
    assert len(calls.calls) == MAX_CATCH_UP
    assert calls.keys[-1] == "job:2026-06-01T00:04:10.000Z"  # the latest ones fired
    assert scheduler.state("job").misfires == 250 - MAX_CATCH_UP


async def test_on_time_instant_fires_under_skip(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    scheduler = make_host(table(EVERY_MINUTE.format(policy="skip")), calls, clock)
    await look(scheduler, clock.now, clock)
    await look(scheduler, ts(2026, 6, 1, 12, 0, 2), clock)  # woke 2 s late: still on time
    assert calls.keys == ["job:2026-06-01T12:00:00.000Z"]


async def test_a_wake_later_than_the_grace_is_a_misfire(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    scheduler = make_host(table('every = "1h"\nmisfire_grace = "30s"\n'), calls, clock)
    await look(scheduler, clock.now, clock)
    await look(scheduler, ts(2026, 6, 1, 12, 0, 31), clock)  # suspended past the grace
    assert calls.keys == []
    assert scheduler.state("job").misfires == 1


# ------------------------------------------------------------ restarts, hosts


async def test_restart_without_double_fire(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    first = make_host(table(EVERY_MINUTE.format(policy="all")), calls, clock)
    await look(first, clock.now, clock)
    await look(first, ts(2026, 6, 1, 12, 0), clock)
    await first.aclose()
    # restarted at once, at the very instant that just fired, then at the next
    second = make_host(table(EVERY_MINUTE.format(policy="all")), calls, clock)
    await look(second, ts(2026, 6, 1, 12, 0), clock)
    await look(second, ts(2026, 6, 1, 12, 0, 40), clock)
    await look(second, ts(2026, 6, 1, 12, 1), clock)
    assert calls.keys == ["job:2026-06-01T12:00:00.000Z", "job:2026-06-01T12:01:00.000Z"]
    state = second.state("job")
    assert (state.fires, state.misfires, state.last_fired_at) == (2, 0, ts(2026, 6, 1, 12, 1))


async def test_a_new_schedule_does_not_fire_for_the_past(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 12, 30)), Calls()
    scheduler = make_host(table(EVERY_MINUTE.format(policy="all")), calls, clock)
    assert await look(scheduler, clock.now, clock) == []
    assert scheduler.state("job").checked_at == clock.now


@pytest.mark.parametrize("policy", ["latest", "all", "skip"])
async def test_two_hosts_one_fire_per_instant(make_host: Any, policy: str) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    toml = table(EVERY_MINUTE.format(policy=policy))
    hosts = [make_host(toml, calls, clock), make_host(toml, calls, clock)]
    for host in hosts:
        await look(host, clock.now, clock)
    for minute in range(5):  # both wake for every instant; one of them fires it
        at = ts(2026, 6, 1, 12, minute)
        for host in (hosts if minute % 2 else hosts[::-1]):
            await look(host, at, clock)
    assert calls.keys == [f"job:2026-06-01T12:0{m}:00.000Z" for m in range(5)]
    fires = hosts[0].store.fires("job")
    assert len({f["host"] for f in fires}) == 1  # same pid here: the claim decides, not the host
    assert len(fires) == 5


async def test_two_hosts_racing_on_threads_claim_each_instant_once(tmp_path: Path) -> None:
    schedule = parse_schedules({"job": {"every": "1m", "run": "action:a.b",
                                        "coalesce": "all", "misfire_grace": "1h"}})["job"]
    path = tmp_path / "state" / "schedules.sqlite"
    stores = [ScheduleStore(path, host=f"h{i}") for i in range(4)]
    start = ts(2026, 6, 1, 12)
    for store in stores:
        store.advance(schedule, start, None)

    def host(store: ScheduleStore) -> list[str]:
        won: list[str] = []
        for minute in range(1, 31):
            claimed, _due = store.advance(schedule, start + 60 * minute, start)
            won.extend(dedupe for _t, dedupe in claimed)
        return won

    results = await asyncio.gather(*(asyncio.to_thread(host, s) for s in stores))
    every = [d for won in results for d in won]
    assert sorted(every) == [dedupe_id("job", start + 60 * m) for m in range(1, 31)]
    for store in stores:
        store.close()


# ------------------------------------------------------------ bounds, pause


async def test_max_instances_skips_and_counts_a_fire_over_the_bound(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    calls.gate = asyncio.Event()
    scheduler = make_host(table('every = "1m"\nmax_instances = 1\n'), calls, clock)
    await look(scheduler, clock.now, clock)
    clock.now = ts(2026, 6, 1, 12, 0)
    await scheduler.tick()
    while not calls.calls:
        await asyncio.sleep(0)
    clock.now = ts(2026, 6, 1, 12, 1)
    (busy,) = await asyncio.gather(*await scheduler.tick())  # 12:00 is still in flight
    assert [r.status for r in busy] == ["busy"]
    calls.gate.set()
    assert [r.status for r in await scheduler.wait_idle()] == ["ok"]
    state = scheduler.state("job")
    assert (state.fires, state.busy, len(calls.calls)) == (1, 1, 1)


async def test_max_instances_two_runs_two_at_once(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    calls.gate = asyncio.Event()
    scheduler = make_host(table('every = "1m"\nmax_instances = 2\n'), calls, clock)
    await look(scheduler, clock.now, clock)
    for minute in range(3):
        clock.now = ts(2026, 6, 1, 12, minute)
        await scheduler.tick()
        await asyncio.sleep(0)
    calls.gate.set()
    statuses = sorted(r.status for r in await scheduler.wait_idle())
    assert statuses == ["busy", "ok", "ok"]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999])
async def test_jitter_delays_each_fire_within_bounds(make_host: Any, draw: float) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    scheduler = make_host(table('every = "1m"\njitter = "20s"\n'), calls, clock,
                          rng=lambda: draw)
    await look(scheduler, clock.now, clock)
    clock.sleeps.clear()
    await look(scheduler, ts(2026, 6, 1, 12, 0), clock)
    assert calls.keys == ["job:2026-06-01T12:00:00.000Z"]  # the dedupe id is the instant's
    assert clock.sleeps == pytest.approx([20 * draw])
    assert all(0 <= s <= 20 for s in clock.sleeps)


async def test_pause_suppresses_fires_and_counts_them_as_misfires(
    make_host: Any, tmp_path: Path
) -> None:
    activity = ActivityStore(tmp_path / "activity.sqlite")
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    scheduler = make_host(table('every = "1m"\n'), calls, clock, activity=activity)
    await look(scheduler, clock.now, clock)
    activity.pause("task", "job", note="maintenance")
    await asyncio.sleep(0)  # the manager applies its own store's writes on the loop
    assert scheduler.lifecycle.activity("task", "job") == "paused"
    await look(scheduler, ts(2026, 6, 1, 12, 0), clock)
    await look(scheduler, ts(2026, 6, 1, 12, 1), clock)
    assert calls.calls == []
    activity.resume("task", "job")
    await asyncio.sleep(0)
    await look(scheduler, ts(2026, 6, 1, 12, 2), clock)
    assert calls.keys == ["job:2026-06-01T12:02:00.000Z"]
    state = scheduler.state("job")
    assert (state.fires, state.misfires) == (1, 2)
    activity.close()


async def test_a_fire_waiting_out_its_jitter_is_suppressed_by_a_pause(
    make_host: Any, tmp_path: Path
) -> None:
    activity = ActivityStore(tmp_path / "activity.sqlite")
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    gate = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await gate.wait()

    scheduler = make_host(table('every = "1m"\njitter = "10s"\n'), calls, clock,
                          activity=activity, rng=lambda: 0.5)
    scheduler._sleep = slow_sleep
    await look(scheduler, clock.now, clock)
    clock.now = ts(2026, 6, 1, 12, 0)
    tasks = await scheduler.tick()
    activity.pause("task", "job")
    await asyncio.sleep(0)
    gate.set()
    assert [[r.status for r in done] for done in await asyncio.gather(*tasks)] == [["paused"]]
    assert calls.calls == []
    assert scheduler.state("job").misfires == 1
    activity.close()


# ------------------------------------------------------------ targets


async def test_payload_template_and_event_and_workflow_targets(make_host: Any) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    toml = table('every = "1m"\npayload = { at = "${schedule.fire_time}", '
                 'id = "${schedule.dedupe_id}", literal = "$${x}" }\n') + textwrap.dedent("""
        [schedules.tell]
        every = "1m"
        run = "event:reports.due"
        payload = { at = "${schedule.fire_time}" }

        [automations.relay]
        on = "reports.due"
        run = "action:test.record"
        payload = { relayed = "${event.id}" }
    """)
    scheduler = make_host(toml, calls, clock)
    from oneiric.runtime._host import dispatcher_for

    dispatcher = dispatcher_for(scheduler.lifecycle)
    consumer = asyncio.ensure_future(dispatcher.consume(1))
    try:
        await look(scheduler, clock.now, clock)
        results = await look(scheduler, ts(2026, 6, 1, 12, 0), clock)
        assert sorted(r.status for r in results) == ["ok", "ok"]
        while len(calls.calls) < 2:
            await asyncio.sleep(0)
    finally:
        consumer.cancel()
        await dispatcher.aclose()
    by_payload = sorted(calls.calls, key=lambda c: str(c[0]))
    assert {"at": "2026-06-01T12:00:00.000Z", "id": "job:2026-06-01T12:00:00.000Z",
            "literal": "${x}"} in [p for p, _k in by_payload]
    assert {"relayed": "tell:2026-06-01T12:00:00.000Z"} in [p for p, _k in by_payload]


async def test_workflow_target_runs_with_the_dedupe_id_as_run_id(
    make_host: Any, tmp_path: Path
) -> None:
    clock, calls = Clock(ts(2026, 6, 1, 11, 59, 30)), Calls()
    toml = """
        [schedules.wf]
        every = "1m"
        run = "workflow:report"
        payload = { at = "${schedule.fire_time}" }
    """
    scheduler = make_host(toml, calls, clock)
    from oneiric.runtime._host import engine_for

    engine = engine_for(scheduler.lifecycle, state_dir=tmp_path / "state")
    engine.register({"id": "report", "nodes": [
        {"id": "a", "action": "test.record", "input": {"day": "${input.at}"}}]})
    await look(scheduler, clock.now, clock)
    results = await look(scheduler, ts(2026, 6, 1, 12, 0), clock)
    assert [(r.status, r.error) for r in results] == [("ok", None)]
    assert results[0].result == {"run_id": "wf:2026-06-01T12:00:00.000Z",
                                 "status": "succeeded"}
    assert calls.calls == [({"day": "2026-06-01T12:00:00.000Z"},
                            "wf:2026-06-01T12:00:00.000Z/a")]
    engine.register({"id": "report", "nodes": [
        {"id": "a", "action": "test.record", "input": {"n": "${input.missing}"}}]})
    failed = await look(scheduler, ts(2026, 6, 1, 12, 1), clock)
    assert [r.status for r in failed] == ["failed"]
    assert "ended failed" in (failed[0].error or "")
    assert scheduler.state("wf").failures == 1
    await engine.aclose()


# ------------------------------------------------------------ bad settings


BAD = [
    ({"every": "1m"}, "schedules.job.run is required"),
    ({"run": "action:a.b"}, "schedules.job: give exactly one of cron"),
    ({"run": "action:a.b", "cron": "* * * * *", "every": "1m"}, "exactly one of cron"),
    ({"run": "action:a.b", "cron": "61 * * * *"}, "schedules.job.cron: '61 * * * *': bad minute"),
    ({"run": "action:a.b", "cron": "* * * *"}, "schedules.job.cron: '* * * *' is not a cron"),
    ({"run": "action:a.b", "cron": "0 0 31 2 *"}, "schedules.job.cron"),
    ({"run": "action:a.b", "cron": 5}, "schedules.job.cron: 5 is not a cron"),
    ({"run": "action:a.b", "every": "soon"}, "schedules.job.every 'soon' is not a duration"),
    ({"run": "action:a.b", "every": "100ms"}, "schedules.job.every must be at least 1s"),
    ({"run": "action:a.b", "every": "1m", "timezone": "UTC"}, "schedules.job.timezone applies"),
    ({"run": "action:a.b", "cron": "* * * * *", "timezone": "Mars/Olympus"},
     "schedules.job.timezone: 'Mars/Olympus' is not a known IANA zone"),
    ({"run": "action:a.b", "cron": "* * * * *", "timezone": "../../etc/passwd"},
     "schedules.job.timezone"),
    ({"run": "action:a.b", "cron": "* * * * *", "timezone": 3}, "schedules.job.timezone must"),
    ({"run": "nothing", "every": "1m"}, "schedules.job.run: 'nothing' is not a target"),
    ({"run": "event:Bad Topic", "every": "1m"}, "schedules.job.run: 'Bad Topic' is not a topic"),
    ({"run": "event:a.*", "every": "1m"}, "schedules.job.run: 'a.*' is not a topic"),
    ({"run": "action:", "every": "1m"}, "schedules.job.run"),
    ({"run": 7, "every": "1m"}, "schedules.job.run must be a string"),
    ({"run": "action:a.b", "every": "1m", "misfire_grace": 0}, "misfire_grace must be more"),
    ({"run": "action:a.b", "every": "1m", "misfire_grace": "8d"}, "at most 7d"),
    ({"run": "action:a.b", "every": "1m", "misfire_grace": "-1s"}, "misfire_grace"),
    ({"run": "action:a.b", "every": "1m", "coalesce": "first"}, "schedules.job.coalesce must"),
    ({"run": "action:a.b", "every": "1m", "jitter": "lots"}, "schedules.job.jitter 'lots'"),
    ({"run": "action:a.b", "every": "1m", "max_instances": 0}, "max_instances must be"),
    ({"run": "action:a.b", "every": "1m", "max_instances": True}, "max_instances must be"),
    ({"run": "action:a.b", "every": "1m", "max_instances": "2"}, "max_instances must be"),
    ({"run": "action:a.b", "every": "1m", "payload": {"x": "${event.id}"}},
     "schedules.job.payload.x: ${event.id}: unknown reference root"),
    ({"run": "action:a.b", "every": "1m", "payload": {"x": "${schedule.nope}"}},
     "schedules.job.payload.x"),
    ({"run": "action:a.b", "every": "1m", "payload": {"x": "${schedule.id"}},
     "unterminated reference"),
    ({"run": "event:a.b", "every": "1m", "payload": [1]}, "payload must be a table"),
    ({"run": "action:a.b", "every": "1m", "colour": "red"},
     "schedules.job.colour: unknown schedule field"),
]


@pytest.mark.parametrize(("body", "expected"), BAD, ids=[b[1][:40] for b in BAD])
def test_attack_every_bad_setting_is_one_line_naming_the_field(
    body: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_schedules({"ok": {"every": "1m", "run": "action:a.b"}, "job": body},
                        origin="/etc/app/oneiric.toml")
    message = str(info.value)
    assert message.startswith("/etc/app/oneiric.toml: schedules.job")
    assert expected.lower() in message.lower()
    assert "\n" not in message


@pytest.mark.parametrize("name", ["Bad Name", "x" * 65, "-lead"])
def test_attack_bad_schedule_id_is_one_line(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_schedules({name: {"every": "1m", "run": "action:a.b"}})
    assert f"schedules.{name}" in str(info.value) and "\n" not in str(info.value)


def test_attack_a_bad_table_registers_nothing(tmp_path: Path) -> None:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        '[schedules.good]\nevery = "1m"\nrun = "action:a.b"\n'
        '[schedules.zbad]\nevery = "1m"\nrun = "action:a.b"\ncoalesce = "never"\n'
    )
    settings = load_settings(config, state_dir=tmp_path / "state")
    resolver = Resolver()
    manager = LifecycleManager(resolver, settings=settings, activity_store=False,
                               write_status=False, state_dir=tmp_path / "state")
    with pytest.raises(ConfigError, match=r"oneiric\.toml: schedules\.zbad\.coalesce"):
        scheduler_for(manager)
    assert list(resolver.keys("task")) == []


async def test_attack_schedule_store_not_sqlite_is_one_line(tmp_path: Path) -> None:
    from oneiric.runtime._schedule_store import ScheduleStoreError

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "schedules.sqlite").write_bytes(b"not a database" * 100)
    store = ScheduleStore(state / "schedules.sqlite")
    schedule = parse_schedules({"job": {"every": "1m", "run": "action:a.b"}})["job"]
    with pytest.raises(ScheduleStoreError) as info:
        store.advance(schedule, 0.0, None)
    assert "move it aside" in str(info.value) and "\n" not in str(info.value)
    assert info.value.category == "invalid"


# ------------------------------------------------------------ kit, host service


@pytest.mark.parametrize(("payload", "path"), [
    ({"schedule": "nope", "op": "next"}, "schedule"),
    ({"schedule": "job", "op": "next", "count": 0}, "count"),
    ({"schedule": "job", "op": "next", "count": True}, "count"),
    ({"schedule": "job", "op": "later"}, "op"),
    ({"schedule": "job"}, "op"),
    ({"schedule": "job", "op": "next", "extra": 1}, None),
])
async def test_attack_task_schedule_kit_bad_payload_names_the_field(
    make_host: Any, payload: dict[str, Any], path: str | None
) -> None:
    from oneiric.actions import ActionInputError, Actions

    clock, calls = Clock(ts(2026, 6, 1, 12)), Calls()
    scheduler = make_host(table('every = "1m"\n'), calls, clock)
    with pytest.raises(ActionInputError) as info:
        await Actions(scheduler.lifecycle).invoke("task.schedule", payload)
    if path is not None:
        assert info.value.path == path
    assert "\n" not in str(info.value)
    assert calls.calls == []


async def test_task_schedule_kit_triggers_on_the_lifecycle_scheduler(make_host: Any) -> None:
    from oneiric.actions import Actions

    clock, calls = Clock(ts(2026, 6, 1, 12)), Calls()
    scheduler = make_host(table('every = "1m"\n'), calls, clock)
    result = await Actions(scheduler.lifecycle).invoke(
        "task.schedule", {"schedule": "job", "op": "trigger"})
    assert result.value["status"] == "ok"
    assert calls.keys == [result.value["dedupe_id"]]
    assert result.value["dedupe_id"].startswith("job:manual:")


async def test_host_services_include_the_scheduler_and_validate_schedules_first(
    tmp_path: Path
) -> None:
    from oneiric.runtime import _plugin

    class FakeHost:
        def __init__(self, toml: str, name: str) -> None:
            config = tmp_path / name
            config.mkdir()
            (config / "oneiric.toml").write_text(toml)
            settings = load_settings(config, state_dir=tmp_path / "state")
            self.state_dir = tmp_path / "state"
            self.lifecycle = LifecycleManager(Resolver(), settings=settings,
                                              activity_store=False, write_status=False,
                                              state_dir=self.state_dir)

    bad = FakeHost('[schedules.x]\nevery = "1m"\nrun = "action:a.b"\nmax_instances = 0\n', "b")
    with pytest.raises(ConfigError, match=r"schedules\.x\.max_instances"):
        _plugin.oneiric_host_services(bad)
    good = FakeHost('[schedules.x]\nevery = "1m"\nrun = "action:a.b"\n', "g")
    services = _plugin.oneiric_host_services(good)
    assert isinstance(services, list)
    async with services[-1] as scheduler:
        assert isinstance(scheduler, Scheduler)
        assert list(good.lifecycle.resolver.keys("task")) == ["x"]
    await good.lifecycle.shutdown()
    await bad.lifecycle.shutdown()
