"""Event topics: the grammar of a topic and of a subscription pattern, and pattern matching.

One home because three packages read topics: oneiric-runtime emits and
routes on them, oneiric-remote checks topics named in delivered metadata
before anything is staged, and oneiric-fleet maps them to streams.  A topic is
dot-separated segments of ``[a-z0-9_-]``; a pattern may use ``*`` for exactly
one segment and a trailing ``#`` for zero or more further segments (a bare
``#`` matches every topic), as AMQP topic exchanges do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["MAX_TOPIC_LENGTH", "is_topic", "is_topic_pattern", "topic_matcher"]

#: Longest topic or pattern accepted (a topic is a name, not a payload).
MAX_TOPIC_LENGTH = 255

_SEGMENT = r"[a-z0-9_-]+"
_TOPIC = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*", re.ASCII)
_PATTERN = re.compile(rf"(?:(?:{_SEGMENT}|\*)(?:\.(?:{_SEGMENT}|\*))*(?:\.#)?|#)", re.ASCII)


def is_topic(text: object) -> bool:
    """True for a concrete topic (what is emitted): no wildcards."""
    return isinstance(text, str) and len(text) <= MAX_TOPIC_LENGTH and bool(_TOPIC.fullmatch(text))


def is_topic_pattern(text: object) -> bool:
    """True for a subscription pattern: a topic, or one with ``*`` segments / a trailing ``#``."""
    return (
        isinstance(text, str) and len(text) <= MAX_TOPIC_LENGTH and bool(_PATTERN.fullmatch(text))
    )


@lru_cache(maxsize=4096)
def topic_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate ``matches(topic)`` for a valid ``pattern`` (``ValueError`` otherwise)."""
    if not is_topic_pattern(pattern):
        raise ValueError(f"{pattern!r} is not a topic pattern")
    if pattern == "#":
        return is_topic
    if "*" not in pattern and not pattern.endswith(".#"):
        return pattern.__eq__  # the common case: an exact topic, one comparison
    parts = pattern.split(".")
    rest = parts[-1] == "#"
    if rest:
        parts = parts[:-1]
    regex = r"\.".join(_SEGMENT if p == "*" else re.escape(p) for p in parts)
    if rest:
        regex += rf"(?:\.{_SEGMENT})*"
    compiled = re.compile(regex, re.ASCII)
    return lambda topic: compiled.fullmatch(topic) is not None
