"""The runtime's action kits, as strings (``event.dispatch``, ``automation.trigger``)."""

from __future__ import annotations

from typing import Any

__all__ = ["KITS", "register_kits"]

_K = "oneiric.runtime._kits"

#: key -> provider -> (factory, settings model or None, description)
KITS: dict[str, dict[str, tuple[str, str | None, str]]] = {
    "event.dispatch": {
        "builtin": (f"{_K}.dispatch:Dispatch", None,
                    "Emit (run handlers now) or publish an event on the lifecycle's dispatcher"),
    },
    "workflow.orchestrate": {"builtin": (f"{_K}.orchestrate:Orchestrate", None, "Run a workflow")},
    "task.schedule": {
        "builtin": (f"{_K}.schedule:ScheduleKit", None,
                    "Trigger a [schedules.<id>] now or list its next fire times"),
    },
    "automation.trigger": {
        "builtin": (f"{_K}.trigger:Trigger", None,
                    "Run an [automations.<id>] target (action, event, workflow) for an event"),
    },
}


def register_kits(registry: Any) -> None:
    for key, providers in KITS.items():
        for provider, (factory, settings_model, description) in providers.items():
            registry.register(
                domain="action", key=key, provider=provider, factory=factory,
                settings_model=settings_model, description=description, priority=1,
            )
