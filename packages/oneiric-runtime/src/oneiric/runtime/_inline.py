"""Await a coroutine in the current task, in a context of its own, cancellable on its own.

A workflow whose next step is the only thing that can run (a chain: nothing in
flight, one node ready) gains nothing from a task per node and pays three trips
through the event loop for it (start, done callback, the engine's wake-up) -
the largest cost of a no-op node on Python 3.11, which has no eager tasks.
Awaiting the node in the engine's own task is safe where moving a started
coroutine to another task is not (``oneiric.core.helpers.run_eagerly``): the
engine awaits nothing else meanwhile, so a timeout or cancel scope the node
binds to the current task binds to the task that runs all of it.

Two things a task gave the node are kept:

* **its own context** - each step runs in a copy of the caller's context, so a
  context variable the node sets never leaks into the engine or the next node;
* **cancellation of the node alone** - ``cancel()`` (a run cancelled by a user)
  throws ``CancelledError`` into the node, never cancelling the engine's task;
  ``cancelled`` tells the caller the exception was this one.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["InlineRun"]

_T = TypeVar("_T")


class InlineRun(Generic[_T]):
    """``await InlineRun(coro).run()`` - like awaiting ``coro``, with the two differences above."""

    __slots__ = ("_context", "_coro", "_waiter", "cancelled", "requested")

    def __init__(self, coro: Coroutine[Any, Any, _T]) -> None:
        self._coro = coro
        self._context = contextvars.copy_context()
        self._waiter: Any = None
        self.requested = False  # cancel() was called
        self.cancelled = False  # ... and the CancelledError was delivered into the coroutine

    def cancel(self) -> None:
        """Cancel the node at its current suspension point (not the task running it)."""
        if self.requested:
            return
        self.requested = True
        waiter = self._waiter
        if isinstance(waiter, asyncio.Future):
            waiter.cancel()  # wakes the task; the CancelledError it throws is replaced below

    @types.coroutine
    def run(self) -> Generator[Any, Any, _T]:
        coro, step = self._coro, self._context.run
        sent: Any = None
        error: BaseException | None = None
        while True:
            try:
                if self.requested and not self.cancelled:
                    self.cancelled = True
                    pending = step(coro.throw, asyncio.CancelledError())
                elif error is not None:
                    pending = step(coro.throw, error)
                else:
                    pending = step(coro.send, sent)
            except StopIteration as stop:
                result: _T = stop.value
                return result
            finally:
                error = sent = None
            self._waiter = pending
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and friends go to the coroutine
                error = exc
            finally:
                self._waiter = None
