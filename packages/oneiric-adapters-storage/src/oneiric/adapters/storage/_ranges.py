"""Range arguments, checked once for every provider (``end`` exclusive, clamped)."""

from __future__ import annotations

from ._errors import InvalidRangeError

__all__ = ["check_range"]


def check_range(start: int, end: int) -> None:
    """Refuse ranges no provider can serve the same way: negative or reversed."""
    if start < 0 or end < start:
        raise InvalidRangeError(
            f"invalid range [{start}, {end}): need 0 <= start <= end (end is exclusive)"
        )
