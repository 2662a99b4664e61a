"""The fleet's Redis errors: core's one mechanism, with the fleet's error types."""

from __future__ import annotations

from contextlib import AbstractContextManager

from oneiric.core.helpers import redis_errors as _core_errors

from ._errors import FleetError, FleetUnavailable

__all__ = ["INSTALL", "redis_errors"]

#: What to install when redis-py is missing (it is a dependency: a broken install).
INSTALL = "oneiric-fleet"


def redis_errors(where: str, action: str) -> AbstractContextManager[None]:
    """``FleetUnavailable`` (exit 5) / ``FleetError`` (exit 4), the URL without credentials."""
    return _core_errors("fleet Redis", where, action, unavailable=FleetUnavailable,
                        failed=FleetError)
