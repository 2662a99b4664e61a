"""``route()``: explain routing - which handlers would run for an event, and why not the rest.

The dispatcher's own decisions (``_groups``, ``_blocked``) are reused, so
the plan is what ``emit`` would do at this moment; nothing runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._reports import RouteDecision, RoutePlan

if TYPE_CHECKING:
    from ._dispatcher import EventDispatcher
    from ._handlers import Entry

__all__ = ["plan_route"]


def plan_route(
    dispatcher: EventDispatcher, topic: str, payload: Mapping[str, Any]
) -> RoutePlan:
    """One ``RouteDecision`` per subscribed handler (runners first)."""
    event = dispatcher._event(topic, payload)
    decisions: list[RouteDecision] = []
    for entry in dispatcher._entries():
        sub = entry.subscription
        if not entry.matches(topic):
            decisions.append(RouteDecision(sub.name, sub.group, False,
                                           f"topic mismatch: subscribes to "
                                           f"{', '.join(sub.topics)}"))
            continue
        reason = sub.filter.check(event.payload) if sub.filter is not None else None
        if reason is not None:
            decisions.append(RouteDecision(sub.name, sub.group, False, reason))
    for group, members in dispatcher._groups(event).items():
        runner: Entry | None = None
        for entry in members:
            sub = entry.subscription
            blocked = dispatcher._blocked(sub.name)
            if runner is None and blocked is None:
                runner = entry
                rank = f"priority {sub.priority}"
                if len(members) > 1:
                    rank += f", first of {len(members)} in group {group!r}"
                decisions.append(RouteDecision(sub.name, group, True, f"runs: {rank}"))
            elif blocked is not None:
                decisions.append(RouteDecision(sub.name, group, False, blocked))
            else:
                assert runner is not None
                top = runner.subscription
                why = (f"lower priority {sub.priority} < {top.priority}"
                       if sub.priority < top.priority
                       else f"tie on priority {sub.priority} broken by name: "
                            f"{top.name!r} sorts first")
                standby = " (fails over to it)" if top.failover else ""
                decisions.append(RouteDecision(sub.name, group, False,
                                               f"{why} in group {group!r}{standby}"))
        if runner is None:
            # every member paused/draining: the first one is tried and dead-lettered
            first = members[0].subscription
            decisions = [d if d.handler != first.name else
                         RouteDecision(first.name, group, False,
                                       f"{d.reason}; the event would be dead-lettered "
                                       "for redrive")
                         for d in decisions]
    order = {e.subscription.name: i for i, e in enumerate(dispatcher._entries())}
    decisions.sort(key=lambda d: (not d.runs, order.get(d.handler, 0)))
    return RoutePlan(topic, tuple(decisions))
