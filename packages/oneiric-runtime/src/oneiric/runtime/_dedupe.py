"""Which (event id, group) pairs a non-idempotent handler already handled: bounded, in memory.

Recorded only when a call succeeds, so a failed (or dead-lettered, then
redriven) event runs again.  Bounded two ways (ARCHITECTURE §11): at most
``size`` pairs and ``ttl`` seconds each, the oldest evicted first; a process
restart forgets them (the Redis transport keeps them in Redis).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Dedupe"]


class Dedupe:
    __slots__ = ("_clock", "_seen", "size", "ttl")

    def __init__(
        self,
        size: int = 100_000,
        ttl: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen(self, event_id: str, group: str) -> bool:
        at = self._seen.get((event_id, group))
        if at is None:
            return False
        if self._clock() - at > self.ttl:
            del self._seen[(event_id, group)]
            return False
        return True

    def record(self, event_id: str, group: str) -> None:
        now = self._clock()
        seen = self._seen
        seen[(event_id, group)] = now
        seen.move_to_end((event_id, group))
        while len(seen) > self.size:
            seen.popitem(last=False)
        while seen:  # expire from the old end
            key, at = next(iter(seen.items()))
            if now - at <= self.ttl:
                break
            del seen[key]

    def __len__(self) -> int:
        return len(self._seen)
