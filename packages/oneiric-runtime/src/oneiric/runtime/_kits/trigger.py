"""``automation.trigger`` (provider ``builtin``): run one automation's target for one event.

Payload ``{"automation": id, "event": Event.as_dict()}`` → ``{"target", "result"}``:
the automation's payload template is rendered against the event, then

- ``action:<key>`` → ``Actions.invoke(key, rendered)``; ``result`` is its value;
- ``event:<topic>`` → ``publish`` on the lifecycle's dispatcher (causation id
  = the event's id, correlation id kept, hop count + 1); ``result`` is
  ``{"event_id"}``;
- ``workflow:<id>`` → the ``workflow.orchestrate`` action with
  ``{"workflow": id, "input": rendered}``; until it is registered this is a
  one-line ``ConfigError`` saying so.

The target gets what is left of this call's deadline as its timeout and the
idempotency key ``automation/<id>/<event id>`` (stable across the handler's
retries).  A template reference with no value is an ``ActionInputError``
whose ``path`` is the reference (``event.payload.order.id``): the same event
fails the same way, so it is not retried, and it is dead-lettered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from oneiric.actions import ActionContext, ActionInputError, ActionSpec
from oneiric.core import ConfigError, NotRegisteredError

from .._errors import InvalidEventError
from .._event import Event
from .._template import TemplateError
from ._common import RuntimeKit, fields_of, take

__all__ = ["Trigger"]

KEY = "automation.trigger"
_FIELDS = frozenset({"automation", "event"})


def _scope(event: Event) -> dict[str, Any]:
    return {"event": {"topic": event.topic, "id": event.id, "payload": event.payload,
                      "correlation_id": event.correlation_id,
                      "causation_id": event.causation_id}}


class Trigger(RuntimeKit):
    """Render an automation's payload for an event and run its target."""

    spec = ActionSpec(
        description="Run an automation's target (action, event or workflow) for an event",
        idempotent=False,
        side_effects=True,
        timeout=None,  # the target's own timeout (or the automation's) bounds it
    )

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        from .._automations import HOPS_HEADER, MAX_HOPS, registered

        fields = fields_of(payload, KEY, _FIELDS)
        name = take(fields, KEY, "automation", str)
        raw = take(fields, KEY, "event", Mapping)
        try:
            event = Event.from_dict(raw)
        except InvalidEventError as exc:
            raise ActionInputError(f"action {KEY!r}: payload field event: {exc}",
                                   path="event") from None
        lifecycle = self.lifecycle(context)
        automations = registered(lifecycle)
        automation = automations.get(name)
        if automation is None:
            raise ActionInputError(
                f"action {KEY!r}: no automation {name!r} is configured; configured: "
                f"{', '.join(sorted(automations)) or 'none'}",
                path="automation",
            )
        where = f"automation {name!r}"
        try:
            rendered = automation.template.render(_scope(event))
        except TemplateError as exc:
            raise ActionInputError(f"{where}: payload: {exc}", path=exc.missing) from None
        remaining = context.remaining()
        timeout = None if math.isinf(remaining) else max(remaining, 0.001)
        if automation.kind == "event":
            hops = _hops(event) + 1
            if hops > MAX_HOPS:
                raise ConfigError(
                    f"{where}: {hops} automations in a row led to this event (max {MAX_HOPS}); "
                    "an automation chain loops - check the 'on' and 'run' topics"
                )
            if not isinstance(rendered, Mapping):
                raise ActionInputError(
                    f"{where}: an event payload must be an object, the template gave "
                    f"{type(rendered).__name__}", path="payload",
                )
            from .._host import dispatcher_for

            event_id = await dispatcher_for(lifecycle).publish(
                automation.target, rendered, causation_id=event.id,
                correlation_id=event.correlation_id or event.id,
                headers={HOPS_HEADER: str(hops)},
            )
            return {"target": automation.run, "result": {"event_id": event_id}}
        from oneiric.actions import Actions

        body = ({"workflow": automation.target, "input": rendered}
                if automation.kind == "workflow" else rendered)
        try:
            result = await Actions(lifecycle).invoke(
                automation.action, body, tenant=context.tenant, timeout=timeout,
                idempotency_key=f"automation/{name}/{event.id}",
            )
        except NotRegisteredError as exc:
            if automation.kind != "workflow" or exc.key != automation.action:
                raise
            raise ConfigError(
                f"{where}: run = {automation.run!r} needs the action {automation.action!r}, "
                "which is not registered; install a version of oneiric-runtime with workflows"
            ) from None
        return {"target": automation.run, "result": result.value}


def _hops(event: Event) -> int:
    from .._automations import HOPS_HEADER

    text = event.headers.get(HOPS_HEADER, "0")
    return int(text) if text.isdigit() and len(text) < 4 else 0
