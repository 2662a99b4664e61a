"""Run a coroutine eagerly, up to its first suspension, without a task or a timer.

Actions, event handlers and workflow nodes are often done without ever
suspending (a hash, a transform, a cache hit).  Arming a deadline
(``asyncio.timeout``) costs more than such a call, so callers run the
coroutine here first and arm the deadline only for the rest of one that
suspended - the deadline still counts from the start.  Semantics are those of
``await``: exceptions raised before the first suspension propagate; the rest
receives what the task sends and throws (cancellation included), and closing
it closes the coroutine.

**The rest must be awaited by the same task, in the same context.**  The eager
step runs as the current task: code in it that binds to
``asyncio.current_task()`` - ``asyncio.timeout``, ``TaskGroup``, anyio cancel
scopes (httpx) - binds to that task.  Moving the rest into another task would
leave a timeout cancelling the wrong task.  To start work that must run
concurrently, use ``start_task``: an eager task on Python 3.12+ (the step
runs as the new task), a plain task before.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # asyncio is imported by start_task only: helpers load at CLI start-up
    import asyncio
    import contextvars

_T = TypeVar("_T")

__all__ = ["Suspended", "run_eagerly", "start_task"]


class Suspended:
    """The rest of a coroutine that suspended: ``await suspended.rest``."""

    __slots__ = ("rest",)

    def __init__(self, rest: Any) -> None:
        self.rest = rest


@types.coroutine
def _rest(coro: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """What ``yield from`` does for a coroutine not yet started, for one that has."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and friends go to the coroutine
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            pending = coro.send(sent)
        except StopIteration as stop:
            return stop.value


def run_eagerly(value: Any) -> Any:
    """``value`` itself, the result of a coroutine that finished at once, or a ``Suspended``.

    Anything that is not a native coroutine is returned unchanged (a caller
    awaits other awaitables itself).
    """
    if type(value) is not types.CoroutineType:
        return value
    try:
        first = value.send(None)
    except StopIteration as stop:
        return stop.value
    return Suspended(_rest(value, first))


def start_task(
    coro: Coroutine[Any, Any, _T], *, context: contextvars.Context | None = None
) -> asyncio.Task[_T]:
    """A task for ``coro``, started eagerly where Python can do it safely (3.12+).

    On 3.12+ the first step runs now, *as the new task* (``eager_start``): a
    call that never suspends returns a task that is already done, with no
    trip through the event loop.  On 3.11 it is an ordinary task.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)
    return loop.create_task(coro, context=context)

