"""``Bound``: a FIFO concurrency bound for one event loop, cheap when there is room.

``asyncio.Semaphore`` walks its waiters in Python on every acquire; the
dispatcher takes two bounds per handler call (its own and the global one), so
on the hot path that was a measurable share of ``emit``.  Here a free slot is
one integer compare, and a release hands the slot straight to the oldest
waiter (no thundering herd, no overtaking).
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Bound"]


class Bound:
    """``async with bound:`` admits at most ``limit`` holders at once, first come first served."""

    __slots__ = ("free", "limit", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()  # handed a slot just as we were cancelled: pass it on
            else:
                try:
                    self.waiters.remove(future)
                except ValueError:
                    pass
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot goes to the oldest waiter as it is
                return
        self.free += 1

    @property
    def held(self) -> int:
        return self.limit - self.free
