"""``event.dispatch`` (provider ``builtin``): emit or publish an event from an action call.

Payload ``{"topic", "payload"?: object, "mode"?: "emit" | "publish", "id"?}``:

- ``emit`` (the default) runs the matching handlers now, on the invoking
  lifecycle's dispatcher (``dispatcher_for``: the one the host's consumers and
  application code share, so bounds and dedupe are shared too), and returns
  ``DispatchReport.as_dict()``; a handler's failure is in the report, not raised.
  It is the default because it also works where nothing consumes the inbox
  (``oneiric action invoke``, a script).  Called from inside a handler, it
  runs the nested handlers in that handler's concurrency slot: use
  ``publish`` there.
- ``publish`` hands the event to the transport and returns ``{"event_id"}``.

Side effects, not idempotent: ``Actions.invoke`` never retries it unless the
caller passes a policy (then an explicit ``id`` lets non-idempotent handlers
deduplicate the repeat).  A bad topic, payload or id is an
``ActionInputError`` naming the field; a full inbox with ``overflow="reject"``
is ``InboxFullError`` (unavailable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oneiric.actions import ActionContext, ActionInputError, ActionSpec

from .._errors import InvalidEventError
from .._event import check_topic
from ._common import RuntimeKit, fields_of, take

__all__ = ["Dispatch"]

KEY = "event.dispatch"
_FIELDS = frozenset({"topic", "payload", "mode", "id"})
_MODES = ("emit", "publish")


class Dispatch(RuntimeKit):
    """Emit or publish one event on the invoking lifecycle's dispatcher."""

    spec = ActionSpec(
        description="Emit (run the handlers now, report each outcome) or publish an event",
        idempotent=False,
        side_effects=True,
    )

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, _FIELDS)
        topic = take(fields, KEY, "topic", str)
        body = take(fields, KEY, "payload", Mapping, default={})
        mode = take(fields, KEY, "mode", str, default="emit")
        event_id = take(fields, KEY, "id", str, default=None)
        if mode not in _MODES:
            raise ActionInputError(
                f"action {KEY!r}: payload field mode must be 'emit' or 'publish', got {mode!r}",
                path="mode",
            )
        try:
            check_topic(topic)
        except InvalidEventError as exc:
            raise ActionInputError(f"action {KEY!r}: {exc}", path="topic") from None
        if event_id is not None and (not event_id or len(event_id) > 200):
            raise ActionInputError(
                f"action {KEY!r}: payload field id must be 1-200 characters, got {event_id!r}",
                path="id",
            )
        from .._host import dispatcher_for

        dispatcher = dispatcher_for(self.lifecycle(context))
        try:
            if mode == "publish":
                return {"event_id": await dispatcher.publish(topic, body, id=event_id)}
            report = await dispatcher.emit(topic, body, id=event_id)
        except InvalidEventError as exc:  # topic and id were checked: the payload is at fault
            raise ActionInputError(f"action {KEY!r}: {exc}", path="payload") from None
        return report.as_dict()
