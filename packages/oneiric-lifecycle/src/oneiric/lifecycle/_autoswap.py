"""The manager's auto-swap job: which keys a resolver change swaps, and when.

The resolver calls back on the writer's thread; the manager hops to its loop
and, per bound key, decides: a changed *selection* swaps to the new winner
whatever the policy; a better candidate swaps only under ``greedy`` (under
``sticky`` status says since when it waits).  A swap of a paused or draining
key is deferred (``slot.deferred``) until resume; ``ActivityJob`` reschedules
it.  Each key has at most one swap task; a later reason replaces a pending one.

A re-issued selection (``oneiric swap`` of the provider already selected, e.g.
after a failed swap's target recovered) changes no selection, so the resolver
reports nothing; the watcher then asks for ``reconcile_selections``: every
bound key with an explicit selection whose winner is not the bound provider
swaps again (deferred as usual while paused or draining).
"""

from __future__ import annotations

import threading

from oneiric.core import Candidate, OneiricError, SwapError, get_logger

from ._install import InstallJob
from ._slot import KeyRef, Slot

__all__ = ["AutoSwapJob"]

_log = get_logger("oneiric.lifecycle.manager")


class AutoSwapJob(InstallJob):
    """The resolver subscription: evaluate changed keys, schedule and run their swaps."""

    def _on_resolver_change(self, changes: frozenset[KeyRef]) -> None:
        """Resolver callback, on the writer's thread: hop to the manager's loop."""
        loop = self._loop
        if loop is None or self._closed:
            return
        if threading.get_ident() == self._loop_thread:
            loop.call_soon(self._handle_changes, changes)  # no self-pipe write to wake it
            return
        try:
            loop.call_soon_threadsafe(self._handle_changes, changes)
        except RuntimeError:  # loop closed
            pass

    def _handle_changes(self, changes: frozenset[KeyRef]) -> None:
        if self._closed:
            return
        for domain, key in changes:  # the touched keys' slots, not every slot (SlotTable)
            for slot in self._slots.of(domain, key):
                if slot.bound is not None:
                    self._evaluate(slot)
        self._dirty()

    def reconcile_selections(self, reason: str = "selection re-issued") -> None:
        """Swap every selected key whose winner is not bound; thread-safe, returns at once.

        Keys without an explicit selection are left alone: under ``sticky`` a
        better candidate waiting is not a request to swap.
        """
        loop = self._loop
        if loop is None or self._closed:
            return
        try:
            loop.call_soon_threadsafe(self._reconcile, reason)
        except RuntimeError:  # loop closed
            pass

    def _reconcile(self, reason: str) -> None:
        if self._closed:
            return
        for slot in list(self._slots.values()):
            if slot.bound is None or (slot.auto_task is not None and not slot.auto_task.done()):
                continue  # not bound, or a swap task already resolves the current winner
            selection = self._selection_of(slot)
            if selection is None:
                continue
            try:
                winner = self.resolver.resolve(slot.domain, slot.key, tenant=slot.tenant)
            except OneiricError:
                continue  # the selection is unavailable: status already says why
            if winner != slot.bound.candidate:
                self._schedule(slot, f"{reason}: {selection}")
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
