"""Calling duck-typed component methods, sync or async, under a deadline.

Components do not inherit from anything: ``init``, ``health``, ``cleanup``,
``pause`` and ``resume`` are optional, and each may be a plain function or a
coroutine function.  A sync method runs on the event loop's thread (so it
should be quick); an awaitable result is awaited under the step's timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from inspect import CO_ITERABLE_COROUTINE
from types import CoroutineType, GeneratorType
from typing import Any, cast

from oneiric.core.helpers import Suspended, run_eagerly

__all__ = [
    "HealthReport",
    "Unfinished",
    "call_optional",
    "maybe_await",
    "start",
    "start_optional",
    "to_health",
]

_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The outcome of a health check: ``ok`` and a human ``detail``.

    A component's ``health()`` may return this, a bool, or any object with an
    ``ok`` attribute (and optionally ``detail``), so components need not import
    oneiric-lifecycle.
    """

    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


class Unfinished:
    """What :func:`start` returns for work still pending: await it (once) to finish it."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._coro.__await__()


def start(value: Any, timeout: float) -> Any:
    """Begin awaiting ``value`` under ``timeout``; the result, or an ``Unfinished`` to await.

    A coroutine is started here, and the deadline's timer is armed only if it
    suspends: most ``init()``/``health()``/``cleanup()`` coroutines of a
    healthy component finish without suspending, and a timer per step (a
    ``TimerHandle`` pushed on the loop's heap, then cancelled) plus a
    coroutine frame per layer were most of a memory provider's swap (issue
    16).  The deadline counts from before the coroutine starts, as
    ``asyncio.timeout``'s would (the loop's clock is read only if it
    suspends, less the time the first step took); a timeout can only fire at
    a suspension anyway, so the outcome is the same.  Other awaitables are awaited under
    ``asyncio.timeout``; anything else is returned as it is.  What the
    coroutine raises before suspending is raised here.
    """
    if type(value) is CoroutineType:
        began = _monotonic()
        result = run_eagerly(value)
        if type(result) is not Suspended:  # finished without suspending: no timer needed
            return result
        # the loop's clock, less what the first step took: the deadline it had at the start
        deadline = asyncio.get_running_loop().time() + timeout - (_monotonic() - began)
        return Unfinished(_finish(result.rest, deadline))
    if isinstance(value, Awaitable) or (
        type(value) is GeneratorType and value.gi_code.co_flags & CO_ITERABLE_COROUTINE
    ):  # inspect.isawaitable, without its call
        return Unfinished(_within(cast("Awaitable[Any]", value), timeout))
    return value


async def maybe_await(value: Any, timeout: float) -> Any:
    """Await ``value`` under ``timeout`` if it is awaitable, else return it (see :func:`start`)."""
    result = start(value, timeout)
    if type(result) is Unfinished:
        return await result
    return result


async def _within(value: Awaitable[Any], timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        return await value


async def _finish(rest: Awaitable[Any], deadline: float) -> Any:
    async with asyncio.timeout_at(deadline):
        return await rest


def start_optional(obj: Any, name: str, timeout: float) -> tuple[bool, Any]:
    """Call ``obj.<name>()`` if present: ``(present, result or Unfinished)`` (see :func:`start`).

    The synchronous half of :func:`call_optional`, for the swap's steps: await
    the second item when it is an ``Unfinished``.
    """
    method: Callable[[], Any] | None = getattr(obj, name, None)
    if method is None or not callable(method):
        return False, None
    return True, start(method(), timeout)


async def call_optional(obj: Any, name: str, timeout: float) -> tuple[bool, Any]:
    """Call ``obj.<name>()`` if present; return ``(present, result)``.

    Raises what the method raises, and ``TimeoutError`` when an async method
    exceeds ``timeout``.
    """
    present, value = start_optional(obj, name, timeout)
    if type(value) is Unfinished:
        value = await value
    return present, value


#: What ``health()`` returning True/False becomes (reports are immutable: shared).
_FROM_BOOL = {True: HealthReport(True, ""), False: HealthReport(False, "health() returned False")}


def to_health(value: Any) -> HealthReport:
    """Normalize what ``health()`` returned into a ``HealthReport``."""
    if value is True or value is False:
        return _FROM_BOOL[value]
    if isinstance(value, HealthReport):
        return value
    if isinstance(value, bool):
        return HealthReport(value, "" if value else "health() returned False")
    ok = getattr(value, "ok", None)
    if isinstance(ok, bool):
        return HealthReport(ok, str(getattr(value, "detail", "") or ""))
    return HealthReport(
        False, f"health() returned {type(value).__name__}; expected a bool or HealthReport"
    )
