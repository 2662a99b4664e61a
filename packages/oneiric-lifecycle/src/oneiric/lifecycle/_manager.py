"""``LifecycleManager``: activation, swaps with rollback, leases, pause/drain, status.

The manager belongs to one event loop (the first one that uses it).  All of
its bookkeeping runs on that loop; the only things touched from other threads
are the resolver callback (which hops to the loop with
``call_soon_threadsafe``), ``lease_sync()`` (which only increments a binding's
lease count under that binding's lock) and ``handle().instance`` reads.

Swap order, per key under the key's lock: build → init → health →
``oneiric_pre_swap`` → **bind** → ``oneiric_post_swap`` → retire the old
binding, whose cleanup runs in the background once its leases reach zero and
the grace period has passed.  Anything failing before bind leaves the old
binding untouched (see ``_swap.prepare``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import (
    Candidate,
    ComponentDraining,
    ComponentPaused,
    NotActiveError,
    NotRegisteredError,
    OneiricError,
    Resolver,
    SelectionUnavailableError,
    SwapError,
    SwapTransition,
    call_hook,
    get_logger,
    state_dir,
    validate_name,
)
from oneiric.core.telemetry import counter, histogram, span

from ._bridge import Handle, Inactive
from ._component import HealthReport, call_optional, maybe_await, to_health
from ._config import LifecycleConfig
from ._errors import ActivityStoreError
from ._slot import Binding, Failure, Slot
from ._status import document, iso, key_status, snapshot_path, write_snapshot
from ._swap import Prepared, SwapResult, cleanup_instance, prepare

if TYPE_CHECKING:
    import pluggy

    from ._activity import ActivityRecord, ActivityStore

__all__ = ["LifecycleManager"]

_log = get_logger("oneiric.lifecycle.manager")

SlotKey = tuple[str, str, str | None]
KeyRef = tuple[str, str]


def _listing(names: list[str]) -> str:
    return ", ".join(sorted(set(names))) or "none"


class LifecycleManager:
    """Runs the providers the resolver picks: activation, hot swap, leases, drain, status.

    ``settings`` supplies provider settings, swap policies and the
    ``[lifecycle]`` section (unless ``config`` is given); ``activity_store``
    makes pause/drain decisions of any process apply here; ``hooks`` is the
    pluggy manager whose ``oneiric_pre_swap``/``oneiric_post_swap`` run
    (default: the process-wide one).  ``state_dir`` is where the status
    snapshot goes (default: ``oneiric.core.state_dir()``; ``write_status=False``
    writes none); ``clock`` stamps status times (injectable for tests).
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        settings: Any = None,
        activity_store: ActivityStore | None = None,
        hooks: pluggy.PluginManager | None = None,
        config: LifecycleConfig | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        write_status: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self._settings = settings
        self._explicit_config = config is not None
        self.config = (
            config
            if config is not None
            else LifecycleConfig.from_settings(settings)
            if settings is not None
            else LifecycleConfig()
        )
        self.activity_store = activity_store
        self._hooks = hooks
        self._clock = clock
        self._state_dir_arg = state_dir
        self._write_status = write_status
        self._status_file: Path | None = None
        self._slots: dict[SlotKey, Slot] = {}
        self._activity: dict[KeyRef, ActivityRecord] = {}
        self._blocked: dict[KeyRef, ActivityRecord] = {}  # paused or draining keys only
        self._activity_error: str | None = None
        self._activity_version: int | None = None
        self._drained_seen: dict[SlotKey, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._watchers: list[Any] = []
        self._seq = 0
        self._closed = False
        self._stopping = asyncio.Event()
        self._started_at = clock()
        self._unsubscribe: Callable[[], None] | None = resolver.subscribe(self._on_resolver_change)
        self._unsubscribe_store: Callable[[], None] | None = (
            activity_store.subscribe(self._on_local_activity) if activity_store else None
        )

    # ------------------------------------------------------------ properties

    @property
    def hooks(self) -> pluggy.PluginManager:
        return self._hooks if self._hooks is not None else self.resolver.hooks

    @property
    def settings(self) -> Any:
        return self._settings

    @property
    def status_path(self) -> Path | None:
        """Where the status snapshot is written (known once the manager ran on its loop)."""
        return self._status_file

    def set_settings(self, settings: Any) -> None:
        """Use new settings for the next builds and swap-policy decisions.

        The ``SelectionWatcher`` calls this on reload; bound instances keep the
        settings they were built with until they are swapped.
        """
        if not self._explicit_config and settings is not None:
            self.config = LifecycleConfig.from_settings(settings)
        self._settings = settings
        self._dirty()

    # -------------------------------------------------------------- the loop

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise NotActiveError(
                "this LifecycleManager was shut down; create a new one to activate providers"
            )
        if self._loop is None:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            if self._write_status:
                self._status_file = snapshot_path(state_dir(self._state_dir_arg))
            self._refresh_activity()
            if self.activity_store is not None or self._write_status:
                self._poll_task = loop.create_task(self._poll(), name="oneiric-lifecycle-poll")
        elif self._loop is not loop:
            raise RuntimeError(
                "this LifecycleManager belongs to another event loop; create one per loop"
            )
        return loop

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ resolution

    def _choose(
        self, domain: str, key: str, provider: str | None, tenant: str | None
    ) -> Candidate:
        """The candidate to build: the resolver's winner, or the named provider."""
        if provider is None:
            return self.resolver.resolve(domain, key, tenant=tenant)
        name, _, origin_text = provider.partition("@")
        validate_name(name, "provider")
        candidates = self.resolver.candidates(domain, key)
        if not candidates:
            raise NotRegisteredError(domain, key, self.resolver.keys(domain))
        origin = tuple(origin_text.split(":", 1)) if origin_text else None
        matches = [
            c for c in candidates
            if c.provider == name and (origin is None or c.source.origin == origin)
        ]
        if not matches:
            raise SelectionUnavailableError(
                domain, key, provider, "not registered",
                [c.provider for c in candidates], tenant=tenant,
            )
        chosen = matches[0]
        try:
            ranking = self.resolver.explain(domain, key, tenant=tenant).ranking
        except SelectionUnavailableError:
            ranking = ()
        for ranked in ranking:
            if ranked.candidate == chosen and not ranked.eligible:
                raise SelectionUnavailableError(
                    domain, key, provider, ranked.reason,
                    [c.provider for c in candidates], tenant=tenant,
                )
        return chosen

    def _settings_for(self, candidate: Candidate) -> Any:
        if candidate.settings_model is None:
            return None
        settings = self._settings
        if settings is None:
            from oneiric.core import Settings

            settings = Settings()
        return settings.settings_for(candidate)

    def _selection_of(self, slot: Slot) -> str | None:
        return self.resolver.selections(slot.domain, tenant=slot.tenant).get(slot.key)

    def _policy(self, domain: str, key: str) -> str:
        settings = self._settings
        return str(settings.swap_policy(domain, key)) if settings is not None else "sticky"

    # ----------------------------------------------------------------- slots

    def _find_slot(self, domain: str, key: str, tenant: str | None) -> Slot | None:
        if tenant is not None:
            slot = self._slots.get((domain, key, tenant))
            if slot is not None:
                return slot
        return self._slots.get((domain, key, None))

    def _not_active(self, domain: str, key: str, tenant: str | None) -> NotActiveError:
        scope = f" for tenant {tenant!r}" if tenant else ""
        active = [s.key for s in self._slots.values() if s.domain == domain and s.current]
        slot = self._find_slot(domain, key, tenant)
        why = ""
        if self._closed:
            why = " (the lifecycle was shut down)"
        elif slot is not None and slot.failures:
            why = f" (its last activation failed: {slot.failures[-1].error})"
        return NotActiveError(
            f"{domain}/{key}{scope} is not active{why}; active {domain} keys: "
            f"{_listing(active)}; call 'await lifecycle.activate({domain!r}, {key!r})' first"
        )

    def _handle(self, domain: str, key: str, tenant: str | None) -> Handle[Any]:
        slot = self._find_slot(domain, key, tenant)
        if slot is None or slot.current is None:
            raise self._not_active(domain, key, tenant)
        return slot.handle

    def _refused(self, record: ActivityRecord) -> OneiricError:
        who = f" by {record.actor}" if record.actor else ""
        when = f" at {iso(record.at)}" if record.at else ""
        note = f": {record.note}" if record.note else ""
        what = f"{record.domain}/{record.key}"
        resume = f"run 'oneiric resume {record.domain} {record.key}' to accept leases again"
        if record.state == "paused":
            return ComponentPaused(
                f"{what} is paused{who}{when}{note}; new leases are refused; {resume}"
            )
        return ComponentDraining(
            f"{what} is draining{who}{when}{note}; in-flight work finishes, new leases are "
            f"refused; {resume}"
        )

    def _acquire(self, domain: str, key: str, tenant: str | None) -> Binding:
        """Take a lease on the bound binding (the per-request path: dict reads only)."""
        blocked = self._blocked
        if blocked:
            record = blocked.get((domain, key))
            if record is not None:
                raise self._refused(record)
        slot = None
        if tenant is not None:
            slot = self._slots.get((domain, key, tenant))
        if slot is None:
            slot = self._slots.get((domain, key, None))
            if slot is None:
                raise self._not_active(domain, key, tenant)
        while True:
            binding = slot.current
            if binding is None:
                raise self._not_active(domain, key, tenant)
            if binding.acquire():
                return binding
            # retired between the read and the acquire: the next read sees the new one

    # -------------------------------------------------------------- activate

    async def activate(
        self, domain: str, key: str, provider: str | None = None, *, tenant: str | None = None
    ) -> Any:
        """Build, check and bind the provider of ``(domain, key)``; return the instance.

        A second call on an active key returns the bound instance.  A tenant
        gets its own instance when it has its own selection (or ``provider``
        is given); otherwise it shares the global one.  Failures raise the
        ``SwapError`` subclass of the failing step (nothing is bound);
        ``NotRegisteredError``/``SelectionUnavailableError`` for unknown keys or
        providers.
        """
        self._bind_loop()
        validate_name(domain, "domain")
        validate_name(key, "key")
        if tenant is not None and (
            provider is not None
            or (domain, key, tenant) in self._slots
            or key in self.resolver.selections(domain, tenant=tenant)
        ):
            ref: SlotKey = (domain, key, tenant)
        else:
            ref = (domain, key, None)
        slot = self._slots.get(ref)
        if slot is not None and slot.bound is not None:
            return slot.bound.instance
        candidate = self._choose(domain, key, provider, ref[2])  # bad input: nothing created
        if slot is None:
            slot = Slot(*ref, Handle(*ref, Inactive(f"{domain}/{key} is not active yet")))
            self._slots[ref] = slot
        async with slot.lock:
            if slot.bound is not None:
                return slot.bound.instance
            if provider is None:
                candidate = self._choose(domain, key, None, ref[2])
            binding, _, _ = await self._install(
                slot, candidate, force=False, reason="activate", manual=provider is not None
            )
            return binding.instance

    # ------------------------------------------------------------------ swap

    async def swap(
        self,
        domain: str,
        key: str,
        provider: str | None = None,
        *,
        tenant: str | None = None,
        force: bool = False,
    ) -> SwapResult:
        """Replace the bound instance of ``(domain, key)``; return after the new one is bound.

        ``provider`` defaults to the resolver's winner; naming the bound
        provider rebuilds it (reload).  On failure the old instance keeps
        serving and a ``SwapError`` subclass is raised.  ``force=True`` binds
        despite a failing health check, never an instance whose init failed.
        """
        self._bind_loop()
        validate_name(domain, "domain")
        validate_name(key, "key")
        slot = self._slots.get((domain, key, tenant))
        if slot is None or slot.bound is None:
            if tenant is not None and self._slots.get((domain, key, None)) is not None:
                raise NotActiveError(
                    f"{domain}/{key} has no instance of its own for tenant {tenant!r} (it "
                    "shares the global one); swap without tenant= or "
                    f"'await lifecycle.activate({domain!r}, {key!r}, tenant={tenant!r})' first"
                )
            raise self._not_active(domain, key, tenant)
        candidate = self._choose(domain, key, provider, tenant)
        async with slot.lock:
            if slot.bound is None:
                raise self._not_active(domain, key, tenant)
            if provider is None:
                candidate = self._choose(domain, key, None, tenant)
            old_provider = slot.bound.provider
            binding, prepared, duration = await self._install(
                slot, candidate, force=force, reason="manual swap", manual=True
            )
        return SwapResult(
            domain, key, tenant, old_provider, binding.provider, force, prepared.health,
            duration, "manual swap",
        )

    async def _install(
        self, slot: Slot, candidate: Candidate, *, force: bool, reason: str, manual: bool
    ) -> tuple[Binding, Prepared, float]:
        """Prepare ``candidate`` and bind it to ``slot`` (caller holds ``slot.lock``)."""
        old = slot.bound
        old_provider = old.provider if old is not None else None

        def transition(instance: Any) -> SwapTransition:
            return SwapTransition(
                slot.domain, slot.key, slot.tenant, old_provider, candidate.provider,
                instance, force, reason,
            )

        start = time.perf_counter()
        try:
            with span(
                "oneiric.swap", domain=slot.domain, key=slot.key, tenant=slot.tenant,
                provider=candidate.provider, old_provider=old_provider, reason=reason,
                force=force,
            ):
                prepared = await prepare(
                    candidate,
                    settings_for=self._settings_for,
                    config=self.config,
                    hooks=self.hooks,
                    transition=transition,
                    force=force,
                    track=self._track,
                )
        except BaseException as exc:
            duration = time.perf_counter() - start
            failure = self._record_failure(slot, candidate, exc, reason, manual)
            self._metrics(slot, duration, failure.kind)
            if isinstance(exc, SwapError) and exc.args:
                keeps = (
                    f"{old_provider!r} keeps serving" if old_provider else "nothing was bound"
                )
                exc.args = (f"{exc.args[0]}; {keeps}",)
                failure.error = str(exc)
            raise
        duration = time.perf_counter() - start
        now = self._clock()
        binding = Binding(prepared.instance, candidate, settings=prepared.settings, bound_at=now)
        # bind: two assignments, no await in between
        slot.bound = binding
        if slot.override is None:
            slot.handle.instance = binding.instance
        if slot.activation_seq == 0:
            self._seq += 1
            slot.activation_seq = self._seq
        if old is not None:
            slot.swaps += 1
        slot.latency.add(duration)
        self._metrics(slot, duration, "bound")
        slot.selection_seen = self._selection_of(slot)
        if prepared.health is not None:
            slot.last_health = (prepared.health, now)
        try:
            winner: Candidate | None = self.resolver.resolve(
                slot.domain, slot.key, tenant=slot.tenant
            )
        except OneiricError:
            winner = None
        slot.manual = (candidate.provider, now) if manual and winner != candidate else None
        slot.sticky_since = None
        slot.auto_failure = None
        slot.deferred = None
        _log.info(
            "bound", domain=slot.domain, key=slot.key, tenant=slot.tenant,
            provider=candidate.provider, old_provider=old_provider, reason=reason,
            forced=force, duration_s=round(duration, 6),
        )
        try:
            await self._post_swap(slot, transition(binding.instance))
        finally:
            if old is not None:
                self._retire(slot, old, self.config.grace_period)
            self._dirty()
        return binding, prepared, duration

    def _record_failure(
        self, slot: Slot, candidate: Candidate, exc: BaseException, reason: str, manual: bool
    ) -> Failure:
        if isinstance(exc, asyncio.CancelledError):
            kind, error_type, text = "cancelled", "CancelledError", "cancelled before bind"
        else:
            kind = type(exc).__name__
            error_type = str(getattr(exc, "error_type", kind))
            text = str(exc) or kind
        failure = Failure(
            at=self._clock(), provider=candidate.provider, kind=kind,
            error_type=error_type, error=text, reason=reason,
        )
        slot.failures.append(failure)
        slot.failure_count += 1
        if not manual:
            slot.auto_failure = failure
        _log.warning(
            "swap failed", domain=slot.domain, key=slot.key, tenant=slot.tenant,
            provider=candidate.provider, kind=kind, error_type=error_type, error=text,
            reason=reason,
        )
        self._dirty()
        return failure

    def _metrics(self, slot: Slot, duration: float, outcome: str) -> None:
        if "opentelemetry" not in sys.modules:  # no SDK can be installed: skip the import
            return
        attributes = {"domain": slot.domain, "key": slot.key, "outcome": outcome}
        histogram("oneiric.swap.duration", "Time from build to bind (or failure)").record(
            duration, attributes
        )
        counter("oneiric.swap.count", "Swaps and activations by outcome").add(1, attributes)

    async def _post_swap(self, slot: Slot, transition: SwapTransition) -> None:
        """Run each ``oneiric_post_swap`` separately; failures are recorded, never raised."""
        for result in call_hook(self.hooks, "oneiric_post_swap", transition=transition):
            error = result.error
            if error is None:
                try:
                    await maybe_await(result.value, self.config.post_swap_timeout)
                    continue
                except Exception as exc:
                    error = exc
            text = (
                f"post-swap hook {result.plugin} timed out"
                if isinstance(error, TimeoutError)
                else f"post-swap hook {result.plugin} raised {type(error).__name__}: {error}"
            )
            slot.post_swap_errors.append(text)
            _log.warning("post-swap hook failed", domain=slot.domain, key=slot.key, error=text)

    # ---------------------------------------------------------------- retire

    def _retire(self, slot: Slot, binding: Binding, grace: float) -> asyncio.Task[Any]:
        slot.retiring.add(binding)
        return self._spawn(
            self._cleanup_after(slot, binding, grace), f"oneiric-cleanup-{slot.domain}-{slot.key}"
        )

    async def _cleanup_after(self, slot: Slot, binding: Binding, grace: float) -> None:
        """Clean ``binding`` up once no lease holds it and ``grace`` seconds have passed."""
        loop = asyncio.get_running_loop()
        idle = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(idle.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        if not binding.retire(wake):
            await idle.wait()
        if grace > 0 and not self._closed:
            # shutdown() ends every grace period early: it must not wait for them
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), grace)
        await self._cleanup(slot, binding)

    async def _cleanup(self, slot: Slot, binding: Binding) -> None:
        try:
            if binding.cleaned or binding.override:
                return
            binding.cleaned = True
            name = f"{slot.domain}/{slot.key}/{binding.provider}"
            error = await cleanup_instance(binding.instance, name, self.config.cleanup_timeout)
            if error is not None:
                slot.component_errors.append(error)
        finally:
            slot.retiring.discard(binding)
            self._dirty()

    # ----------------------------------------------------------------- probe

    async def probe(
        self, domain: str, key: str, *, tenant: str | None = None
    ) -> HealthReport:
        """Run the bound instance's ``health()`` now and record it in status."""
        self._bind_loop()
        slot = self._find_slot(domain, key, tenant)
        if slot is None or slot.current is None:
            raise self._not_active(domain, key, tenant)
        while True:
            binding = slot.current
            if binding is None:
                raise self._not_active(domain, key, tenant)
            if binding.acquire():
                break
        timeout = self.config.health_timeout
        try:
            present, value = await call_optional(binding.instance, "health", timeout)
            report = to_health(value) if present else HealthReport(True, "no health() method")
        except TimeoutError:
            report = HealthReport(False, f"health() timed out after {timeout:g} s")
        except Exception as exc:
            report = HealthReport(False, f"health() raised {type(exc).__name__}: {exc}")
        finally:
            binding.release()
        slot.last_health = (report, self._clock())
        self._dirty()
        return report

    # ----------------------------------------------------- automatic swaps

    def _on_resolver_change(self, changes: frozenset[KeyRef]) -> None:
        """Resolver callback, on the writer's thread: hop to the manager's loop."""
        loop = self._loop
        if loop is None or self._closed:
            return
        try:
            loop.call_soon_threadsafe(self._handle_changes, changes)
        except RuntimeError:  # loop closed
            pass

    def _handle_changes(self, changes: frozenset[KeyRef]) -> None:
        if self._closed:
            return
        for slot in list(self._slots.values()):
            if (slot.domain, slot.key) in changes and slot.bound is not None:
                self._evaluate(slot)
        self._dirty()

    def _evaluate(self, slot: Slot) -> None:
        """Decide whether a resolver change swaps ``slot`` (selection, or greedy policy)."""
        assert slot.bound is not None
        bound = slot.bound.candidate
        selection = self._selection_of(slot)
        try:
            winner: Candidate | None = self.resolver.resolve(
                slot.domain, slot.key, tenant=slot.tenant
            )
        except OneiricError as exc:
            winner = None
            _log.warning(
                "winner unavailable; bound provider keeps serving",
                domain=slot.domain, key=slot.key, error=str(exc),
            )
        if selection != slot.selection_seen:
            slot.selection_seen = selection
            if winner is not None and winner != bound:
                what = f"selection changed to {selection}" if selection else "selection removed"
                self._schedule(slot, what)
            return
        if winner is None or winner == bound:
            slot.sticky_since = None
            return
        if self._policy(slot.domain, slot.key) == "greedy":
            self._schedule(slot, f"greedy: better candidate {winner.provider} ({winner.source})")
        elif slot.sticky_since is None:
            slot.sticky_since = self._clock()

    def _schedule(self, slot: Slot, reason: str) -> None:
        slot.pending = reason
        if slot.auto_task is None or slot.auto_task.done():
            slot.auto_task = self._spawn(
                self._auto_swap(slot), f"oneiric-swap-{slot.domain}-{slot.key}"
            )

    async def _auto_swap(self, slot: Slot) -> None:
        while slot.pending is not None and not self._closed:
            reason, slot.pending = slot.pending, None
            record = self._blocked.get((slot.domain, slot.key))
            if record is not None:
                slot.deferred = reason
                _log.info(
                    "swap deferred", domain=slot.domain, key=slot.key, state=record.state,
                    reason=reason,
                )
                self._dirty()
                return
            async with slot.lock:
                if slot.bound is None or self._closed:
                    return
                try:
                    target = self.resolver.resolve(slot.domain, slot.key, tenant=slot.tenant)
                except OneiricError:
                    self._dirty()
                    continue
                if target == slot.bound.candidate:
                    slot.deferred = None
                    self._dirty()
                    continue
                try:
                    await self._install(slot, target, force=False, reason=reason, manual=False)
                except SwapError:
                    pass  # recorded in status by _install; the old instance keeps serving

    # -------------------------------------------------------------- activity

    def _on_local_activity(self, record: ActivityRecord) -> None:
        """A write through our own store object: no need to wait for the poll."""
        loop = self._loop
        if loop is None or self._closed:
            return
        try:
            loop.call_soon_threadsafe(self._refresh_activity)
        except RuntimeError:
            pass

    def _refresh_activity(self) -> None:
        store = self.activity_store
        if store is None or self._closed:
            return
        try:
            version = store.data_version()
            records = store.records()
        except ActivityStoreError as exc:
            if self._activity_error != str(exc):
                _log.error("activity store unreadable; keeping last known state", error=str(exc))
            self._activity_error = str(exc)
            self._dirty()
            return
        self._activity_error = None
        self._activity_version = version
        self._apply_activity({(r.domain, r.key): r for r in records})

    def _apply_activity(self, records: Mapping[KeyRef, ActivityRecord]) -> None:
        before = self._blocked
        blocked = {ref: r for ref, r in records.items() if r.state != "active"}
        self._activity = dict(records)
        self._blocked = blocked  # one reference swap: readers in other threads see old or new
        for ref in before.keys() | blocked.keys():
            old_state = before[ref].state if ref in before else "active"
            new_state = blocked[ref].state if ref in blocked else "active"
            if old_state == new_state:
                continue
            _log.info("activity", domain=ref[0], key=ref[1], state=new_state, was=old_state)
            for slot in [s for s in self._slots.values() if (s.domain, s.key) == ref]:
                binding = slot.bound
                if binding is not None and new_state == "paused":
                    self._spawn(self._component_call(slot, binding, "pause"), "oneiric-pause")
                if binding is not None and old_state == "paused":
                    self._spawn(self._component_call(slot, binding, "resume"), "oneiric-resume")
                if new_state == "active" and slot.deferred is not None and slot.bound:
                    reason, slot.deferred = slot.deferred, None
                    self._schedule(slot, f"{reason} (deferred until resume)")
        self._dirty()

    async def _component_call(self, slot: Slot, binding: Binding, name: str) -> None:
        try:
            await call_optional(binding.instance, name, self.config.init_timeout)
        except Exception as exc:
            text = (
                f"{name}() of {slot.domain}/{slot.key}/{binding.provider} raised "
                f"{type(exc).__name__}: {exc}"
            )
            slot.component_errors.append(text)
            _log.warning("component call failed", error=text)
            self._dirty()

    async def _poll(self) -> None:
        """Background: see other processes' activity writes; notice drained keys."""
        interval = max(self.config.activity_poll_interval, 0.01)
        while not self._closed:
            await asyncio.sleep(interval)
            store = self.activity_store
            if store is not None:
                try:
                    version = store.data_version()
                except ActivityStoreError as exc:
                    self._activity_error = str(exc)
                    self._dirty()
                else:
                    if version != self._activity_version or self._activity_error:
                        self._refresh_activity()
            drained = {
                slot.ref: slot.in_flight() == 0
                for slot in self._slots.values()
                if (rec := self._blocked.get((slot.domain, slot.key))) is not None
                and rec.state == "draining"
            }
            if drained != self._drained_seen:
                self._drained_seen = drained
                for ref, done in drained.items():
                    if done:
                        _log.info("drained", domain=ref[0], key=ref[1], tenant=ref[2])
                self._dirty()

    def drained(self, domain: str, key: str) -> bool:
        """True when ``domain/key`` is draining and no lease on any of its instances is held."""
        record = self._blocked.get((domain, key))
        if record is None or record.state != "draining":
            return False
        return all(
            s.in_flight() == 0 for s in self._slots.values() if (s.domain, s.key) == (domain, key)
        )

    def activity(self, domain: str, key: str) -> str:
        """``active``, ``paused`` or ``draining`` as this manager currently sees it."""
        record = self._blocked.get((domain, key))
        return record.state if record is not None else "active"

    # ---------------------------------------------------------------- status

    def status(self, domain: str | None = None) -> dict[str, Any]:
        """The status document (see ``oneiric.lifecycle._status`` for its shape)."""
        keys: list[dict[str, Any]] = []
        for slot in sorted(
            self._slots.values(), key=lambda s: (s.domain, s.key, s.tenant or "")
        ):
            if domain is not None and slot.domain != domain:
                continue
            winner: Candidate | None
            try:
                winner = self.resolver.resolve(slot.domain, slot.key, tenant=slot.tenant)
                winner_error = None
            except OneiricError as exc:
                winner, winner_error = None, str(exc)
            current = slot.current
            registered = True
            if current is not None and current.candidate is not None:
                identity = current.candidate.identity
                registered = any(
                    c.identity == identity
                    for c in self.resolver.candidates(slot.domain, slot.key)
                )
            keys.append(
                key_status(
                    slot,
                    winner=winner,
                    winner_error=winner_error,
                    registered=registered,
                    activity=self._activity.get((slot.domain, slot.key)),
                )
            )
        store = self.activity_store
        return document(
            keys,
            started_at=self._started_at,
            written_at=self._clock(),
            config=[w.status() for w in self._watchers],
            activity={
                "path": str(store.path) if store is not None else None,
                "error": self._activity_error,
            },
        )

    def _dirty(self) -> None:
        """Schedule a snapshot write (coalesced: at most one per ``status_interval``)."""
        loop = self._loop
        if (
            loop is None
            or self._closed
            or self._status_file is None
            or self._snapshot_timer is not None
        ):
            return
        if threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._dirty)
            return
        self._snapshot_timer = loop.call_later(self.config.status_interval, self.write_status)

    def write_status(self) -> Path | None:
        """Write the status snapshot now; return its path (None when disabled)."""
        self._snapshot_timer = None
        path = self._status_file
        if path is None or self._closed:
            return None
        try:
            write_snapshot(path, self.status())
        except OSError as exc:
            _log.warning("cannot write status snapshot", path=str(path), error=str(exc))
            return None
        return path

    # -------------------------------------------------------------- override

    @contextmanager
    def override(
        self, domain: str, key: str, obj: Any, *, tenant: str | None = None
    ) -> Iterator[Any]:
        """Serve ``obj`` for ``(domain, key)`` inside the block (tests).

        Handles and leases return ``obj``; it is never initialized, checked or
        cleaned up.  On exit the bound instance (if any) is served again.
        """
        validate_name(domain, "domain")
        validate_name(key, "key")
        ref: SlotKey = (domain, key, tenant)
        slot = self._slots.get(ref)
        created = slot is None
        if slot is None:
            slot = Slot(domain, key, tenant, Handle(domain, key, tenant, obj))
            self._slots[ref] = slot
        previous = slot.override
        slot.override = Binding(obj, None, bound_at=self._clock(), override=True)
        slot.handle.instance = obj
        try:
            yield obj
        finally:
            slot.override = previous
            current = slot.current
            if current is not None:
                slot.handle.instance = current.instance
            else:
                slot.handle.instance = Inactive(f"{domain}/{key} is not active")
                if created and self._slots.get(ref) is slot and not slot.failures:
                    del self._slots[ref]

    # -------------------------------------------------------------- shutdown

    async def shutdown(self) -> None:
        """Clean up every instance, in reverse activation order, and wait for pending cleanups.

        Waits for leases still held on each instance.  Idempotent.
        """
        if self._closed:
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("shutdown() must run on the LifecycleManager's event loop")
        self._closed = True
        self._stopping.set()
        for unsubscribe in (self._unsubscribe, self._unsubscribe_store):
            if unsubscribe is not None:
                unsubscribe()
        self._unsubscribe = self._unsubscribe_store = None
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None
        background = [t for t in (self._poll_task,) if t is not None]
        background += [s.auto_task for s in self._slots.values() if s.auto_task is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for slot in sorted(self._slots.values(), key=lambda s: s.activation_seq, reverse=True):
            async with slot.lock:
                binding, slot.bound = slot.bound, None
                if slot.override is None:
                    slot.handle.instance = Inactive(
                        f"{slot.domain}/{slot.key} is not active (the lifecycle was shut down)"
                    )
            if binding is not None:
                await self._retire(slot, binding, 0.0)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._status_file is not None:
            try:
                self._status_file.unlink(missing_ok=True)
            except OSError:
                pass
        _log.info("lifecycle shut down", keys=len(self._slots))

    def __repr__(self) -> str:
        active = sum(1 for s in self._slots.values() if s.bound is not None)
        return f"<LifecycleManager active={active} closed={self._closed}>"
