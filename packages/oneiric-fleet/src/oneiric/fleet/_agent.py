"""``FleetAgent``: the ``redis`` plane's instance side, entered by the ``Host`` while it runs.

It follows the fleet (``Follower``) and applies what it yields to this
process - selections on top of the settings files' (the plane wins, as the
overlay does on one machine), pause/drain decisions through
``LifecycleManager.apply_activity`` - then acknowledges each revision once it
took effect: ``swapped`` (the target is bound, or the key is not active here),
``health_failed`` (the swap failed; the old provider keeps serving),
``missing`` (the provider is not installed here: nothing changed), ``paused``
at once, ``drained`` when no lease is held any more, ``resumed``.  Every
heartbeat it publishes this process's status document with the plane's
condition and the applied revision.

The first relist is applied before the host activates anything, so an
instance starts with the fleet's selections rather than swapping to them; if
Redis cannot be reached at start the host starts anyway with the settings
files' selections (and reports ``unreachable``).  It never unbinds anything
on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import TYPE_CHECKING, Any

from oneiric.core import Resolver, get_logger
from oneiric.core.helpers import one_line
from oneiric.lifecycle import ActivityRecord

from ._codec import FleetState, LoggedChange
from ._errors import FleetError
from ._follow import Changed, Condition, Follower, Relisted
from ._member import FleetMember

if TYPE_CHECKING:
    from oneiric.lifecycle import Host

    from ._settings import RedisPlaneSettings

__all__ = ["FleetAgent", "attached"]

_log = get_logger("oneiric.fleet")

#: The agent following the fleet for a resolver (the settings hook re-applies its selections).
_ATTACHED: weakref.WeakKeyDictionary[Resolver, FleetAgent] = weakref.WeakKeyDictionary()
#: How long the host's start waits for the first relist before going on without it.
FIRST_RELIST_WAIT = 5.0
_POLL = 0.02

SelectionRef = tuple[str, str, str | None]


def attached(resolver: Resolver) -> FleetAgent | None:
    return _ATTACHED.get(resolver)


class FleetAgent:
    """Apply the fleet's desired state to one host, acknowledge, publish status."""

    def __init__(self, settings: RedisPlaneSettings, host: Host) -> None:
        self.host = host
        self.member = FleetMember(settings.url, fleet=settings.fleet,
                                  heartbeat=settings.heartbeat)
        self.follower = Follower(self.member)
        self.selections: dict[SelectionRef, str] = {}
        self.canaries: dict[SelectionRef, str] = {}  # a canary's selections for this instance
        self._scopes: set[tuple[str, str | None]] = set()  # scopes this agent has written
        self._records: dict[tuple[str, str], ActivityRecord] = {}  # decisions applied here
        self._acks: dict[SelectionRef | tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._first = asyncio.Event()

    # --------------------------------------------------------------- run

    async def __aenter__(self) -> FleetAgent:
        _ATTACHED[self.host.resolver] = self
        self._tasks = [asyncio.ensure_future(self._follow()),
                       asyncio.ensure_future(self._heartbeat())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), FIRST_RELIST_WAIT)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = self._tasks + list(self._acks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FleetError):
            await self.member.leave()  # a clean stop is gone, not lost
        await self.member.aclose()
        _ATTACHED.pop(self.host.resolver, None)

    async def _follow(self) -> None:
        async for event in self.follower.events():
            try:
                if isinstance(event, Relisted):
                    self._relisted(event.state)
                elif isinstance(event, Changed):
                    self._changed(event.change)
                elif isinstance(event, Condition) and event.state != "ok":
                    self._first.set()  # start with the settings files' selections
            except Exception as exc:  # one bad event must not stop following
                _log.error("fleet event not applied", error=f"{type(exc).__name__}: "
                           f"{one_line(exc)}")
            with contextlib.suppress(FleetError):
                await self._publish()

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._publish()
            except FleetError:
                pass  # the follower reports the condition; the next beat tries again
            await asyncio.sleep(self.member.heartbeat)

    async def _publish(self) -> None:
        lifecycle = self.host.lifecycle
        document = dict(lifecycle.status())
        document["applied_revision"] = self.follower.applied
        document["control_plane"] = {
            "provider": "redis", "state": self.follower.condition,
            "epoch": self.follower.epoch, "revision": self.follower.applied,
            "detail": self.follower.detail,
        }
        await self.member.publish(document)

    # ------------------------------------------------------------- apply

    def _relisted(self, state: FleetState) -> None:
        me = self.member.instance
        self.selections = {ref: p for ref, p in state.selections.items()
                           if self._installed(ref, p)}
        self.canaries = {(d, k, t): p for (d, k, t, i), p in state.canaries.items()
                         if i == me and self._installed((d, k, t), p)}
        self.apply_selections()
        self._apply_activity(state)
        if self._first.is_set() and state.revision > 0:
            # caught up by a relist (a gap, a reconnect): the latest revision is applied
            # here too, and an operator waiting for it must hear so
            self._tasks.append(asyncio.ensure_future(self._ack_relisted(state.revision)))
        self._first.set()

    async def _ack_relisted(self, revision: int) -> None:
        try:
            change = await self.member.entry(revision)
        except FleetError:
            return
        if change is not None:
            self._acknowledge(change)

    def _changed(self, change: LoggedChange) -> None:
        ref: SelectionRef = (change.domain, change.key, change.tenant)
        mine = self.member.instance in change.instances
        if change.kind == "canary":
            if not mine:
                return  # another instance's canary: nothing here, nothing to acknowledge
            if change.provider is None:
                self.canaries.pop(ref, None)
            elif self._installed(ref, change.provider):
                self.canaries[ref] = change.provider
            self.apply_selections()
        elif change.kind == "select":
            if mine:  # a promotion ends this instance's canary
                self.canaries.pop(ref, None)
            if change.provider is None:
                self.selections.pop(ref, None)
            elif self._installed(ref, change.provider):
                self.selections[ref] = change.provider
            self.apply_selections()
        else:
            records = dict(self._records)
            if change.state == "active":
                records.pop((change.domain, change.key), None)
            else:
                records[(change.domain, change.key)] = ActivityRecord(
                    change.domain, change.key, change.state,  # type: ignore[arg-type]
                    change.note, change.actor, change.at)
            self._set_activity(records)
        self._acknowledge(change)

    def _acknowledge(self, change: LoggedChange) -> None:
        """Acknowledge ``change`` once it took effect here (a task; see the module docstring)."""
        if change.kind == "canary" and self.member.instance not in change.instances:
            return
        if change.kind in ("select", "canary"):
            ref: SelectionRef = (change.domain, change.key, change.tenant)
            if change.provider is not None and not self._installed(ref, change.provider):
                self._ack(ref, change, self._send(change, "missing",
                          f"provider {change.provider!r} is not installed here"))
            else:
                self._ack(ref, change, self._await_swap(change))
        elif change.state == "draining":
            self._ack((change.domain, change.key), change, self._await_drain(change))
        else:
            outcome = "paused" if change.state == "paused" else "resumed"
            self._ack((change.domain, change.key), change, self._send(change, outcome))

    def _installed(self, ref: SelectionRef, provider: str) -> bool:
        candidates = self.host.resolver.candidates(ref[0], ref[1])
        return any(c.provider == provider for c in candidates)

    def apply_selections(self) -> None:
        """The settings files' selections with the fleet's on top, per scope."""
        resolver, settings = self.host.resolver, self.host.settings
        chosen = {**self.selections, **self.canaries}  # a canary wins on its instances
        scopes = {(d, t) for d, _k, t in chosen} | self._scopes
        for domain, tenant in sorted(scopes, key=lambda s: (s[0], s[1] or "")):
            merged = dict(settings.selections(domain, tenant=tenant)) if settings else {}
            merged.update({k: p for (d, k, t), p in chosen.items()
                           if d == domain and t == tenant})
            resolver.set_selections(domain, merged, tenant=tenant)
        self._scopes = scopes

    def _set_activity(self, records: dict[tuple[str, str], ActivityRecord]) -> None:
        self._records = records
        self.host.lifecycle.apply_activity(records.values())

    def _apply_activity(self, state: FleetState) -> None:
        self._set_activity({ref: ActivityRecord(ref[0], ref[1], v["state"], v.get("note", ""),
                                                v.get("actor", ""), v.get("at"))
                            for ref, v in state.activity.items()})

    # -------------------------------------------------------------- acks

    def _ack(self, ref: SelectionRef | tuple[str, str], change: LoggedChange,
             job: Any) -> None:
        """Run ``job`` (it acknowledges ``change``); a newer change of the key replaces it."""
        previous = self._acks.pop(ref, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.ensure_future(job)
        self._acks[ref] = task
        task.add_done_callback(lambda t: self._acks.pop(ref, None) if self._acks.get(ref) is t
                               else None)

    async def _send(self, change: LoggedChange, result: str, detail: str = "") -> None:
        try:
            await self._publish()  # status first: whoever reads the ack sees its effect
            await self.member.ack(change.revision, result, detail)
        except FleetError as exc:
            _log.warning("acknowledgement not written", revision=change.revision,
                         error=str(exc))

    def _key_status(self, change: LoggedChange) -> dict[str, Any] | None:
        for doc in self.host.lifecycle.status()["keys"]:
            if (doc["domain"], doc["key"], doc["tenant"]) == (change.domain, change.key,
                                                              change.tenant):
                return dict(doc)
        return None

    async def _await_swap(self, change: LoggedChange) -> None:
        before = self._key_status(change)
        if before is None or before["bound"] is None:
            await self._send(change, "swapped", "not active here: selected for its activation")
            return
        failures = before["failures"]
        while True:
            doc = self._key_status(change)
            if doc is None:
                return
            target = change.provider or doc["winner"]
            if doc["bound"] == target and not doc.get("deferred"):
                await self._send(change, "swapped", f"{before['bound']} -> {target}")
                return
            if doc["failures"] > failures:
                recent = doc.get("recent_failures") or [{}]
                await self._send(change, "health_failed", str(recent[-1].get("error", ""))
                                 or f"the swap to {target} failed; {doc['bound']} serves")
                return
            await asyncio.sleep(_POLL)

    async def _await_drain(self, change: LoggedChange) -> None:
        lifecycle = self.host.lifecycle
        while not lifecycle.drained(change.domain, change.key):
            if lifecycle.activity(change.domain, change.key) != "draining":
                return  # resumed or paused meanwhile: that change is acknowledged instead
            if not any(d["domain"] == change.domain and d["key"] == change.key
                       for d in lifecycle.status()["keys"]):
                break  # not active here: nothing to drain
            await asyncio.sleep(_POLL)
        await self._send(change, "drained")
