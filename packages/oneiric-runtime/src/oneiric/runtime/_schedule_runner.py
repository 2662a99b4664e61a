"""The scheduler: registers ``[schedules]`` as ``task`` components, fires them, as a host service.

Each schedule is a candidate of domain ``task`` (key = schedule id, provider
``settings``, source ``Source("settings", <config dir>)``) whose factory
returns its ``Schedule``: ``oneiric explain task ID`` shows it and ``oneiric
pause task ID`` suppresses its fires - a paused key's due instants are
decided as misfires, and a fire takes a lease on the key while it runs, so a
pause or drain also stops a fire still waiting out its jitter.

``Scheduler.tick()`` is one look: for each schedule, ``ScheduleStore.advance``
decides (once for every host) what is due up to now and claims it; each
claimed fire becomes a task that waits its jitter, takes the lease and runs
the target - ``workflow:<id>`` as ``engine_for(lifecycle).run(id, payload,
run_id=<dedupe id>)``, ``action:<key>`` through ``Actions.invoke(...,
idempotency_key=<dedupe id>)``, ``event:<topic>`` by ``publish`` with the
dedupe id as the event id.  ``serve()`` alternates ticks and sleeps until
the next instant (at most ``MAX_SLEEP``, so reloaded settings and clock
jumps are noticed).  Clock, sleep and jitter randomness are injected.

``max_instances`` bounds the runs of one schedule in flight *in this
process*; a fire over it is skipped and counted (``busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneiric.core import (
    Candidate,
    ComponentDraining,
    ComponentPaused,
    NotActiveError,
    Resolver,
    Settings,
    get_logger,
)
from oneiric.core.helpers import one_line, uuid4_text
from oneiric.lifecycle import DomainBridge, LifecycleManager

from ._schedule import Schedule, ScheduleNotFound, parse_schedules
from ._schedule_store import DEFAULT_SCHEDULES, ScheduleState, ScheduleStore
from ._sections import Registered, register_tables, settings_source

__all__ = ["DOMAIN", "MAX_SLEEP", "FireResult", "Scheduler", "registered", "scheduler_for",
           "scheduler_service", "sync"]

_log = get_logger("oneiric.runtime.schedules")

DOMAIN = "task"
#: The longest sleep between looks (seconds).
MAX_SLEEP = 60.0
_OWNER = "oneiric.runtime.schedules"
_REGISTERED = _OWNER + ".registered"


# ------------------------------------------------------------------ registration


def registered(lifecycle: LifecycleManager) -> dict[str, Schedule]:
    """The schedules registered on ``lifecycle``'s resolver (synced first)."""
    sync(lifecycle.resolver, lifecycle.settings)
    state: Registered = lifecycle.resolver.extension(_REGISTERED, Registered)
    return state.values


def sync(resolver: Resolver, settings: Settings | None) -> None:
    """Register the settings' schedules as ``task`` candidates (idempotent).

    All are validated first, so an invalid table registers nothing; a reload
    replaces the previous settings' schedules and unregisters removed ones.
    Called by ``oneiric_settings_applied`` (every resolver settings are applied
    to: a host's, the CLI's, a reload's) and by ``scheduler_for``.
    """
    if settings is None:
        return
    state: Registered = resolver.extension(_REGISTERED, Registered)
    if state.settings is settings:
        return
    config_dir = settings.config_dir
    origin = str(config_dir / "oneiric.toml") if config_dir is not None else ""
    schedules = parse_schedules(getattr(settings, "schedules", {}), origin=origin)
    source = settings_source(config_dir)
    candidates = {
        s.id: Candidate(DOMAIN, s.id, "settings", _factory(s), source=source,
                        metadata={"schedule": s.spec, "run": s.run},
                        description=f"schedule {s.id}: {s.spec}, run {s.run}")
        for s in schedules.values()
    }
    register_tables(resolver, state, settings, DOMAIN, candidates, schedules)


def _factory(schedule: Schedule) -> Callable[[], Schedule]:
    return lambda: schedule


# ---------------------------------------------------------------------- firing


@dataclass(frozen=True, slots=True)
class FireResult:
    """How one fire ended: ``ok``, ``failed``, ``busy`` (max_instances) or ``paused``."""

    schedule: str
    dedupe_id: str
    fire_time: float
    status: str
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        from oneiric.core.helpers import format_timestamp

        return {"schedule": self.schedule, "dedupe_id": self.dedupe_id,
                "fire_time": format_timestamp(self.fire_time), "status": self.status,
                "result": self.result, "error": self.error}


