"""Automations: ``[automations.<id>]`` of oneiric.toml - on an event, run an action/event/workflow.

::

    [automations.ship-paid]
    on = "orders.paid"                                  # topic pattern ('*', trailing '#')
    filter = { "order.region" = { equals = "eu" } }     # as a subscription filter
    run = "action:http.fetch"                           # | event:<topic> | workflow:<id>
    payload = { url = "https://ship.example/${event.payload.order.id}" }
    retry = { max_attempts = 3 }                        # optional: timeout, priority, group

Each automation becomes an event handler - domain ``event``, key
``automation.<id>``, provider ``settings``, source ``Source("settings", <config
dir>)``, metadata its subscription fields - so routing, groups, bounds,
retries, dead letters, redrive and ``oneiric event route|handlers`` cover
automations with no code of their own.  The handler invokes the
``automation.trigger`` kit (``Actions.invoke``: lease, timeout, telemetry),
which renders ``payload`` (a template of ``${event.topic}``, ``${event.id}``,
``${event.correlation_id}``, ``${event.payload[.path]}``; default
``"${event.payload}"``) and runs the target: an action by key; an event by
``publish`` (never an inline emit, which would hold the outer handler's
concurrency slot); a workflow through the ``workflow.orchestrate`` action with
``{"workflow": id, "input": payload}``.

Everything is validated before anything is registered (``ConfigError`` in one
line naming ``automations.<id>.<field>``).  Registration is ``sync(resolver, settings)``,
called by ``dispatcher_for``: idempotent per settings object, it replaces the
automations of earlier settings (a reload) and unregisters removed ones.
A follow-up event carries ``causation_id`` = the triggering event's id and a
hop count; a chain of automations deeper than ``MAX_HOPS`` fails (and is
dead-lettered) instead of looping forever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oneiric.core import (
    Candidate,
    ConfigError,
    Resolver,
    RetryPolicy,
    Settings,
    validate_name,
)
from oneiric.core.helpers import is_topic, is_topic_pattern, one_line
from oneiric.lifecycle import LifecycleManager

from ._sections import Registered, parse_tables, register_tables, settings_source
from ._subscription import Subscription
from ._template import Template, compile_template

__all__ = ["FIELDS", "HOPS_HEADER", "MAX_HOPS", "Automation", "parse_automations", "sync"]

#: The fields of one ``[automations.<id>]`` table.
FIELDS = frozenset({"on", "filter", "run", "payload", "retry", "timeout", "priority", "group"})
#: The header counting how many automations led to an event.
HOPS_HEADER = "oneiric-automation-hops"
#: The longest chain of automation-published events.
MAX_HOPS = 8
#: ``workflow:<id>`` targets run through this action (registered by the workflow engine).
WORKFLOW_ACTION = "workflow.orchestrate"
PREFIX = "automation."
_EVENT_FIELDS = ("topic", "id", "correlation_id", "causation_id", "payload")
_OWNER = "oneiric.runtime.automations"
_NAME_MAX = 64 - len(PREFIX)


@dataclass(frozen=True, slots=True)
class Automation:
    """One validated automation: its handler's subscription, its target and payload template."""

    id: str
    subscription: Subscription
    kind: str  # "action" | "event" | "workflow"
    target: str  # action key, topic or workflow id
    template: Template

    @property
    def run(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def handler(self) -> str:
        return self.subscription.name

    @property
    def action(self) -> str:
        """The action key the trigger invokes (``workflow.orchestrate`` for workflows)."""
        return WORKFLOW_ACTION if self.kind == "workflow" else self.target

    def metadata(self) -> dict[str, Any]:
        """The handler candidate's metadata: exactly its subscription fields."""
        data = self.subscription.as_dict()
        return {k: v for k, v in data.items()
                if k != "name" and v is not None and not (k == "group" and v == self.handler)}


def _check_event_ref(path: tuple[str, ...]) -> str | None:
    if path[0] != "event":
        return (f"unknown reference root {path[0]!r}; automations reference the event: "
                "${event.topic}, ${event.id}, ${event.correlation_id}, ${event.payload.<path>}")
    if len(path) == 1:
        return "name a field: ${event.topic}, ${event.id} or ${event.payload.<path>}"
    if path[1] not in _EVENT_FIELDS:
        return f"the event has no field {path[1]!r}; known: {', '.join(_EVENT_FIELDS)}"
    if path[1] != "payload" and len(path) > 2:
        return f"event.{path[1]} is a string; only event.payload has fields"
    return None


def _target(value: object, where: str) -> tuple[str, str]:
    hint = "use 'action:<key>', 'event:<topic>' or 'workflow:<id>'"
    if not isinstance(value, str):
        raise ConfigError(f"{where}.run must be a string; {hint}, got {value!r}")
    kind, sep, target = value.partition(":")
    if not sep or kind not in ("action", "event", "workflow"):
        raise ConfigError(f"{where}.run: {value!r} is not a target; {hint}")
    if kind == "event":
        if not is_topic(target):
            raise ConfigError(
                f"{where}.run: {target!r} is not a topic to publish (dot-separated "
                "[a-z0-9_-] segments, no wildcards)"
            )
    else:
        try:
            validate_name(target, "action" if kind == "action" else "workflow")
        except ValueError as exc:
            raise ConfigError(f"{where}.run: {one_line(exc)}") from None
    return kind, target


def _automation(name: str, body: object, where: str) -> Automation:
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} must be a table with on and run, got {type(body).__name__}")
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown automation field; known: {', '.join(sorted(FIELDS))}"
        )
    for required in ("on", "run"):
        if required not in body:
            example = "'orders.*'" if required == "on" else "'action:debug.console'"
            raise ConfigError(f"{where}.{required} is required, e.g. {example}")
    topics = body["on"]
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, list) or not topics or not all(
        is_topic_pattern(t) for t in topics
    ):
        raise ConfigError(
            f"{where}.on: {body['on']!r} is not a topic pattern (or a list of them): "
            "dot-separated [a-z0-9_-] segments, '*' for one segment, a trailing '#' for the rest"
        )
    kind, target = _target(body["run"], where)
    fields: dict[str, Any] = {"topics": list(topics)}
    for field in ("filter", "priority", "group", "timeout"):
        if field in body:
            fields[field] = body[field]
    if "retry" in body:
        retry = RetryPolicy.from_mapping(body["retry"], where=f"{where}.retry")
        if isinstance(body["retry"], Mapping) and "non_retryable" not in body["retry"]:
            # bad input and configuration fail the same way every time: never retried
            from oneiric.actions import ActionInputError

            retry = dataclasses.replace(retry, non_retryable=(ActionInputError, ConfigError))
        fields["retry"] = retry
    subscription = Subscription.from_fields(PREFIX + name, fields, where=where)
    template = compile_template(body.get("payload", "${event.payload}"), f"{where}.payload",
                                _check_event_ref)
    return Automation(name, subscription, kind, target, template)


