"""What the event dispatcher raises, each with the category that picks the CLI's exit code.

::

    OneiricError
    ├── EventError
    │   ├── InvalidEventError    a bad topic or payload (4); nothing was dispatched
    │   ├── InboxFullError       ``overflow="reject"`` and the inbox is full (5)
    │   └── EventTransportError  ``publish`` could not hand the event to Redis (5)
    └── WorkflowError
        ├── RunNotFound          no run with that id (3)
        ├── RunLocked            another executor holds the run (6)
        ├── DefinitionChanged    resume of a run whose definition changed (6)
        └── CheckpointStoreError the checkpoint file is locked/unwritable (5) or invalid (4)
    ConfigError
    ├── SubscriptionError        a subscription's fields are invalid (4)
    └── WorkflowDefinitionError  a workflow definition is invalid (4); nothing ran

A handler's own failure is never raised by ``emit``: it is a ``HandlerOutcome``.
"""

from __future__ import annotations

from oneiric.core import ConfigError, OneiricError

__all__ = [
    "CheckpointStoreError",
    "DefinitionChanged",
    "EventError",
    "EventTransportError",
    "InboxFullError",
    "InvalidEventError",
    "RunLocked",
    "RunNotFound",
    "SubscriptionError",
    "WorkflowDefinitionError",
    "WorkflowError",
]


class EventError(OneiricError):
    """Base of the dispatcher's own errors."""


class InvalidEventError(EventError, ValueError):
    """A topic or payload the dispatcher refuses before anything runs."""

    category = "invalid"


class InboxFullError(EventError):
    """``publish`` with ``overflow="reject"`` found the bounded inbox full."""

    category = "unavailable"


class EventTransportError(EventError):
    """``publish`` on the Redis transport: the server is unreachable or refused the entry."""

    category = "unavailable"


class SubscriptionError(ConfigError):
    """A subscription (candidate metadata or ``subscribe()``) has invalid fields."""


class WorkflowError(OneiricError):
    """Base of the workflow engine's own errors (a node's failure is a node state, not this)."""


class RunNotFound(WorkflowError, LookupError):
    """No run with that id in the checkpoint store."""

    category = "not_found"


class RunLocked(WorkflowError):
    """Another executor (in this or another process) holds the run."""

    category = "refused"


class DefinitionChanged(WorkflowError):
    """The run was started with another version of the definition; resuming it is refused."""

    category = "refused"


class WorkflowDefinitionError(ConfigError):
    """A workflow definition is invalid: the message names the nodes; nothing ran."""


class CheckpointStoreError(WorkflowError):
    """The checkpoint file cannot be opened, read or written, or an argument is invalid.

    ``category`` is ``unavailable`` (locked longer than ``busy_timeout``,
    unwritable, closed) or ``invalid`` (not SQLite, written by a newer
    version, a value that is not JSON, a bad argument).
    """

    category = "unavailable"
