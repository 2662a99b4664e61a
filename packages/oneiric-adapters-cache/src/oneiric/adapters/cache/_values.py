"""Argument checks shared by every provider: values are bytes, TTLs are seconds, ints are ints.

One place so that every provider rejects the same mistakes with the same one-line
message, and the conformance suite can hold third-party providers to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ._errors import CacheValueError

__all__ = ["as_bytes", "check_delta", "check_key", "parse_int", "unique_keys", "ttl_state"]


def check_key(key: object) -> str:
    """Return ``key`` if it is a ``str``; any string is valid (providers encode it)."""
    if not isinstance(key, str):
        raise TypeError(f"cache keys are str, got {type(key).__name__}")
    return key


def as_bytes(value: object) -> bytes:
    """``value`` as ``bytes``; ``bytearray``/``memoryview`` are copied, anything else refused."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise CacheValueError(
        f"cache values are bytes, got {type(value).__name__}; encode it first or wrap the "
        "cache in SerializingCache"
    )


def ttl_state(ttl: float | None) -> float | None:
    """Validate ``ttl``: ``None`` (no expiry), a positive number, or ``<= 0`` (already expired).

    Returns ``None`` or the ttl as a float; ``0.0`` means "expired now".
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or math.isnan(ttl):
        raise TypeError(f"ttl is seconds as a number or None, got {ttl!r}")
    if math.isinf(ttl):
        return None if ttl > 0 else 0.0
    return float(ttl) if ttl > 0 else 0.0


def check_delta(delta: object) -> int:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"incr delta is an int, got {type(delta).__name__}")
    return delta


def parse_int(value: bytes, key: str) -> int:
    """The integer a stored value spells in ASCII decimal, or ``CacheValueError``."""
    digits = value[1:] if value[:1] == b"-" else value
    if not digits or not digits.isdigit() or len(digits) > 19:
        raise CacheValueError(
            f"cannot incr cache key {key!r}: its value is not a decimal integer "
            f"({len(value)} bytes); set it to ASCII digits or delete it first"
        )
    return int(value)


def unique_keys(keys: Iterable[str]) -> list[str]:
    """``keys`` without duplicates, in first-seen order, each checked to be a str."""
    if isinstance(keys, str):
        raise TypeError("get_many takes an iterable of keys, not one str")
    return list(dict.fromkeys(check_key(k) for k in keys))
