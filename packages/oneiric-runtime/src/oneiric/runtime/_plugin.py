"""Entry point ``oneiric: runtime``: the event kits, the ``event`` CLI group, host services.

Discovery imports this module only: every hook imports what it needs when it
is called, so ``load_plugins`` pays for nothing of the dispatcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oneiric.core import hookimpl

#: oneiric_settings_applied (hook-spec version 3) is implemented below.
ONEIRIC_HOOKSPEC = 3

if TYPE_CHECKING:
    import click

__all__ = ["oneiric_cli_commands", "oneiric_host_services", "oneiric_register"]


@hookimpl
def oneiric_register(registry: Any) -> None:
    """The runtime's action kits (strings only)."""
    from ._catalog import register_kits

    register_kits(registry)


@hookimpl
def oneiric_cli_commands() -> list[click.Command]:
    from ._cli import event
    from ._cli_schedule import schedule
    from ._cli_workflow import workflow
    from ._orchestrate import orchestrate

    return [event, orchestrate, workflow, schedule]


@hookimpl
def oneiric_host_services(host: Any) -> object:
    """The host dispatcher's inbox consumers and the workflow engine's recovery.

    The dispatcher is taken here, before any service starts, so the host's
    ``[automations]`` are validated and registered as handlers first (an
    invalid one stops the start with its one-line ``ConfigError``).
    """
    from ._host import dispatcher_for, engine_for, event_consumers, workflow_service

    dispatcher_for(host.lifecycle, state_dir=host.state_dir)
    engine_for(host.lifecycle, state_dir=host.state_dir)  # workflow files validated at start
    from ._schedule_runner import scheduler_for, scheduler_service

    scheduler_for(host.lifecycle, state_dir=host.state_dir)  # [schedules] validated at start
    return [event_consumers(host), workflow_service(host), scheduler_service(host)]


@hookimpl
def oneiric_settings_applied(resolver: Any, settings: Any) -> None:
    """``[automations]``, ``[schedules]`` and ``workflows/`` files become candidates.

    On every resolver settings are applied to - a host's, the CLI's, a reload's
    - so ``oneiric explain task nightly`` and ``oneiric pause event automation.x``
    see them.  Each kind is validated entirely before any of it registers.
    """
    from ._automations import sync as sync_automations
    from ._definitions import sync_workflow_files
    from ._schedule_runner import sync as sync_schedules

    sync_automations(resolver, settings)
    sync_schedules(resolver, settings)
    sync_workflow_files(resolver, settings)

