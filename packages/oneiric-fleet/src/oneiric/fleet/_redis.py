"""The fleet's Redis connections and errors: core's one mechanism, with the fleet's error types."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from oneiric.core.helpers import redis_client
from oneiric.core.helpers import redis_errors as _core_errors

from ._errors import FleetError, FleetUnavailable

__all__ = ["connect", "redis_errors"]


def connect(url: str, *, asyncio: bool = False) -> Any:
    """A client for ``url``.  Reads time out after 5 s (a blocking ``XREAD`` waits 1 s at
    most): a frozen Redis is noticed, and reported ``unreachable``, within that."""
    return redis_client(url, asyncio=asyncio, socket_timeout=5.0)


def redis_errors(where: str, action: str) -> AbstractContextManager[None]:
    """``FleetUnavailable`` (exit 5) / ``FleetError`` (exit 4), the URL without credentials."""
    return _core_errors("fleet Redis", where, action, unavailable=FleetUnavailable,
                        failed=FleetError)
