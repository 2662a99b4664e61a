"""Run a coroutine eagerly, up to its first suspension, without a task or a timer.

Actions, event handlers and workflow nodes are often done without ever
suspending (a hash, a transform, a cache hit).  Arming a deadline
(``asyncio.timeout``) costs more than such a call, so callers run the
coroutine here first and arm the deadline only for the rest of one that
suspended - the deadline still counts from the start.  Semantics are those of
``await``: exceptions raised before the first suspension propagate; the rest
receives what the task sends and throws (cancellation included), and closing
it closes the coroutine.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["Suspended", "run_eagerly"]


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
