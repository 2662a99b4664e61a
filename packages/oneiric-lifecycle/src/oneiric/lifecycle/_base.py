"""The manager's shared state and the lookups every job of the manager uses.

``LifecycleManager`` is assembled from one class per job, each in its own
module and each built on the one below it (no job calls a job above it):

    ManagerBase      (_base)        state, slot lookups, background tasks
    StatusJob        (_statusjob)   status(), write_status(), the coalesced snapshot
    RetireJob        (_retire)      cleanup of replaced instances once leases end
    InstallJob       (_install)     prepare + bind a candidate, failures, post-swap hooks
    AutoSwapJob      (_autoswap)    resolver changes → which keys swap (sticky/greedy/deferred)
    ActivityJob      (_activityjob) pause/drain/resume from the ActivityStore, refused leases
    LifecycleManager (_manager)     the public API: activate, swap, probe, override, shutdown

The attributes are declared here and set by ``LifecycleManager.__init__``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oneiric.core import Candidate, NotActiveError, Resolver

from ._config import LifecycleConfig
from ._handle import Handle
from ._slot import KeyRef, Slot, SlotKey, SlotTable

if TYPE_CHECKING:
    import pluggy

    from oneiric.core import Settings

    from ._activity import ActivityRecord, ActivityStore
    from ._status import WatcherStatus

__all__ = ["ManagerBase", "StatusSource", "SwapHooks"]


class StatusSource(Protocol):
    """What reports into the manager's status ``config`` list (a ``SelectionWatcher``)."""

    def status(self) -> WatcherStatus: ...


def _listing(names: list[str]) -> str:
    return ", ".join(sorted(set(names))) or "none"


def _live_impls(hooks: pluggy.PluginManager, name: str) -> list[object] | None:
    """pluggy's own list of ``name``'s implementations, read in place (pluggy 1.x).

    Only a plain ``HookCaller`` keeps one list for its lifetime (updated in
    place by register/unregister); for anything else (no caller yet, a subset
    caller, another pluggy) None: ask ``get_hookimpls()`` each time.
    """
    import pluggy

    caller = getattr(hooks.hook, name, None)
    if type(caller) is not pluggy.HookCaller:
        return None
    impls = getattr(caller, "_hookimpls", None)
    return impls if type(impls) is list else None


def _has_impls(hooks: pluggy.PluginManager, name: str) -> bool:
    caller = getattr(hooks.hook, name, None)
    return caller is not None and bool(caller.get_hookimpls())


class SwapHooks:
    """Whether ``oneiric_pre_swap``/``oneiric_post_swap`` have implementations, per swap.

    Asked twice per swap; with pluggy's lists read in place (see
    ``_live_impls``) each answer is one truth test instead of a list copy.
    Valid for one plugin manager (``manager``).
    """

    __slots__ = ("_post", "_pre", "manager")

    def __init__(self, manager: pluggy.PluginManager | None) -> None:
        self.manager = manager
        self._pre = _live_impls(manager, "oneiric_pre_swap") if manager is not None else None
        self._post = _live_impls(manager, "oneiric_post_swap") if manager is not None else None

    def pre(self) -> bool:
        """Whether an ``oneiric_pre_swap`` implementation is registered now."""
        if self._pre is not None:
            return bool(self._pre)
        return self.manager is not None and _has_impls(self.manager, "oneiric_pre_swap")

    def post(self) -> bool:
        """Whether an ``oneiric_post_swap`` implementation is registered now."""
        if self._post is not None:
            return bool(self._post)
        return self.manager is not None and _has_impls(self.manager, "oneiric_post_swap")


class ManagerBase:
    """State shared by the manager's jobs, and the lookups they all use."""

    resolver: Resolver
    config: LifecycleConfig
    activity_store: ActivityStore | None
    _default_store: bool  # open the state dir's store at first use, close it at shutdown
    _settings: Settings | None
    _explicit_config: bool
    _hooks: pluggy.PluginManager | None
    _clock: Callable[[], float]
    _state_dir_arg: str | os.PathLike[str] | None
    _write_status: bool
    _status_file: Path | None
    _slots: SlotTable
    # domain -> key -> the Handle of every global slot that serves something
    # (bound or overridden): DomainBridge.handle's fast path reads it.  Kept by
    # _serve() wherever a global slot's ``current`` changes; the inner dicts are
    # never replaced (bridges hold them), only updated.
    _served: dict[str, dict[str, Handle[object]]]
    _activity: dict[KeyRef, ActivityRecord]
    _blocked: dict[KeyRef, ActivityRecord]  # paused or draining keys only
    _activity_error: str | None
    _activity_version: int | None
    _drained_seen: dict[SlotKey, bool]
    _loop: asyncio.AbstractEventLoop | None
    _loop_thread: int
    _tasks: set[asyncio.Task[Any]]
    _poll_task: asyncio.Task[None] | None
    _health_task: asyncio.Task[None] | None
    _snapshot_timer: asyncio.TimerHandle | None
    _watchers: list[StatusSource]
    _seq: int
    _swap_hooks: SwapHooks
    _closed: bool
    _stopping: asyncio.Event
    _started_at: float

    @property
    def hooks(self) -> pluggy.PluginManager:
        """The pluggy manager whose swap hooks run (default: the resolver's)."""
        return self._hooks if self._hooks is not None else self.resolver.hooks

    def _swap_hooks_of(self, hooks: pluggy.PluginManager) -> SwapHooks:
        """The ``SwapHooks`` of ``hooks`` (kept while the plugin manager is the same)."""
        cached = self._swap_hooks
        if cached.manager is not hooks:
            cached = self._swap_hooks = SwapHooks(hooks)
        return cached

    @property
    def settings(self) -> Settings | None:
        """The settings builds and swap policies use (``set_settings`` replaces them)."""
        return self._settings

    # ------------------------------------------------------ background tasks

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------- settings

    def _settings_for(self, candidate: Candidate) -> object:
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

    def _served_of(self, domain: str) -> dict[str, Handle[object]]:
        """The served handles of ``domain``'s global slots, by key (a live dict, not a copy)."""
        served = self._served.get(domain)
        if served is None:
            served = self._served[domain] = {}
        return served

    def _serve(self, slot: Slot) -> None:
        """Keep ``_served`` in step with a global slot after its ``current`` changed.

        ``_served[domain][key] is slot.handle`` exactly when ``_handle(domain,
        key, None)`` would return that handle: the global slot is in the table
        and serves something.  Tenant slots are not indexed (a tenant's handle
        takes the slow path, which decides between its own slot and the global one).
        """
        if slot.tenant is not None:
            return
        served = self._served.get(slot.domain)
        if served is None:
            served = self._served_of(slot.domain)
        if (slot.override is not None or slot.bound is not None) and self._slots.get(
            (slot.domain, slot.key, None)
        ) is slot:
            served[slot.key] = slot.handle
        elif served.get(slot.key) is slot.handle:
            del served[slot.key]

    def _handle(self, domain: str, key: str, tenant: str | None) -> Handle[object]:
        slot = self._find_slot(domain, key, tenant)
        if slot is None or slot.current is None:
            raise self._not_active(domain, key, tenant)
        return slot.handle
