"""Polling, live-server policy and ports."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

#: Generous ceiling for eventual states: tests assert outcomes, never latency.
DEFAULT_TIMEOUT = 30.0


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where a skipped live test is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_live(available: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when a live dependency is missing."""
    if available:
        return
    message = f"live test needs {what}; .ci/run starts it"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a skipped live test is a failure)", pytrace=False)
    pytest.skip(message)


def poll_until(
    predicate: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{message} not reached within {timeout} s", pytrace=False)
        time.sleep(interval)


async def apoll_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Async ``poll_until``; ``predicate`` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        value: T = await outcome if isinstance(outcome, Awaitable) else outcome
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{message} not reached within {timeout} s", pytrace=False)
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