class Scheduler:
    """Fires the schedules of ``lifecycle.settings`` (or ``schedules``) on time, once.

    Usable right after construction: the store (``<state dir>/schedules.sqlite``
    unless given) opens on first use.  ``clock`` returns POSIX seconds,
    ``sleep`` waits seconds, ``rng`` returns a float in ``[0, 1)`` for jitter.
    """

    def __init__(
        self,
        lifecycle: LifecycleManager,
        *,
        schedules: dict[str, Schedule] | None = None,
        store: ScheduleStore | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.lifecycle = lifecycle
        self._schedules = schedules
        self._store = store
        self._state_dir = state_dir
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self._rng = rng
        self._checked: dict[str, float] = {}  # schedule id -> this scheduler's previous look
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[list[FireResult]]] = set()

    @property
    def store(self) -> ScheduleStore:
        if self._store is None:
            from oneiric.core import state_dir

            self._store = ScheduleStore(Path(state_dir(self._state_dir)) / DEFAULT_SCHEDULES,
                                        clock=self._clock)
        return self._store

    @property
    def schedules(self) -> dict[str, Schedule]:
        return self._schedules if self._schedules is not None else registered(self.lifecycle)

    def get(self, schedule_id: str) -> Schedule:
        found = self.schedules.get(schedule_id)
        if found is None:
            raise ScheduleNotFound(
                f"no schedule {schedule_id!r} is configured; configured: "
                f"{', '.join(sorted(self.schedules)) or 'none'} (add [schedules.{schedule_id}] "
                "to oneiric.toml)"
            )
        return found

    def next(self, schedule_id: str, count: int = 1, *, after: float | None = None
             ) -> list[float]:
        """The next ``count`` fire times of ``schedule_id`` after ``after`` (default now)."""
        schedule = self.get(schedule_id)
        start = self._clock() if after is None else after
        found: list[float] = []
        for instant in schedule.instants(start):
            if len(found) >= count:
                break
            found.append(instant)
        return found

    def state(self, schedule_id: str) -> ScheduleState:
        return self.store.state(self.get(schedule_id).id)

    # ------------------------------------------------------------------ looking

    async def tick(self) -> list[asyncio.Task[list[FireResult]]]:
        """One look at every schedule: claim what is due and start its fires.

        One task per schedule: several instants due at once (``coalesce = "all"``)
        run one after another, in order, in one of the schedule's ``max_instances``.
        """
        now = self._clock()
        started: list[asyncio.Task[list[FireResult]]] = []
        for schedule in self.schedules.values():
            paused = await self.is_paused(schedule.id)
            claimed, due = self.store.advance(schedule, now, self._checked.get(schedule.id),
                                              paused=paused)
            self._checked[schedule.id] = now
            if due.misfired:
                _log.warning("schedule misfired", schedule=schedule.id, count=due.misfired,
                             paused=paused, dropped_over_catch_up_bound=due.dropped)
            if claimed:
                started.append(self._start(schedule, claimed, manual=False))
        return started

    def next_wakeup(self) -> float | None:
        """The earliest next instant of any schedule after now (``None``: no schedule)."""
        now = self._clock()
        times = [t for s in self.schedules.values() if (t := s.next_after(now)) is not None]
        return min(times) if times else None

    async def serve(self) -> None:
        """Look, then sleep until the next instant (at most ``MAX_SLEEP``), until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a locked store or bad reload: log, look again later
                _log.error("schedule look failed", error=f"{type(exc).__name__}: "
                                                         f"{one_line(exc)}")
            wake = self.next_wakeup()
            delay = MAX_SLEEP if wake is None else min(max(wake - self._clock(), 0.0), MAX_SLEEP)
            await self._sleep(delay)

    async def trigger(self, schedule_id: str) -> FireResult:
        """Fire ``schedule_id`` now (dedupe id ``<id>:manual:<uuid>``) and wait for it."""
        schedule = self.get(schedule_id)
        dedupe = f"{schedule.id}:manual:{uuid4_text()}"
        now = self._clock()
        self.store.claim_manual(schedule.id, dedupe, now)
        (result,) = await self._start(schedule, [(now, dedupe)], manual=True)
        return result

    async def wait_idle(self) -> list[FireResult]:
        """Wait for every fire in flight; their results."""
        results: list[FireResult] = []
        while self._tasks:
            for done in await asyncio.gather(*list(self._tasks)):
                results.extend(done)
        return results

    async def aclose(self, timeout: float | None = None) -> None:
        """Let fires in flight finish (up to ``timeout`` seconds, then cancel), close the store."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._store is not None:
            self._store.close()

    # ------------------------------------------------------------------ running

    async def is_paused(self, schedule_id: str) -> bool:
        """Whether the schedule's ``task`` key is paused or draining (activates it first)."""
        with contextlib.suppress(Exception):  # an unactivatable key is found at fire time
            await self.lifecycle.activate(DOMAIN, schedule_id)
        return self.lifecycle.activity(DOMAIN, schedule_id) != "active"

    def _start(self, schedule: Schedule, fires: list[tuple[float, str]], *, manual: bool
               ) -> asyncio.Task[list[FireResult]]:
        busy = self._in_flight.get(schedule.id, 0) >= schedule.max_instances and not manual
        if not busy:
            self._in_flight[schedule.id] = self._in_flight.get(schedule.id, 0) + 1
        task = asyncio.ensure_future(self._fire_all(schedule, fires, manual, busy))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _fire_all(self, schedule: Schedule, fires: list[tuple[float, str]], manual: bool,
                        busy: bool) -> list[FireResult]:
        if busy:
            _log.warning("schedule busy: fire skipped", schedule=schedule.id,
                         max_instances=schedule.max_instances, fires=len(fires))
            return [self._settle(schedule, t, dedupe, "busy") for t, dedupe in fires]
        try:
            return [await self._fire(schedule, t, dedupe, manual) for t, dedupe in fires]
        finally:
            self._in_flight[schedule.id] -= 1

    async def _fire(self, schedule: Schedule, fire_time: float, dedupe: str, manual: bool
                    ) -> FireResult:
        try:
            if schedule.jitter and not manual:
                await self._sleep(schedule.jitter * self._rng())
            try:
                lease = DomainBridge[Schedule](DOMAIN, self.lifecycle).lease(schedule.id)
                await lease.__aenter__()
            except NotActiveError:
                await self.lifecycle.activate(DOMAIN, schedule.id)
                lease = DomainBridge[Schedule](DOMAIN, self.lifecycle).lease(schedule.id)
                await lease.__aenter__()
            try:
                result = await self._run(schedule, fire_time, dedupe, manual)
            finally:
                await lease.__aexit__(None, None, None)
        except (ComponentPaused, ComponentDraining) as exc:
            if manual:
                self._settle(schedule, fire_time, dedupe, "failed", one_line(exc))
                raise
            return self._settle(schedule, fire_time, dedupe, "paused", one_line(exc))
        except Exception as exc:
            error = f"{type(exc).__name__}: {one_line(exc)}"
            _log.error("schedule fire failed", schedule=schedule.id, dedupe_id=dedupe,
                       error=error)
            return self._settle(schedule, fire_time, dedupe, "failed", error)
        if isinstance(result, FireResult):
            return result
        return self._settle(schedule, fire_time, dedupe, "ok", result=result)

    def _settle(self, schedule: Schedule, fire_time: float, dedupe: str, status: str,
                error: str = "", *, result: Any = None) -> FireResult:
        self.store.settle(schedule.id, dedupe, status, error)
        return FireResult(schedule.id, dedupe, fire_time, status, result, error or None)

    async def _run(self, schedule: Schedule, fire_time: float, dedupe: str, manual: bool
                   ) -> Any:
        payload = schedule.payload(fire_time, dedupe, manual=manual)
        if schedule.kind == "workflow":
            from ._host import engine_for

            run = await engine_for(self.lifecycle, state_dir=self._state_dir).run(
                schedule.target, payload, run_id=dedupe)
            if run.status != "succeeded":
                return self._settle(schedule, fire_time, dedupe, "failed",
                                    f"workflow run {run.run_id} ended {run.status}",
                                    result={"run_id": run.run_id, "status": run.status})
            return {"run_id": run.run_id, "status": run.status}
        if schedule.kind == "event":
            from ._host import dispatcher_for

            dispatcher = dispatcher_for(self.lifecycle, state_dir=self._state_dir)
            return {"event_id": await dispatcher.publish(schedule.target, payload, id=dedupe)}
        from oneiric.actions import Actions

        outcome = await Actions(self.lifecycle).invoke(schedule.target, payload,
                                                       idempotency_key=dedupe)
        return outcome.value


# ------------------------------------------------------------------- the host


def scheduler_for(lifecycle: LifecycleManager, *, state_dir: str | os.PathLike[str] | None = None
                  ) -> Scheduler:
    """The ``Scheduler`` of ``lifecycle``'s resolver, created on first use.

    Registers ``[schedules]`` as ``task`` candidates first (``ConfigError`` in
    one line if one is invalid, and nothing registered).
    """
    sync(lifecycle.resolver, lifecycle.settings)
    if state_dir is None:  # the lifecycle's own (a Host's, the CLI's --state-dir), as engine_for
        state_dir = lifecycle.state_dir
    return lifecycle.resolver.extension(_OWNER, lambda: Scheduler(lifecycle,
                                                                  state_dir=state_dir))


@contextlib.asynccontextmanager
async def scheduler_service(host: Any, drain_timeout: float = 20.0) -> AsyncIterator[Scheduler]:
    """Fire the host's schedules while it runs; let running fires finish when it stops."""
    scheduler = scheduler_for(host.lifecycle, state_dir=host.state_dir)
    task = asyncio.ensure_future(scheduler.serve())
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await scheduler.aclose(drain_timeout)
