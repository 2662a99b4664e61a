"""The small types of a handler call: its context, its timeout, a function as a component."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._subscription import Subscription

__all__ = ["NULL_LIMIT", "Entry", "FunctionHandler", "HandlerContext", "HandlerTimeout"]


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler's ``handle(event, context)`` gets besides the event.

    ``lifecycle`` is the ``LifecycleManager`` the dispatcher runs on, for a
    handler that reaches other components of the same application (an
    automation invokes its target action through it).
    """

    handler: str
    provider: str | None
    group: str
    attempt: int
    deadline: float  # time.monotonic(); math.inf without a timeout
    lifecycle: Any = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class FunctionHandler:
    """A plain function subscribed in code, as a component with ``handle``."""

    __slots__ = ("handle",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.handle = function


@dataclass(frozen=True, slots=True)
class Entry:
    subscription: Subscription
    matches: Callable[[str], bool]
    provider: str


class HandlerTimeout(TimeoutError):
    """An attempt passed the handler's timeout (its task was cancelled)."""


class _NullLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


NULL_LIMIT = _NullLimit()
