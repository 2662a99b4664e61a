"""oneiric-runtime: the event dispatcher (workflows, schedules and the orchestrator next).

Event handlers are components of domain ``event`` (key = handler name): the
lifecycle activates, leases, swaps, pauses and drains them; ``EventDispatcher``
routes events to them - isolated, bounded, retried, dead-lettered and
explained by ``route()``.  Every name loads on first access: discovery imports
``_plugin`` only.  See docs/events.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core.helpers import lazy_exports

from .__about__ import __version__

if TYPE_CHECKING:
    from oneiric.core import RetryPolicy

    from ._checkpoint import CheckpointStore
    from ._deadletters import DEFAULT_DEAD_LETTERS, DeadLetterStore
    from ._dispatcher import DOMAIN, EventDispatcher
    from ._engine import WorkflowEngine
    from ._errors import (
        DefinitionChanged,
        EventError,
        EventTransportError,
        InboxFullError,
        InvalidEventError,
        RunLocked,
        RunNotFound,
        SubscriptionError,
        WorkflowDefinitionError,
        WorkflowError,
    )
    from ._event import DEFAULT_MAX_PAYLOAD_BYTES, Event
    from ._handlers import HandlerContext
    from ._host import dispatcher_for, engine_for
    from ._inbox import Inbox
    from ._letter import DeadLetter, DeadLetterNotFound, DeadLetterStoreError
    from ._memstore import MemoryCheckpointStore
    from ._plan import Plan
    from ._redisstore import RedisCheckpointStore
    from ._reports import DispatchReport, HandlerOutcome, RouteDecision, RoutePlan
    from ._runqueue import RedisRunQueue
    from ._runs import NodeState, RunRecord, RunResult
    from ._sqlitestore import DEFAULT_CHECKPOINTS, CheckpointStoreError, SQLiteCheckpointStore
    from ._streams import RedisStreamsTransport
    from ._subscription import Filter, Subscription
    from ._workflow import Node, Workflow

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_DEAD_LETTERS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DOMAIN",
    "CheckpointStore",
    "CheckpointStoreError",
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterStore",
    "DeadLetterStoreError",
    "DefinitionChanged",
    "DispatchReport",
    "Event",
    "EventDispatcher",
    "EventError",
    "EventTransportError",
    "Filter",
    "HandlerContext",
    "HandlerOutcome",
    "Inbox",
    "InboxFullError",
    "InvalidEventError",
    "MemoryCheckpointStore",
    "Node",
    "NodeState",
    "Plan",
    "RedisCheckpointStore",
    "RedisRunQueue",
    "RedisStreamsTransport",
    "RetryPolicy",
    "RouteDecision",
    "RoutePlan",
    "RunLocked",
    "RunNotFound",
    "RunRecord",
    "RunResult",
    "SQLiteCheckpointStore",
    "Subscription",
    "SubscriptionError",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowEngine",
    "WorkflowError",
    "__version__",
    "dispatcher_for",
    "engine_for",
]

_LAZY = {
    "DEFAULT_CHECKPOINTS": "_sqlitestore",
    "DEFAULT_DEAD_LETTERS": "_deadletters",
    "DEFAULT_MAX_PAYLOAD_BYTES": "_event",
    "DOMAIN": "_dispatcher",
    "CheckpointStore": "_checkpoint",
    "CheckpointStoreError": "_sqlitestore",
    "DeadLetter": "_letter",
    "DeadLetterNotFound": "_letter",
    "DeadLetterStore": "_deadletters",
    "DeadLetterStoreError": "_letter",
    "DefinitionChanged": "_errors",
    "DispatchReport": "_reports",
    "Event": "_event",
    "EventDispatcher": "_dispatcher",
    "EventError": "_errors",
    "EventTransportError": "_errors",
    "Filter": "_subscription",
    "HandlerContext": "_handlers",
    "HandlerOutcome": "_reports",
    "Inbox": "_inbox",
    "InboxFullError": "_errors",
    "InvalidEventError": "_errors",
    "MemoryCheckpointStore": "_memstore",
    "Node": "_workflow",
    "NodeState": "_runs",
    "Plan": "_plan",
    "RedisCheckpointStore": "_redisstore",
    "RedisRunQueue": "_runqueue",
    "RedisStreamsTransport": "_streams",
    "RouteDecision": "_reports",
    "RoutePlan": "_reports",
    "RunLocked": "_errors",
    "RunNotFound": "_errors",
    "RunRecord": "_runs",
    "RunResult": "_runs",
    "SQLiteCheckpointStore": "_sqlitestore",
    "Subscription": "_subscription",
    "SubscriptionError": "_errors",
    "Workflow": "_workflow",
    "WorkflowDefinitionError": "_errors",
    "WorkflowEngine": "_engine",
    "WorkflowError": "_errors",
    "dispatcher_for": "_host",
    "engine_for": "_host",
}


def __getattr__(name: str) -> object:
    """Lazy exports; ``RetryPolicy`` is core's (one type for actions, events, workflows)."""
    if name == "RetryPolicy":
        from oneiric.core import RetryPolicy

        return RetryPolicy
    return _lazy(name)


_lazy = lazy_exports(__name__, _LAZY)
