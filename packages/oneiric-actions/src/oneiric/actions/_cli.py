"""``oneiric action list|invoke``: click commands, imported only when the CLI asks.

click is the CLI's dependency, not this package's: ``_plugin`` imports this
module inside ``oneiric_cli_commands``.  Commands raise; the ``oneiric``
main turns an error into its one line and the exit code of its category
(4 invalid input, 5 timeout/paused/unavailable, 3 unknown key, 1 the action
raised).  Under ``oneiric`` the resolver is the CLI's (plugins, settings,
remote last-good, ``--app``), so what ``list`` shows is what ``explain`` shows.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import click

from oneiric.core import Resolver

from ._json import from_json, to_json

if TYPE_CHECKING:
    from oneiric.core import Settings

__all__ = ["action"]


def _context() -> tuple[Resolver, Settings | None, Any, bool]:
    """(resolver, settings, state dir or None, global --json) of the running ``oneiric``."""
    from oneiric.cli import current_context

    obj = current_context()
    return obj.resolver, obj.settings, obj.get("state_dir"), obj.json


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


@click.group("action")
def action() -> None:
    """Action kits: list them, invoke one by key (docs/actions.md)."""


@action.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_actions(as_json: bool) -> None:
    """Every action key: its providers, the winner and the winner's spec."""
    resolver, settings, state, global_json = _context()
    infos = _actions(resolver, settings, state).list()
    rows = [info.as_dict() for info in infos]
    if as_json or global_json:
        _emit(rows, True, "")
        return
    if not rows:
        click.echo("no actions registered; pip install oneiric-actions (or a kit plugin)")
        return
    width = max(len(r["key"]) for r in rows)
    for info in infos:
        others = [p for p in info.providers if p != info.winner]
        spec = info.spec
        flags = ""
        if spec is not None:
            flags = ", ".join(
                f for f, on in (("idempotent", spec.idempotent),
                                ("no side effects", not spec.side_effects)) if on
            )
        winner = info.winner or f"none ({info.error})"
        more = f" (also: {', '.join(others)})" if others else ""
        description = f" - {spec.description}" if spec is not None and spec.description else ""
        click.echo(f"{info.key:<{width}}  {winner}{more}{description}"
                   + (f" [{flags}]" if flags else ""))


def _payload(text: str) -> Any:
    """``--payload``: JSON text, ``@file`` or ``@-``; ``{"base64": ...}`` objects become bytes."""
    from oneiric.cli import read_json_option

    return from_json(read_json_option(text, "--payload"))


def _actions(resolver: Resolver, settings: Settings | None, state: Any) -> Any:
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager

    from ._invoke import Actions

    manager = LifecycleManager(
        resolver,
        settings=settings,
        config=LifecycleConfig(grace_period=0, health_interval=0),
        state_dir=state,
        write_status=False,  # a one-off call is not an application to report on
    )
    return Actions(manager)


@action.command("invoke")
@click.argument("key")
@click.option("--payload", "payload_text", default="null", show_default=True,
              help="The payload: JSON text, @file, or @- for stdin. Bytes as {\"base64\": ...}.")
@click.option("--tenant", default=None, help="Invoke the tenant's provider.")
@click.option("--timeout", type=float, default=None, help="Seconds per attempt (overrides spec).")
@click.option("--json", "as_json", is_flag=True, help="The whole result as JSON.")
def invoke(key: str, payload_text: str, tenant: str | None, timeout: float | None,
           as_json: bool) -> None:
    """Invoke action KEY here, in this process, and print its value."""
    payload = _payload(payload_text)
    resolver, settings, state, global_json = _context()
    actions = _actions(resolver, settings, state)

    async def run() -> Any:
        try:
            return await actions.invoke(key, payload, tenant=tenant, timeout=timeout)
        finally:
            await actions.lifecycle.shutdown()

    result = asyncio.run(run())
    if as_json or global_json:
        _emit(result.as_dict(), True, "")
    else:
        value = to_json(result.value)
        click.echo(value if isinstance(value, str) else json.dumps(value, indent=2))
