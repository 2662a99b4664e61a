"""``task.schedule`` (provider ``builtin``): trigger a schedule now, or list its next fire times.

Payload ``{"schedule": id, "op": "trigger" | "next", "count"?: 1-1000}``:

- ``trigger`` fires the schedule's target now, in this process, on the
  invoking lifecycle's scheduler (``scheduler_for``), with the dedupe id
  ``<id>:manual:<uuid>`` (also the workflow run id / event id / idempotency
  key) and waits for it → ``FireResult.as_dict()``: ``status`` ``ok`` or
  ``failed`` with its ``error``; a paused ``task`` key refuses it
  (``ComponentPaused``).  Manual fires ignore jitter and ``max_instances``
  and never move the schedule's cursor.
- ``next`` → ``{"schedule", "next": [RFC 3339 UTC, ...]}``: the next ``count``
  (default 1) instants after now.

An unknown schedule, op or count is an ``ActionInputError`` naming the field.
"""

from __future__ import annotations

from typing import Any

from oneiric.actions import ActionContext, ActionInputError, ActionSpec
from oneiric.core.helpers import format_timestamp

from .._schedule import ScheduleNotFound
from ._common import RuntimeKit, fields_of, take

__all__ = ["ScheduleKit"]

KEY = "task.schedule"
_FIELDS = frozenset({"schedule", "op", "count"})
_OPS = ("trigger", "next")
MAX_COUNT = 1000


class ScheduleKit(RuntimeKit):
    """Trigger a ``[schedules.<id>]`` now or list its next fire times."""

    spec = ActionSpec(
        description="Trigger a schedule now (manual fire) or list its next fire times",
        idempotent=False,
        side_effects=True,
        timeout=None,  # the target's own timeout bounds a trigger
    )

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, _FIELDS)
        name = take(fields, KEY, "schedule", str)
        op = take(fields, KEY, "op", str)
        if op not in _OPS:
            raise ActionInputError(
                f"action {KEY!r}: payload field op must be 'trigger' or 'next', got {op!r}",
                path="op",
            )
        count = take(fields, KEY, "count", int, default=1)
        if not 1 <= count <= MAX_COUNT:
            raise ActionInputError(
                f"action {KEY!r}: payload field count must be 1-{MAX_COUNT}, got {count}",
                path="count",
            )
        from .._schedule_runner import scheduler_for

        scheduler = scheduler_for(self.lifecycle(context))
        try:
            if op == "next":
                times = scheduler.next(name, count)
                return {"schedule": name, "next": [format_timestamp(t) for t in times]}
            result = await scheduler.trigger(name)
        except ScheduleNotFound as exc:
            raise ActionInputError(f"action {KEY!r}: {exc}", path="schedule") from None
        return result.as_dict()
