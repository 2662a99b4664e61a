"""The dead-letter record and its errors: what one failed event looks like, scrubbed.

Split from the store (``_deadletters``) so the dispatcher can describe a
failure the way a dead letter does without loading the SQLite code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from oneiric.core.helpers import format_timestamp, one_line, scrub_credentials, scrub_text

from ._errors import EventError
from ._event import Event

__all__ = [
    "MAX_ERROR_LENGTH",
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterStoreError",
    "error_type_name",
    "id_list",
    "record_number",
    "scrub_error",
]

#: The longest stored error message (characters, after scrubbing).
MAX_ERROR_LENGTH = 1000
# Messages are cut to this before scrubbing (bounds the regex work); far above
# MAX_ERROR_LENGTH, so a secret cut at this boundary is never in what is kept.
_MAX_SCRUB_INPUT = 65536


class DeadLetterStoreError(EventError):
    """The dead-letter file cannot be opened, read or written, or an argument is invalid.

    ``category`` is ``unavailable`` (locked, unwritable, closed) or ``invalid``
    (not SQLite, written by a newer version, a bad argument).
    """

    category = "unavailable"


class DeadLetterNotFound(EventError, LookupError):
    """``redrive`` was given an id that is not (or no longer) in the store."""

    category = "not_found"


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One event that ``handler`` (of ``group``) failed ``attempts`` times.

    ``id`` is ``dl-<n>`` (what ``oneiric event dead-letters`` lists and
    ``--redrive`` takes); ``error`` is one scrubbed line, ``error_type`` the
    exception's class; ``time`` (POSIX seconds) is the latest failure.
    """

    id: str
    event: Event
    handler: str
    group: str
    attempts: int
    error_type: str
    error: str
    time: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the event as ``Event.as_dict()``, ``time`` as an RFC 3339 UTC string."""
        return {
            "id": self.id,
            "event": self.event.as_dict(),
            "handler": self.handler,
            "group": self.group,
            "attempts": self.attempts,
            "error_type": self.error_type,
            "error": self.error,
            "time": format_timestamp(self.time),
        }


# ----------------------------------------------------------- error text

def scrub_error(error: BaseException) -> str:
    """``error``'s message on one line, secrets replaced by ``**********``, capped.

    Registered settings secrets go first (``scrub_text``), then credentials
    that were never registered (``scrub_credentials``: ``Bearer`` values,
    ``password=...``, the password of a URL).
    """
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not lose the dead letter
        text = ""
    text = one_line(text[:_MAX_SCRUB_INPUT]) or type(error).__name__
    text = scrub_credentials(scrub_text(text))
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 3] + "..."
    return text


def error_type_name(error: BaseException) -> str:
    """``ConnectionError`` for builtins, ``package.module.Class`` otherwise."""
    cls = type(error)
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module == "builtins" else f"{module}.{name}"


def id_list(ids: Iterable[str]) -> list[str]:
    """``ids`` as a list; one string is one id (not its characters)."""
    if isinstance(ids, str):
        return [ids]
    try:
        items = list(ids)
    except TypeError:
        raise DeadLetterStoreError(
            f"ids must be dead-letter ids like 'dl-12', got {ids!r}", category="invalid"
        ) from None
    for item in items:
        if not isinstance(item, str):
            raise DeadLetterStoreError(
                f"dead-letter ids are strings like 'dl-12', got {item!r}", category="invalid"
            )
    return items


_ID = re.compile(r"dl-([1-9][0-9]{0,17})", re.ASCII)


def record_number(id: object) -> int | None:
    """The ``n`` of a ``dl-<n>`` record id, or ``None`` for anything else."""
    match = _ID.fullmatch(id) if isinstance(id, str) else None
    return int(match.group(1)) if match else None