def parse_automations(section: Mapping[str, Any], *, origin: str = "") -> dict[str, Automation]:
    """Validate every ``[automations.<id>]`` table; ``ConfigError`` at the first problem.

    ``origin`` (the settings file) prefixes the message.
    """
    return parse_tables(section, kind="automations", name="automation", parse=_automation,
                        max_length=_NAME_MAX, origin=origin)


# ------------------------------------------------------------------ registration


def registered(lifecycle: LifecycleManager) -> dict[str, Automation]:
    """The automations registered on ``lifecycle``'s resolver (synced first)."""
    sync(lifecycle.resolver, lifecycle.settings)
    state: Registered = lifecycle.resolver.extension(_OWNER, Registered)
    return state.values


def sync(resolver: Resolver, settings: Settings | None) -> None:
    """Register the settings' automations as event handlers (idempotent).

    Validates them all first, so an invalid table registers nothing.  Called by
    ``oneiric_settings_applied`` (every resolver settings are applied to) and by
    ``dispatcher_for``.
    """
    if settings is None:  # no settings say nothing about automations
        return
    state: Registered = resolver.extension(_OWNER, Registered)
    if state.settings is settings:
        return
    config_dir = settings.config_dir
    origin = str(config_dir / "oneiric.toml") if config_dir is not None else ""
    automations = parse_automations(settings.automations, origin=origin)
    source = settings_source(config_dir)
    candidates = {
        a.handler: Candidate(
            "event", a.handler, "settings", _factory(a.id), source=source,
            metadata=a.metadata(),
            description=f"automation {a.id}: on {', '.join(a.subscription.topics)} run {a.run}",
        )
        for a in automations.values()
    }
    register_tables(resolver, state, settings, "event", candidates, automations)


def _factory(name: str) -> Any:
    def build() -> AutomationHandler:
        return AutomationHandler(name)

    return build


class AutomationHandler:
    """The event handler of one automation: invokes ``automation.trigger`` for the event."""

    def __init__(self, automation: str) -> None:
        self.automation = automation

    async def handle(self, event: Any, context: Any) -> None:
        from oneiric.actions import Actions

        remaining = context.remaining()
        await Actions(context.lifecycle).invoke(
            "automation.trigger", {"automation": self.automation, "event": event.as_dict()},
            timeout=max(remaining, 0.001) if remaining != float("inf") else None,
            idempotency_key=f"automation/{self.automation}/{event.id}",
        )
