"""UTC timestamps: one format in every JSON output, one strict parser.

(``datetime`` is imported on first use: packages import this home at start-up.)

Status snapshots, the activity store, the CLI and remote state each formatted
time their own way (``+00:00`` with microseconds, with seconds, ``Z``), so a
script comparing ``status --json`` with ``activity --json`` had to parse three
shapes.  The one format is RFC 3339 UTC with milliseconds and ``Z``
(``2026-11-30T06:00:55.123Z``): sortable as text, exact enough to order the
events of one second, and a subset of what the manifest format (REMOTE.md)
accepts.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["format_timestamp", "parse_duration", "parse_timestamp", "utc_now"]

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    from datetime import UTC, datetime

    return datetime.now(UTC)


def format_timestamp(moment: datetime | float | None = None, *, seconds: bool = False) -> str:
    """``moment`` (an aware ``datetime`` or POSIX seconds; default now) as ``...T..:..:..mmmZ``.

    ``seconds=True`` drops the fraction (``...T..:..:..Z``): the form manifest
    payloads are signed in (REMOTE.md), so publishers and tools write one shape.
    A naive ``datetime`` is refused: guessing its zone is how off-by-hours bugs
    enter a control plane.
    """
    from datetime import UTC, datetime

    if moment is None:
        moment = utc_now()
    elif isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}; pass an aware datetime (UTC)")
    moment = moment.astimezone(UTC)
    if seconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """An aware UTC ``datetime`` from an RFC 3339 UTC string ending in ``Z``; strict.

    Accepts what :func:`format_timestamp` writes and what manifests carry
    (seconds, optionally 1-6 fraction digits).  Anything else - an offset, a
    naive time, a trailing newline - is a ``ValueError`` naming the text.
    """
    from datetime import UTC, datetime

    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise ValueError(
            f"timestamp {text!r} is not RFC 3339 UTC like 2026-01-31T12:00:00Z"
        )
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not a valid date and time") from None


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+", re.ASCII)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object, *, what: str = "duration") -> float:
    """Seconds from a number or a string like ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``.

    Settings files, manifests and CLI options all give timeouts, grace periods
    and retention this way; one parser keeps ``"1m"`` meaning one minute
    everywhere.  Negative, infinite, NaN and unit-less strings are refused
    (``ConfigError`` naming ``what``): a bare ``"30"`` could mean seconds or
    minutes, and guessing is how a 30-minute timeout becomes 30 seconds.
    """
    import math

    from ._errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(
            f"{what} must be seconds or a string like '30s', '5m', '1h30m'; got {value!r}"
        )
    if isinstance(value, str):
        text = value.strip()
        if not _DURATION.fullmatch(text):
            raise ConfigError(
                f"{what} {value!r} is not a duration; write seconds or e.g. '250ms', '30s', "
                "'5m', '1h30m'"
            )
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return seconds
