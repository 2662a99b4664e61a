"""``Follower``: an instance's view of its fleet as a stream of events it can apply.

One blocking reader per instance, from the revision it applied.  What it
yields, and why:

* ``Relisted(state)`` - at start, after a reconnect, after a gap in the log
  (trimmed below the applied revision) and after ``oneiric fleet adopt``: the
  whole desired state; apply all of it.
* ``Changed(change)`` - the next revision; apply it, then acknowledge.
* ``Condition(state, detail)`` - ``unreachable`` (Redis cannot be reached;
  retrying with jittered backoff), ``regressed`` (the fleet's epoch changed
  or its revision went backwards: wiped, restored from an old backup, a
  different Redis), ``ok`` again when that ends.

The follower never tells the instance to unbind anything: a regressed or
unreachable fleet yields no changes, so the instance keeps serving what it
has (§12).  A regressed instance accepts a new epoch only once an operator
adopted it (``meta.adopted == meta.epoch``); a fleet that comes back with the
epoch and at least the revision the instance knew is simply followed again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from oneiric.core import RetryPolicy, get_logger

from ._codec import FleetState, LoggedChange
from ._errors import FleetUnavailable
from ._member import FleetMember, Meta

__all__ = ["Changed", "Condition", "Follower", "Relisted"]

_log = get_logger("oneiric.fleet")

#: Reconnect waits: 0.1 s doubling to 5 s, each shortened by up to half at random.
RECONNECT = RetryPolicy(max_attempts=1_000_000, initial=0.1, multiplier=2.0,
                        max_interval=5.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class Relisted:
    state: FleetState


@dataclass(frozen=True, slots=True)
class Changed:
    change: LoggedChange


@dataclass(frozen=True, slots=True)
class Condition:
    state: Literal["ok", "unreachable", "regressed"]
    detail: str = ""


Event = Relisted | Changed | Condition


class Follower:
    """Yield what the instance must apply; track the applied revision, epoch and condition."""

    def __init__(
        self,
        member: FleetMember,
        *,
        block: float = 1.0,
        verify_every: float = 5.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self.block = block
        self.verify_every = verify_every
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self.applied = 0
        self.epoch: str | None = None
        self.condition: Literal["ok", "unreachable", "regressed"] = "ok"
        self.detail = ""

    def _regression(self, meta: Meta) -> str | None:
        """Why ``meta`` is not a continuation of what this instance applied (None: it is)."""
        if self.epoch is None:
            return None  # nothing applied from any epoch yet: whatever exists is the state
        if meta.epoch is None:
            return "the fleet's state is gone (Redis wiped or replaced)"
        if meta.epoch != self.epoch:
            if meta.adopted == meta.epoch:
                return None  # an operator adopted the new epoch: relist it
            return (f"the fleet's epoch changed ({self.epoch} -> {meta.epoch}); run "
                    "'oneiric fleet adopt' to accept it")
        if meta.revision < self.applied:
            return f"the fleet's revision went back ({self.applied} -> {meta.revision})"
        return None

    async def events(self) -> AsyncIterator[Event]:
        """Follow the fleet until cancelled."""
        delays = RECONNECT.delays(self._rng)
        need_relist = True
        next_verify = self._clock() + self.verify_every
        while True:
            try:
                if need_relist or self.condition == "regressed":
                    meta = await self.member.meta()
                    why = self._regression(meta)
                    if why is not None:
                        if self.condition != "regressed":
                            self.condition, self.detail = "regressed", why
                            _log.error("fleet regressed; keeping current bindings",
                                       fleet=self.member.fleet, reason=why)
                            yield Condition("regressed", why)
                        await self._sleep(self.verify_every)
                        continue
                    state = await self.member.relist()
                    self.applied, self.epoch = state.revision, state.epoch
                    need_relist = False
                    delays = RECONNECT.delays(self._rng)
                    yield Relisted(state)
                    if self.condition != "ok":
                        self.condition, self.detail = "ok", ""
                        yield Condition("ok")
                changes = await self.member.read(self.applied, block=self.block)
                for change in changes:
                    if self.epoch is not None and change.epoch != self.epoch:
                        need_relist = True  # checked against the meta (adopted?) first
                        break
                    if change.revision != self.applied + 1:
                        need_relist = True  # the log was trimmed below what we applied
                        break
                    self.applied, self.epoch = change.revision, change.epoch
                    yield Changed(change)
                if not changes and self._clock() >= next_verify:
                    next_verify = self._clock() + self.verify_every
                    why = self._regression(await self.member.meta())
                    if why is not None:
                        need_relist = True
            except FleetUnavailable as exc:
                if self.condition != "unreachable":
                    self.condition, self.detail = "unreachable", str(exc)
                    _log.warning("fleet unreachable; keeping current bindings",
                                 fleet=self.member.fleet, error=str(exc))
                    yield Condition("unreachable", str(exc))
                need_relist = True  # relist on reconnect: nothing missed is lost
                await self._sleep(next(delays))
