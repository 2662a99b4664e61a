"""``LifecycleManager``: activation, swaps with rollback, leases, pause/drain, status.

The manager belongs to one event loop (the first one that uses it).  All of
its bookkeeping runs on that loop; the only things touched from other threads
are the resolver callback (which hops to the loop with
``call_soon_threadsafe``), ``lease_sync()`` (which only increments a binding's
lease count under that binding's lock) and ``handle().instance`` reads.

This module holds the public API; each job behind it has its own module (see
``_base``): status (``_statusjob``), retiring replaced instances (``_retire``),
binding (``_install``), automatic swaps (``_autoswap``) and pause/drain
(``_activityjob``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, TypeVar

from oneiric.core import (
    NotActiveError,
    OneiricError,
    Resolver,
    get_logger,
    state_dir,
    validate_name,
)
from oneiric.core.helpers import ACTIVITY_FILE, one_line, refuse_control_domain

from ._activityjob import ActivityJob
from ._base import SwapHooks
from ._component import HealthReport, call_optional, to_health
from ._config import LifecycleConfig
from ._handle import Handle, Inactive
from ._slot import Binding, Slot, SlotKey, SlotTable
from ._status import snapshot_path
from ._swap import SwapResult, swap_result

if TYPE_CHECKING:
    import pluggy

    from oneiric.core import Settings

    from ._activity import ActivityStore

__all__ = ["LifecycleManager"]

_log = get_logger("oneiric.lifecycle.manager")

Obj = TypeVar("Obj")


class LifecycleManager(ActivityJob):
    """Runs the providers the resolver picks: activation, hot swap, leases, drain, status.

    ``settings`` supplies provider settings, swap policies and the
    ``[lifecycle]`` section (unless ``config`` is given); ``activity_store``
    makes pause/drain decisions of any process apply here: by default (None)
    the state dir's store is opened at first use, so ``oneiric pause`` is
    honoured by every app; ``False`` disables it.  Every bound instance's
    ``health()`` is probed each ``config.health_interval`` and recorded in
    status (a failing probe reports only).  ``hooks`` is the
    pluggy manager whose ``oneiric_pre_swap``/``oneiric_post_swap`` run
    (default: the process-wide one).  ``state_dir`` is where the status
    snapshot goes (default: ``oneiric.core.state_dir()``; ``write_status=False``
    writes none); ``clock`` stamps status times (injectable for tests).
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        settings: Settings | None = None,
        activity_store: ActivityStore | Literal[False] | None = None,
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
        self.activity_store = activity_store or None
        self._default_store = activity_store is None
        self._hooks = hooks
        self._clock = clock
        self._state_dir_arg = state_dir
        self._write_status = write_status
        self._status_file = None
        self._slots = SlotTable()
        self._served = {}
        self._activity = {}
        self._blocked = {}
        self._activity_error = None
        self._activity_version = None
        self._drained_seen = {}
        self._loop = None
        self._loop_thread = 0
        self._tasks = set()
        self._poll_task = None
        self._health_task = None
        self._snapshot_timer = None
        self._watchers = []
        self._seq = 0
        self._swap_hooks = SwapHooks(None)
        self._closed = False
        self._stopping = asyncio.Event()
        self._started_at = clock()
        self._unsubscribe: Callable[[], None] | None = resolver.subscribe(self._on_resolver_change)
        self._unsubscribe_store: Callable[[], None] | None = (
            activity_store.subscribe(self._on_local_activity) if activity_store else None
        )

    # ------------------------------------------------------------ settings

    @property
    def state_dir(self) -> str | os.PathLike[str] | None:
        """The ``state_dir`` this lifecycle was given (``None``: ``oneiric.core.state_dir()``).

        Services built on it (dead letters, workflow checkpoints) keep their
        files beside its status snapshot and activity store - a ``Host``'s
        or the CLI's ``--state-dir`` - not in the process default.
        """
        return self._state_dir_arg

    def set_settings(self, settings: Settings | None) -> None:
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
            if self._default_store:
                self._open_default_store()
            self._refresh_activity()
            if self.config.activity_poll_interval > 0 and (
                self.activity_store is not None or self._write_status
            ):
                self._poll_task = loop.create_task(self._poll(), name="oneiric-lifecycle-poll")
            if self.config.health_interval > 0:
                self._health_task = loop.create_task(
                    self._probe_periodically(), name="oneiric-lifecycle-health"
                )
        elif self._loop is not loop:
            raise RuntimeError(
                "this LifecycleManager belongs to another event loop; create one per loop"
            )
        return loop

    def _open_default_store(self) -> None:
        """Open ``<state dir>/activity.sqlite``; unopenable → status shows why, leases go on."""
        from ._activity import ActivityStore

        try:  # ActivityStoreError (unopenable file) or ConfigError (unusable state dir)
            store = ActivityStore(state_dir(self._state_dir_arg) / ACTIVITY_FILE)
        except OneiricError as exc:
            self._activity_error = str(exc)
            _log.error("cannot open the activity store; pause/drain not honoured", error=str(exc))
            return
        self.activity_store = store
        self._unsubscribe_store = store.subscribe(self._on_local_activity)

    async def _probe_periodically(self) -> None:
        """Background: probe every bound instance so status never shows only bind-time health."""
        while not self._closed:
            await asyncio.sleep(max(self.config.health_interval, 0.01))
            for slot in list(self._slots.values()):
                if self._stopping.is_set():
                    return
                if slot.bound is None or slot.override is not None:
                    continue
                try:
                    await self.probe(slot.domain, slot.key, tenant=slot.tenant)
                except NotActiveError:
                    continue  # unbound meanwhile (swap failure, shutdown)

    # -------------------------------------------------------------- activate

    async def activate(
        self, domain: str, key: str, provider: str | None = None, *, tenant: str | None = None
    ) -> object:
        """Build, check and bind the provider of ``(domain, key)``; return the instance.

        The instance is whatever the provider's factory built (components
        share no base class), hence ``object``; typed code reads it through
        ``DomainBridge[T]`` handles and leases, where the application names ``T``.

        A second call on an active key returns the bound instance.  A tenant
        gets its own instance when it has its own selection (or ``provider``
        is given); otherwise it shares the global one.  Failures raise the
        ``SwapError`` subclass of the failing step (nothing is bound);
        ``NotRegisteredError``/``SelectionUnavailableError`` for unknown keys or
        providers.  Domain ``control`` is refused (the control plane is built
        once by ``control_plane(...)``, never lifecycle-activated).
        """
        refuse_control_domain(domain, f"activate {domain}/{key}")
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
        loop = self._loop
        if loop is None or self._closed or asyncio.get_running_loop() is not loop:
            self._bind_loop()  # first use, or the error that says why not
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
        lock = slot.lock  # acquire/release rather than ``async with``: two coroutines fewer
        await lock.acquire()
        try:
            if slot.bound is None:
                raise self._not_active(domain, key, tenant)
            if provider is None:
                candidate = self._choose(domain, key, None, tenant)
            old_provider = slot.bound.provider
            binding, prepared, duration = await self._install(
                slot, candidate, force=force, reason="manual swap", manual=True
            )
        finally:
            lock.release()
        return swap_result(
            domain, key, tenant, old_provider, binding.provider, force, prepared.health,
            duration, "manual swap",
        )

    # ----------------------------------------------------------------- probe

    async def probe(
        self, domain: str, key: str, *, tenant: str | None = None
    ) -> HealthReport:
        """Run the bound instance's ``health()`` now and record it in status."""
        self._bind_loop()
        slot = self._find_slot(domain, key, tenant)
        binding = slot.lease() if slot is not None else None
        if slot is None or binding is None:
            raise self._not_active(domain, key, tenant)
        timeout = self.config.health_timeout
        try:
            present, value = await call_optional(binding.instance, "health", timeout)
            report = to_health(value) if present else HealthReport(True, "no health() method")
        except TimeoutError:
            report = HealthReport(False, f"health() timed out after {timeout:g} s")
        except Exception as exc:
            report = HealthReport(False, f"health() raised {type(exc).__name__}: {one_line(exc)}")
        finally:
            binding.release()
        slot.last_health = (report, self._clock())
        self._dirty()
        return report

    # -------------------------------------------------------------- override

    @contextmanager
    def override(
        self, domain: str, key: str, obj: Obj, *, tenant: str | None = None
    ) -> Iterator[Obj]:
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
        self._serve(slot)
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
            self._serve(slot)

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
        background = [t for t in (self._poll_task, self._health_task) if t is not None]
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
                self._serve(slot)
            if binding is not None:
                cleanup = self._retire(slot, binding, 0.0)
                if cleanup is not None:
                    await cleanup
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._default_store and self.activity_store is not None:
            self.activity_store.close()
        if self._status_file is not None:
            try:
                self._status_file.unlink(missing_ok=True)
            except OSError:
                pass
        _log.info("lifecycle shut down", keys=len(self._slots))

    def __repr__(self) -> str:
        active = sum(1 for s in self._slots.values() if s.bound is not None)
        return f"<LifecycleManager active={active} closed={self._closed}>"
