"""The fleet's errors, each in one of core's exit categories.

``FleetUnavailable`` (5): Redis cannot be reached - the message names the URL
without its credentials.  ``StaleRevision`` (6): a compare-and-set write whose
expected revision is no longer the fleet's.  ``FleetError`` (4) for the rest
(a server that refuses a command, an ACL, a Redis older than 6.2).
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = ["FleetError", "FleetUnavailable", "StaleRevision"]


class FleetError(OneiricError):
    """A fleet operation failed (see the subclasses)."""

    category = "invalid"


class FleetUnavailable(FleetError):
    """Redis is unreachable: nothing was written."""

    category = "unavailable"


class StaleRevision(FleetError):
    """``--expect-revision`` was not the fleet's revision: nothing was written."""

    category = "refused"

    def __init__(self, message: str, *, expected: int, current: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current
