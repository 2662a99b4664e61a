"""What the event dispatcher raises, each with the category that picks the CLI's exit code.

::

    OneiricError
    └── EventError
        ├── InvalidEventError    a bad topic or payload (4); nothing was dispatched
        └── InboxFullError       ``overflow="reject"`` and the inbox is full (5)
    ConfigError
    └── SubscriptionError        a subscription's fields are invalid (4)

A handler's own failure is never raised by ``emit``: it is a ``HandlerOutcome``.
"""

from __future__ import annotations

from oneiric.core import ConfigError, OneiricError

__all__ = ["EventError", "InboxFullError", "InvalidEventError", "SubscriptionError"]


class EventError(OneiricError):
    """Base of the dispatcher's own errors."""


class InvalidEventError(EventError, ValueError):
    """A topic or payload the dispatcher refuses before anything runs."""

    category = "invalid"


class InboxFullError(EventError):
    """``publish`` with ``overflow="reject"`` found the bounded inbox full."""

    category = "unavailable"


class SubscriptionError(ConfigError):
    """A subscription (candidate metadata or ``subscribe()``) has invalid fields."""
