"""The plugin module named by the entry point.

Only ``"module:attr"`` strings are registered, so discovery imports nothing but
this small module.
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

ONEIRIC_HOOKSPEC = 1


@hookimpl
def oneiric_register(registry: Any) -> None:
    registry.register(
        domain="service",
        key="greeter",
        provider="casual",
        factory="oneiric_example_greeter.providers:CasualGreeter",
        priority=10,
        description="Says hi.",
    )
    registry.register(
        domain="service",
        key="greeter",
        provider="formal",
        factory="oneiric_example_greeter.providers:FormalGreeter",
        settings_model="oneiric_example_greeter.providers:GreeterSettings",
        priority=20,
        capabilities={"polite"},
        description="Says good day, with a configurable title.",
    )
    registry.register(
        domain="service",
        key="greeter",
        provider="legacy",
        factory="oneiric_example_greeter.providers:LegacyGreeter",
        priority=50,
        description="Shouts; retired by policy.",
    )


@hookimpl
def oneiric_candidate_veto(candidate: Any, request: Any) -> str | None:
    """A policy: the legacy greeter is retired everywhere."""
    if candidate.provider == "legacy":
        return "legacy greeters are retired"
    return None
