"""The local transport: a bounded inbox that ``publish`` feeds and consumers drain.

Bounded because an unbounded queue turns a slow handler into an out-of-memory
crash; what happens when it is full is the caller's choice (``overflow``):
``block`` waits for room, ``reject`` raises ``InboxFullError`` at once,
``drop_oldest`` makes room by dropping the oldest waiting event (counted in
``stats()["dropped"]``).  Events live in this process only: at most once,
unless a handler dead-letters them (docs/events.md says so plainly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from oneiric.core import ConfigError, get_logger

from ._errors import InboxFullError
from ._event import Event

__all__ = ["Inbox", "Overflow"]

_log = get_logger("oneiric.runtime.inbox")

Overflow = Literal["block", "reject", "drop_oldest"]
_POLICIES = ("block", "reject", "drop_oldest")


class Inbox:
    """``put(event)`` per the overflow policy; ``serve(dispatch, workers)`` until cancelled."""

    def __init__(self, size: int = 1000, overflow: Overflow = "block") -> None:
        if overflow not in _POLICIES:
            raise ConfigError(
                f"overflow must be one of {', '.join(_POLICIES)}, got {overflow!r}"
            )
        self.size = size
        self.overflow = overflow
        self._queue: asyncio.Queue[Event] | None = None
        self.dropped = 0
        self.delivered = 0

    @property
    def queue(self) -> asyncio.Queue[Event]:
        if self._queue is None:  # created on the loop that uses it
            self._queue = asyncio.Queue(self.size)
        return self._queue

    async def put(self, event: Event) -> None:
        queue = self.queue
        if self.overflow == "block":
            await queue.put(event)
        elif self.overflow == "reject":
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                raise InboxFullError(
                    f"event inbox is full ({self.size} waiting); retry later, raise inbox= "
                    "or choose overflow='block'"
                ) from None
        else:
            while True:
                try:
                    queue.put_nowait(event)
                    return
                except asyncio.QueueFull:
                    queue.get_nowait()
                    queue.task_done()
                    self.dropped += 1

    def stats(self) -> dict[str, Any]:
        return {"inbox": self._queue.qsize() if self._queue is not None else 0,
                "inbox_size": self.size, "dropped": self.dropped, "delivered": self.delivered}

    async def serve(self, dispatch: Callable[[Event], Awaitable[Any]], workers: int) -> None:
        """Run ``workers`` consumers until cancelled (then they are cancelled and awaited)."""

        async def worker() -> None:
            queue = self.queue
            while True:
                event = await queue.get()
                try:
                    await dispatch(event)  # handler failures are outcomes, never raised
                    self.delivered += 1
                except Exception as exc:  # a routing bug must not stop the consumer
                    _log.error("event not dispatched", event_id=event.id, topic=event.topic,
                               error=f"{type(exc).__name__}: {exc}")
                finally:
                    queue.task_done()

        tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, workers))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def join(self) -> None:
        """Wait until every published event was dispatched (tests, graceful shutdown)."""
        await self.queue.join()
