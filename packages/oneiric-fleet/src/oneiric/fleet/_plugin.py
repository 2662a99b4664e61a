"""Entry point ``oneiric: fleet``: the ``redis`` control plane (priority 0) and its settings hook.

Registering the candidate imports nothing else (a ``"module:attr"`` factory):
installing oneiric-fleet changes nothing until the settings files select
``redis`` (``local`` declares 100).  ``oneiric_settings_applied`` puts the
fleet's selections back on top after a settings reload (the watcher applies
the files, which would otherwise replace them until the next change).
"""

from __future__ import annotations

from typing import Any

from oneiric.core import Candidate, Source, hookimpl
from oneiric.core.helpers import CONTROL_DOMAIN, CONTROL_KEY

from .__about__ import __version__

__all__ = ["REDIS_PLANE", "oneiric_cli_commands", "oneiric_register",
           "oneiric_settings_applied"]

REDIS_PLANE = Candidate(
    CONTROL_DOMAIN,
    CONTROL_KEY,
    "redis",
    "oneiric.fleet._plane:RedisControlPlane",
    priority=0,
    settings_model="oneiric.fleet._settings:RedisPlaneSettings",
    source=Source("entry_point", "oneiric-fleet", __version__),
    description="one Redis for a fleet of instances: revisions, acknowledgements, canaries",
)


@hookimpl
def oneiric_register(registry: Any) -> None:
    registry.register(REDIS_PLANE)


@hookimpl
def oneiric_cli_commands() -> list[Any]:
    """``oneiric fleet ...`` (imports click; only the CLI calls this)."""
    from ._cli import fleet

    return [fleet]


@hookimpl
def oneiric_settings_applied(resolver: Any, settings: Any) -> None:
    import sys

    agent_module = sys.modules.get("oneiric.fleet._agent")
    if agent_module is None:
        return  # no agent in this process: nothing to re-apply (and nothing imported)
    agent = agent_module.attached(resolver)
    if agent is not None:
        agent.apply_selections()
