"""Calling duck-typed component methods, sync or async, under a deadline.

Components do not inherit from anything: ``init``, ``health``, ``cleanup``,
``pause`` and ``resume`` are optional, and each may be a plain function or a
coroutine function.  A sync method runs on the event loop's thread (so it
should be quick); an awaitable result is awaited under the step's timeout.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["HealthReport", "call_optional", "maybe_await", "to_health"]


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


async def maybe_await(value: Any, timeout: float) -> Any:
    """Await ``value`` under ``timeout`` if it is awaitable, else return it."""
    if inspect.isawaitable(value):
        async with asyncio.timeout(timeout):
            return await value
    return value


async def call_optional(obj: Any, name: str, timeout: float) -> tuple[bool, Any]:
    """Call ``obj.<name>()`` if present; return ``(present, result)``.

    Raises what the method raises, and ``TimeoutError`` when an async method
    exceeds ``timeout``.
    """
    method: Callable[[], Any] | None = getattr(obj, name, None)
    if method is None or not callable(method):
        return False, None
    return True, await maybe_await(method(), timeout)


def to_health(value: Any) -> HealthReport:
    """Normalize what ``health()`` returned into a ``HealthReport``."""
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
