"""``EventDispatcher``: isolated, bounded, retried, dead-lettered, explainable event delivery.

Handlers are components of domain ``event`` (key = handler name), so a
handler is activated, leased, swapped, paused and drained by the lifecycle
like any component; its subscription lives in the winning candidate's
``metadata`` (or comes from ``subscribe()`` in code).  What this module adds:

- **routing** - every group whose handlers match the topic and filter gets
  the event; inside a group one handler runs: highest ``priority``, ties to
  the name that sorts first, paused/draining ones passed over; with
  ``failover`` the next one runs if it fails.  ``route()`` explains it.
- **isolation** - each group runs in its own task; a handler's exception
  becomes its ``HandlerOutcome``, never its siblings' problem (no
  ExceptionGroup escapes).  Cancelling ``emit`` cancels in-flight handlers
  and waits for them.
- **bounds** - a global semaphore (``max_concurrency``) and one per handler
  (its ``max_concurrency``); ``publish`` goes through a bounded inbox.
- **retries and dead letters** - ``RetryPolicy`` per attempt, each attempt
  under the handler's ``timeout``; exhausted or non-retryable → one
  dead-letter record; non-idempotent handlers deduplicated on (event id, group).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from oneiric.core import (
    Candidate,
    ComponentDraining,
    ComponentPaused,
    ConfigError,
    NotActiveError,
    OneiricError,
    RetryPolicy,
    Source,
)
from oneiric.core.helpers import Suspended, one_line, run_eagerly, start_task
from oneiric.core.telemetry import active as telemetry_active
from oneiric.core.telemetry import counter, histogram, span
from oneiric.lifecycle import DomainBridge, LifecycleManager

from ._bound import Bound
from ._dedupe import Dedupe
from ._errors import InvalidEventError, SubscriptionError
from ._event import DEFAULT_MAX_PAYLOAD_BYTES, Event, payload_size
from ._handlers import NULL_LIMIT, Entry, FunctionHandler, HandlerContext, HandlerTimeout
from ._inbox import Inbox, Overflow
from ._letter import scrub_error
from ._reports import DispatchReport, HandlerOutcome, RoutePlan
from ._subscription import Subscription
from ._table import DOMAIN, RoutingTable

__all__ = ["DOMAIN", "EventDispatcher", "HandlerContext"]

_CODE = Source("code", "subscribe")


class EventDispatcher:
    """Emit, publish and route events to the handlers of a ``LifecycleManager``.

    Usable right after construction; the dead-letter store opens on first use
    (``dead_letters=None``: ``<state dir>/dead-letters.sqlite``, the state dir
    being ``state_dir`` or ``oneiric.core.state_dir()``; ``False``: none,
    exhausted handlers report ``failed``).  ``sleep``/``rng`` drive the
    retry waits (tests inject them).
    """

    def __init__(
        self,
        lifecycle: LifecycleManager,
        *,
        transport: Any = None,
        dead_letters: Any = None,
        max_concurrency: int = 64,
        inbox: int = 1000,
        overflow: Overflow = "block",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        state_dir: str | os.PathLike[str] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        for name, value in (("max_concurrency", max_concurrency), ("inbox", inbox),
                            ("max_payload_bytes", max_payload_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"EventDispatcher {name} must be an integer >= 1, got {value!r}")
        self.lifecycle = lifecycle
        self.max_concurrency = max_concurrency
        self.max_payload_bytes = max_payload_bytes
        self._bridge: DomainBridge[Any] = DomainBridge(DOMAIN, lifecycle)
        self._transport = transport if transport is not None else Inbox(inbox, overflow)
        self._dead_letters_arg = dead_letters
        self._state_dir = state_dir
        self._dead_letters: Any = None if dead_letters is None else (dead_letters or None)
        self._sleep = sleep or asyncio.sleep
        self._rng = rng
        self._global = Bound(max_concurrency)
        self._limits: dict[str, Bound] = {}
        # A transport may bring its own dedupe (Redis: shared, awaited); else in memory, sync.
        self._dedupe: Any = getattr(self._transport, "dedupe", None) or Dedupe()
        if hasattr(self._transport, "attach"):
            self._transport.attach(self)  # it consumes the groups of these subscriptions
        self._routes = RoutingTable(lifecycle.resolver)
        self._in_flight = 0
        self._peak = 0
        #: Handler outcomes by status since the dispatcher was made (``/metrics``).
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._closed = False

    # ------------------------------------------------------------ subscriptions

    def subscribe(
        self,
        name: str,
        handler: Any,
        *,
        topics: str | list[str] | tuple[str, ...],
        filter: Mapping[str, Any] | None = None,
        priority: int = 0,
        group: str | None = None,
        failover: bool = False,
        max_concurrency: int | None = None,
        timeout: float | str | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Subscription:
        """Subscribe ``handler`` (an object with ``handle(event, context)`` or a function).

        It becomes candidate ``event/<name>`` (provider ``code``), so it is
        leased, paused and swapped like a plugin's handler.
        """
        fields: dict[str, Any] = {"topics": topics, "priority": priority, "failover": failover,
                                  "idempotent": idempotent}
        for key, value in (("filter", filter), ("group", group), ("timeout", timeout),
                           ("max_concurrency", max_concurrency), ("retry", retry)):
            if value is not None:
                fields[key] = value
        subscription = Subscription.from_fields(name, fields)
        component = handler if callable(getattr(handler, "handle", None)) else None
        if component is None:
            if not callable(handler):
                raise SubscriptionError(
                    f"event handler {name!r} is a {type(handler).__name__}: pass a function "
                    "handle(event, context) or an object with a handle method"
                )
            component = FunctionHandler(handler)

        def factory() -> object:
            return component

        self._routes.code[name] = (subscription, factory)
        self.lifecycle.resolver.register(Candidate(
            DOMAIN, name, "code", factory, source=_CODE,
            metadata={k: v for k, v in subscription.as_dict().items() if k != "name"},
        ))
        return subscription

    def subscriptions(self) -> list[Subscription]:
        """Every handler's current subscription (its winning candidate's), by name."""
        return [e.subscription for e in self._entries()]

    def errors(self) -> dict[str, str]:
        """Handlers left out of routing and why (an invalid subscription, no eligible provider)."""
        return self._routes.errors()

    def _entries(self) -> list[Entry]:
        return self._routes.entries()

    # ------------------------------------------------------------------ routing

    def _blocked(self, name: str) -> str | None:
        """``"paused: note"``/``"draining"`` when new leases on the handler would be refused."""
        try:
            lease = self._bridge.lease(name)
            lease.__enter__()
        except ComponentPaused as exc:
            note_text = getattr(exc, "note", "")
            note = f" ({note_text})" if note_text else ""
            return f"paused{note}"
        except ComponentDraining:
            return "draining"
        except NotActiveError:
            return None
        lease.__exit__()
        return None

    def _groups(self, event: Event) -> dict[str, list[Entry]]:
        """Matching handlers by group, each list in run order (priority, then name)."""
        groups: dict[str, list[Entry]] = {}
        payload = event.payload
        for entry in self._routes.matching(event.topic):
            flt = entry.subscription.filter
            if flt is not None and flt.check(payload) is not None:
                continue
            groups.setdefault(entry.subscription.group, []).append(entry)
        for members in groups.values():
            if len(members) > 1:
                members.sort(key=lambda e: (-e.subscription.priority, e.subscription.name))
        return groups

    def route(self, topic: str, payload: Mapping[str, Any] | None = None) -> RoutePlan:
        """Which handlers would run for this event and why every other one would not."""
        from ._route import plan_route

        return plan_route(self, topic, payload if payload is not None else {})

    # ---------------------------------------------------------------- emitting

    def _event(self, topic: str, payload: Mapping[str, Any], **ids: Any) -> Event:
        event = Event(topic, payload, **ids)
        size = payload_size(event.payload)
        if size > self.max_payload_bytes:
            raise InvalidEventError(
                f"event payload is {size} bytes, over the {self.max_payload_bytes}-byte cap; "
                "send a reference (a storage key) instead of the data"
            )
        return event

    async def emit(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> DispatchReport:
        """Run the matching handlers now and wait; one outcome per handler that ran."""
        event = self._event(topic, payload, id=id, correlation_id=correlation_id,
                            causation_id=causation_id, headers=headers)
        return await self.dispatch(event)

    async def dispatch(self, event: Event, *, groups: set[str] | None = None,
                       final: bool = True) -> DispatchReport:
        """Deliver an already-built ``event`` (consumers, redrive); ``groups`` limits it.

        ``final=False``: a failure is not dead-lettered (the transport delivers it again).
        """
        planned = self._groups(event)
        if groups is not None:
            planned = {g: m for g, m in planned.items() if g in groups}
        if not planned:
            return DispatchReport(event.id, ())
        if len(planned) == 1:
            ((group, members),) = planned.items()
            return DispatchReport(event.id,
                                  tuple(await self._deliver(event, group, members, final)))
        # Groups start eagerly, one after another, in this task: most handlers finish
        # without suspending and cost no task.  The first group that suspends goes on
        # in this task (its timeouts and cancel scopes are bound to it: its rest must
        # not move to another task); the groups after it start as tasks of their own.
        results: list[Any] = []
        tasks: list[asyncio.Task[list[HandlerOutcome]]] = []
        staying: tuple[int, Any] | None = None
        try:
            for group, members in planned.items():
                if staying is None:
                    started = run_eagerly(self._deliver(event, group, members, final))
                    if type(started) is Suspended:
                        staying = (len(results), started.rest)
                        results.append(None)
                        continue
                    results.append(started)
                else:
                    task = start_task(self._deliver(event, group, members, final))
                    tasks.append(task)
                    results.append(task)
            if staying is not None:
                results[staying[0]] = await staying[1]
            if tasks:
                await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)  # in-flight handlers are really gone before we return
            raise
        outcomes = (r.result() if isinstance(r, asyncio.Task) else r for r in results)
        return DispatchReport(event.id, tuple(o for group in outcomes for o in group))

    async def _deliver(
        self, event: Event, group: str, members: list[Entry], final: bool = True
    ) -> list[HandlerOutcome]:
        """One group: the first runnable member; the next ones only by failover.

        A group of one needs no look-ahead: its lease refuses a paused handler
        the same way, and the event is dead-lettered for redrive.
        """
        if len(members) == 1:
            order = members
        else:
            runnable = [m for m in members if self._blocked(m.subscription.name) is None]
            order = runnable or members[:1]  # all blocked: the first fails into a dead letter
        outcomes: list[HandlerOutcome] = []
        for entry in order:
            outcome = await self._run(event, group, entry, final)
            outcomes.append(outcome)
            if outcome.ok or not entry.subscription.failover:
                break
        return outcomes

    async def _run(self, event: Event, group: str, entry: Entry, final: bool) -> HandlerOutcome:
        sub = entry.subscription
        name = sub.name
        dedupe = not sub.idempotent
        seen = dedupe and self._dedupe.seen(event.id, group)
        if seen is True or (seen is not False and await seen):
            self.outcomes["duplicate"] += 1
            return HandlerOutcome(name, entry.provider, "duplicate", 0, None, group)
        limit = self._limit(sub)
        policy = sub.retry
        waits = list(policy.delays(self._rng)) if policy is not None else []
        attempt = 0
        provider: str | None = entry.provider
        while True:
            attempt += 1
            error: BaseException | None = None
            timed_out = False
            async with limit if limit is not None else NULL_LIMIT, self._global:
                self._in_flight += 1
                if self._in_flight > self._peak:
                    self._peak = self._in_flight
                try:
                    if telemetry_active():
                        provider = await self._traced(event, group, entry, attempt)
                    else:
                        provider = await self._call(event, group, entry, attempt)
                except Exception as exc:  # isolated: an outcome, never its siblings' problem
                    error = exc
                    timed_out = isinstance(exc, HandlerTimeout)
                finally:
                    self._in_flight -= 1
            if error is None:
                if dedupe and (recorded := self._dedupe.record(event.id, group)) is not None:
                    await recorded
                self.outcomes["ok"] += 1
                return HandlerOutcome(name, provider, "ok", attempt, None, group)
            retryable = not isinstance(error, ComponentPaused | ComponentDraining)
            if (retryable and policy is not None and attempt <= len(waits)
                    and policy.should_retry(error)):
                await self._sleep(waits[attempt - 1])
                continue
            text = f"{type(error).__name__}: {scrub_error(error)}"
            status = "timed_out" if timed_out else "failed"
            try:
                store = self._store() if final else None
                if store is not None:
                    store.add(event, handler=name, group=group, attempts=attempt, error=error)
                    status = "dead_lettered"
            except OneiricError as exc:  # a broken store must not turn a failure into a raise
                text += f"; not dead-lettered: {one_line(exc)}"
            self.outcomes[status] += 1
            return HandlerOutcome(name, provider, status, attempt, text, group)

    def _limit(self, sub: Subscription) -> Bound | None:
        bound = sub.max_concurrency
        if bound is None:
            return None
        held = self._limits.get(sub.name)
        if held is None or held.limit != bound:
            held = Bound(bound)
            self._limits[sub.name] = held
        return held

    async def _traced(self, event: Event, group: str, entry: Entry, attempt: int) -> str | None:
        """``_call`` inside a span, with the invocation metrics (OpenTelemetry in use)."""
        started = time.perf_counter()
        outcome = "error"
        with span("oneiric.event.handle", topic=event.topic, event_id=event.id,
                  handler=entry.subscription.name, group=group, attempt=attempt,
                  correlation_id=event.correlation_id):
            try:
                provider = await self._call(event, group, entry, attempt)
                outcome = "ok"
                return provider
            except HandlerTimeout:
                outcome = "timeout"
                raise
            finally:
                attributes = {"handler": entry.subscription.name, "outcome": outcome}
                counter("oneiric.event.handled", "Handler calls by outcome").add(1, attributes)
                histogram("oneiric.event.duration", "Handler call time").record(
                    time.perf_counter() - started, attributes
                )

    async def _call(self, event: Event, group: str, entry: Entry, attempt: int) -> str | None:
        """One attempt under a lease and the handler's timeout; returns the provider that ran."""
        sub = entry.subscription
        lease = self._bridge.lease(sub.name)
        try:
            instance = lease.__enter__()
        except NotActiveError:
            await self.lifecycle.activate(DOMAIN, sub.name)
            instance = lease.__enter__()
        try:
            timeout = sub.timeout
            deadline = time.monotonic() + timeout if timeout is not None else float("inf")
            context = HandlerContext(sub.name, lease.provider, group, attempt, deadline,
                                     self.lifecycle)
            result = run_eagerly(instance.handle(event, context))
            if type(result) is Suspended:
                result = result.rest
            elif not asyncio.iscoroutine(result) and not isinstance(result, asyncio.Future):
                return lease.provider
            if timeout is None:
                await result
                return lease.provider
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    await result
            except TimeoutError as exc:
                if scope.expired():
                    raise HandlerTimeout(
                        f"handler {sub.name!r} did not finish within {timeout:g}s"
                    ) from exc
                raise
            return lease.provider
        finally:
            lease.__exit__()

    def _store(self) -> Any:
        if self._dead_letters is None and self._dead_letters_arg is None:
            from oneiric.core import state_dir

            from ._deadletters import DEFAULT_DEAD_LETTERS, DeadLetterStore

            self._dead_letters = DeadLetterStore(
                Path(state_dir(self._state_dir)) / DEFAULT_DEAD_LETTERS
            )
            self._dead_letters_arg = self._dead_letters
        return self._dead_letters

    @property
    def dead_letters(self) -> Any:
        """The dead-letter store (opened on first use), or ``None`` when disabled."""
        return self._store()

    # ---------------------------------------------------------------- publish

    async def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Hand the event to the transport (the bounded inbox by default); return its id."""
        event = self._event(topic, payload, id=id, correlation_id=correlation_id,
                            causation_id=causation_id, headers=headers)
        await self._transport.put(event)
        return event.id

    @property
    def transport(self) -> Any:
        return self._transport

    def stats(self) -> dict[str, Any]:
        """In-flight handler calls, the peak seen, outcomes so far, the inbox depth and drops."""
        return {"in_flight": self._in_flight, "peak": self._peak,
                "outcomes": dict(self.outcomes), **self._transport.stats()}

    async def consume(self, workers: int = 4) -> None:
        """Serve the transport until cancelled: ``workers`` tasks dispatching what arrives."""
        await self._transport.serve(self.dispatch, workers)

    # ---------------------------------------------------------------- closing

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._routes.unsubscribe()
        store = self._dead_letters
        if store is not None:
            store.close()

    async def __aenter__(self) -> EventDispatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
