"""Values the SQLite checkpoint store accepts, checked before anything is written.

Each check raises ``CheckpointStoreError`` (category ``invalid``) in one line
naming the value and what to pass instead: a bad value never reaches SQLite,
so a write is never half-applied and never fails with a raw ``sqlite3`` error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from oneiric.core.helpers import one_line

from ._errors import CheckpointStoreError

__all__ = ["_count", "_invalid", "_json", "_prose", "_stamp", "_text"]


def _invalid(message: str) -> CheckpointStoreError:
    return CheckpointStoreError(message, category="invalid")


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise _invalid(f"{what} is not JSON ({one_line(exc)}); return JSON values only "
                       "(objects, arrays, strings, finite numbers, booleans, null)") from None


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{what} must be a non-empty string, got {value!r}")
    return value


def _count(value: object, what: str = "attempt", least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _invalid(f"{what} must be an integer >= {least}, got {value!r}")
    return value


def _prose(value: object, what: str, *, optional: bool = True) -> str | None:
    """Free text (an error, a reason): a string, lone surrogates escaped so SQLite takes it."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a string{' or None' if optional else ''}, "
                       f"got {type(value).__name__}")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _stamp(value: object, what: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{what} must be POSIX seconds or None, got {value!r}")
    return float(value)
