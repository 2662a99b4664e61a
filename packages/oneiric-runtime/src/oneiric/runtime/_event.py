"""``Event``: a topic, a JSON object payload and the ids that tie events together.

Validated when built, so a bad topic or payload fails at the caller in one
line and never reaches a handler, a transport or the dead-letter store.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oneiric.actions import find_non_json
from oneiric.core.helpers import format_timestamp, is_topic, parse_timestamp, uuid4_text

from ._errors import InvalidEventError

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Event", "new_id", "payload_size"]

#: Default cap on an event payload's compact JSON encoding.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20


def new_id() -> str:
    """A random (version 4) UUID string, the default event id and dedupe key."""
    return uuid4_text()


def check_topic(topic: object) -> str:
    """``topic`` if it is a concrete topic, else ``InvalidEventError`` saying why."""
    if is_topic(topic):
        assert isinstance(topic, str)
        return topic
    if isinstance(topic, str) and ("*" in topic or "#" in topic):
        raise InvalidEventError(
            f"event topic {topic!r} has a wildcard; wildcards ('*', '#') belong in "
            "subscriptions, an event names one topic like 'orders.created'"
        )
    raise InvalidEventError(
        f"event topic {topic!r} is not a topic; use dot-separated segments of a-z, 0-9, "
        "'_' and '-' like 'orders.created'"
    )


def payload_size(payload: Mapping[str, Any]) -> int:
    """Bytes of the payload's compact JSON encoding (what a transport carries)."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One event.  ``id`` defaults to a new UUID and is the dedupe key; ``time`` is POSIX seconds.

    The payload must be a JSON object (string keys; strings, finite numbers,
    booleans, null, lists, objects) because events cross transports and are
    stored as dead letters; handlers must treat it as read-only.
    """

    topic: str
    payload: Mapping[str, Any]
    id: str
    correlation_id: str | None
    causation_id: str | None
    time: float
    headers: Mapping[str, str]

    def __init__(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        check_topic(topic)
        if not isinstance(payload, Mapping):
            raise InvalidEventError(
                f"event payload must be a JSON object, got {type(payload).__name__}; "
                "wrap the value, e.g. {\"value\": ...}"
            )
        bad = find_non_json(payload, allow_bytes=False)
        if bad is not None:
            raise InvalidEventError(
                f"event payload field {bad} is not JSON (strings, finite numbers, booleans, "
                "null, lists and objects with string keys); bytes go as {\"base64\": ...}"
            )
        if id is None:
            id = new_id()
        elif not isinstance(id, str) or not id or len(id) > 200:
            raise InvalidEventError(f"event id must be a non-empty string, got {id!r}")
        for name, value in (("correlation_id", correlation_id), ("causation_id", causation_id)):
            if value is not None and not isinstance(value, str):
                raise InvalidEventError(f"event {name} must be a string, got {value!r}")
        if time is None:
            time = _time.time()
        elif isinstance(time, bool) or not isinstance(time, int | float):
            raise InvalidEventError(f"event time must be POSIX seconds, got {time!r}")
        headers = {} if headers is None else headers
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidEventError("event headers must map strings to strings")
        set_ = object.__setattr__
        set_(self, "topic", topic)
        set_(self, "payload", payload)
        set_(self, "id", id)
        set_(self, "correlation_id", correlation_id)
        set_(self, "causation_id", causation_id)
        set_(self, "time", float(time))
        set_(self, "headers", dict(headers))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``time`` as an RFC 3339 UTC string); ``from_dict`` reads it back."""
        return {
            "id": self.id,
            "topic": self.topic,
            "payload": dict(self.payload),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "time": format_timestamp(self.time),
            "headers": dict(self.headers),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The inverse of ``as_dict`` (dead letters, transports); ``InvalidEventError`` if bad."""
        try:
            moment = parse_timestamp(data["time"]).timestamp() if data.get("time") else None
            return cls(
                data["topic"], data["payload"], id=data.get("id"),
                correlation_id=data.get("correlation_id"),
                causation_id=data.get("causation_id"), time=moment,
                headers=data.get("headers"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidEventError):
                raise
            raise InvalidEventError(f"not a stored event: {exc}") from None
