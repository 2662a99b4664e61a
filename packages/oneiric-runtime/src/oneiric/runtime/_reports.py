"""What ``emit`` and ``route`` answer: per-handler outcomes and per-handler routing decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DispatchReport", "HandlerOutcome", "RouteDecision", "RoutePlan"]

#: ``HandlerOutcome.status`` values.
STATUSES = ("ok", "failed", "timed_out", "dead_lettered", "duplicate")


@dataclass(frozen=True, slots=True)
class HandlerOutcome:
    """What one handler did with the event: ``status`` is one of ``STATUSES``.

    ``error`` is one line (type and message) when it did not succeed.
    """

    handler: str
    provider: str | None
    status: str
    attempts: int
    error: str | None = None
    group: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "duplicate")

    def as_dict(self) -> dict[str, Any]:
        return {"handler": self.handler, "provider": self.provider, "group": self.group,
                "status": self.status, "attempts": self.attempts, "error": self.error}


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """One dispatch: the event id and every handler outcome (one per group, plus failovers)."""

    event_id: str
    outcomes: tuple[HandlerOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.final())

    def final(self) -> tuple[HandlerOutcome, ...]:
        """The last outcome of each group (a failed-over handler's failure is not final)."""
        last: dict[str, HandlerOutcome] = {}
        for outcome in self.outcomes:
            last[outcome.group] = outcome
        return tuple(last.values())

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "ok": self.ok,
                "outcomes": [o.as_dict() for o in self.outcomes]}


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Whether ``handler`` would run for the event, and why (or why not)."""

    handler: str
    group: str
    runs: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"handler": self.handler, "group": self.group, "runs": self.runs,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """``route(topic, payload)``: one decision per subscribed handler; nothing ran."""

    topic: str
    decisions: tuple[RouteDecision, ...]

    @property
    def handlers(self) -> tuple[str, ...]:
        """The handlers that would run, in group order."""
        return tuple(d.handler for d in self.decisions if d.runs)

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "runs": list(self.handlers),
                "decisions": [d.as_dict() for d in self.decisions]}
