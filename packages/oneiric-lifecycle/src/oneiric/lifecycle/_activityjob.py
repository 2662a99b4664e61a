"""The manager's activity job: operator decisions (pause, drain, resume) applied here.

Decisions live in the shared ``ActivityStore`` (any process writes them); the
manager polls its cheap ``data_version()`` and re-reads only when it changed
(a write through the manager's own store object is applied at once).  A
paused or draining key refuses new leases (``ComponentPaused`` /
``ComponentDraining``); ``pause()``/``resume()`` of the bound instance are
called; a swap deferred by the pause runs on resume; a draining key is
reported drained once its leases reach zero.  An unreadable store keeps the
last known decisions (status shows the error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from oneiric.core import ComponentDraining, ComponentPaused, OneiricError, get_logger
from oneiric.core.helpers import format_timestamp, one_line

from ._autoswap import AutoSwapJob
from ._component import call_optional
from ._errors import ActivityStoreError
from ._slot import Binding, KeyRef, Slot

if TYPE_CHECKING:
    from ._activity import ActivityRecord, ActivityState

__all__ = ["ActivityJob"]

_log = get_logger("oneiric.lifecycle.manager")


class ActivityJob(AutoSwapJob):
    """Following the activity store; the lease path that honours its decisions."""

    def _refused(self, record: ActivityRecord) -> OneiricError:
        """The error a refused lease raises: one line naming no user, host or pid.

        Who paused is operator data (``oneiric activity``, ``.actor``), not text
        for an application's users: the message may reach an HTTP response.  The
        error carries ``domain``, ``key``, ``note``, ``actor`` and ``at`` as data.
        """
        when = f" since {format_timestamp(record.at)}" if record.at else ""
        note = f": {record.note}" if record.note else ""
        what = f"{record.domain}/{record.key}"
        resume = f"run 'oneiric resume {record.domain} {record.key}' to accept leases again"
        error: OneiricError
        if record.state == "paused":
            error = ComponentPaused(
                f"{what} is paused{when}{note}; new leases are refused; {resume}"
            )
        else:
            error = ComponentDraining(
                f"{what} is draining{when}{note}; in-flight work finishes, new leases are "
                f"refused; {resume}"
            )
        for name in ("domain", "key", "note", "actor", "at"):
            setattr(error, name, getattr(record, name))
        return error

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
        binding = slot.lease()
        if binding is None:
            raise self._not_active(domain, key, tenant)
        return binding

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

    def apply_activity(self, records: Iterable[ActivityRecord]) -> None:
        """Replace the pause/drain decisions in force with ``records`` (keys absent: active).

        For a control plane that is not this machine's activity store
        (oneiric-fleet's ``redis``): it feeds what its instances must honour
        here, with the same effects as a store write - leases refused, pause()
        and resume() called on bound instances, deferred swaps run on resume.
        Call it on the manager's event loop.
        """
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
            for slot in self._slots.of(*ref):
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
                f"{type(exc).__name__}: {one_line(exc)}"
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
        return all(s.in_flight() == 0 for s in self._slots.of(domain, key))

    def activity(self, domain: str, key: str) -> ActivityState:
        """``active``, ``paused`` or ``draining`` as this manager currently sees it."""
        record = self._blocked.get((domain, key))
        return record.state if record is not None else "active"
