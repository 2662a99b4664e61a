"""``oneiric event emit|route|handlers|dead-letters``: click commands, imported only by the CLI.

They run on the ``oneiric`` command's resolver (plugins, settings, remote
last-good, ``--app``), so the handlers they see are the ones ``oneiric
explain event KEY`` explains.  ``emit`` and ``--redrive`` run handlers *here*,
in this process (honouring ``oneiric pause``); an application's own consumers
are reached with ``publish`` from inside it.  Exit codes: 0 every handler ok,
1 one failed (or was dead-lettered), 3 unknown dead letter, 4 invalid event.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from oneiric.core.helpers import format_timestamp

__all__ = ["event"]


def _dispatcher() -> Any:
    from oneiric.cli import current_context
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager

    from ._host import dispatcher_for

    ctx = current_context()
    manager = LifecycleManager(
        ctx.resolver, settings=ctx.settings,
        config=LifecycleConfig(grace_period=0, health_interval=0),
        state_dir=ctx.get("state_dir"), write_status=False,
    )
    # the resolver's dispatcher: [automations] become handlers, the runtime's kits find it
    return dispatcher_for(manager, state_dir=ctx.get("state_dir"))


def _as_json(flag: bool) -> bool:
    from oneiric.cli import current_context

    return flag or current_context().json


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


async def _closing(dispatcher: Any, work: Any) -> Any:
    try:
        return await work
    finally:
        await dispatcher.aclose()
        await dispatcher.lifecycle.shutdown()


def _report_lines(report: Any) -> list[str]:
    lines = []
    for o in report.outcomes:
        extra = f" after {o.attempts} attempts" if o.attempts > 1 else ""
        error = f": {o.error}" if o.error else ""
        lines.append(f"{o.group}: {o.handler} ({o.provider}) {o.status}{extra}{error}")
    return lines or ["no handler subscribes to this topic"]


def _payload(text: str) -> Any:
    from oneiric.cli import read_json_option

    value = read_json_option(text, "--payload")
    if not isinstance(value, dict):
        from ._errors import InvalidEventError

        raise InvalidEventError(
            f"--payload must be a JSON object for an event, got {type(value).__name__}"
        )
    return value


@click.group("event")
def event() -> None:
    """Events: emit one here, route (explain) it, list handlers and dead letters."""


@event.command("emit")
@click.argument("topic")
@click.option("--payload", "payload_text", default="{}", show_default=True,
              help="A JSON object, @file, or @- for stdin.")
@click.option("--id", "event_id", default=None, help="The event id (default: a new UUID).")
@click.option("--json", "as_json", is_flag=True, help="The dispatch report as JSON.")
def emit(topic: str, payload_text: str, event_id: str | None, as_json: bool) -> None:
    """Run the handlers subscribed to TOPIC here and report each outcome."""
    payload = _payload(payload_text)
    dispatcher = _dispatcher()
    report = asyncio.run(_closing(dispatcher, dispatcher.emit(topic, payload, id=event_id)))
    if _as_json(as_json):
        _print(report.as_dict())
    else:
        click.echo(f"event {report.event_id}")
        for line in _report_lines(report):
            click.echo(f"  {line}")
    if not report.ok:
        sys.exit(1)


@event.command("route")
@click.argument("topic")
@click.option("--payload", "payload_text", default="{}", show_default=True,
              help="A JSON object, @file, or @- for stdin.")
@click.option("--json", "as_json", is_flag=True, help="The route plan as JSON.")
def route(topic: str, payload_text: str, as_json: bool) -> None:
    """Which handlers would run for TOPIC and why every other one would not; runs nothing."""
    payload = _payload(payload_text)
    dispatcher = _dispatcher()

    async def plan() -> Any:
        return dispatcher.route(topic, payload)

    result = asyncio.run(_closing(dispatcher, plan()))
    if _as_json(as_json):
        _print(result.as_dict())
        return
    if not result.decisions:
        click.echo("no event handlers are registered")
    for d in result.decisions:
        click.echo(f"{'runs' if d.runs else 'skip'}  {d.handler:<24} [{d.group}] {d.reason}")


@event.command("handlers")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def handlers(as_json: bool) -> None:
    """Every event handler: provider, topics, group, priority, bounds; and invalid ones."""
    dispatcher = _dispatcher()

    async def listing() -> Any:
        subs = dispatcher.subscriptions()
        providers = {k: dispatcher.lifecycle.resolver.resolve("event", k).provider
                     for k in (s.name for s in subs)}
        return subs, providers, dispatcher.errors()

    subs, providers, errors = asyncio.run(_closing(dispatcher, listing()))
    if _as_json(as_json):
        _print({"handlers": [s.as_dict() | {"provider": providers[s.name]} for s in subs],
                "errors": errors})
        return
    for s in subs:
        flags = ", ".join(f for f, on in (("failover", s.failover),
                                          ("idempotent", s.idempotent)) if on)
        click.echo(f"{s.name} ({providers[s.name]}) topics={','.join(s.topics)} "
                   f"group={s.group} priority={s.priority}" + (f" [{flags}]" if flags else ""))
    for name, error in errors.items():
        click.echo(f"{name}: not routed: {error}", err=True)
    if not subs and not errors:
        click.echo("no event handlers are registered")


@event.command("dead-letters")
@click.option("--redrive", "redrive_ids", multiple=True, metavar="ID",
              help="Re-dispatch this dead letter (same event id) to its group; repeatable.")
@click.option("--all", "redrive_all", is_flag=True, help="Redrive every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def dead_letters(redrive_ids: tuple[str, ...], redrive_all: bool, as_json: bool) -> None:
    """List dead letters (oldest first), or redrive some or all of them here.

    A redriven record is removed only when its group's final outcome is ok;
    one that fails again - or finds no handler of its group any more - stays,
    and the command exits 1.
    """
    if redrive_ids and redrive_all:
        raise click.UsageError("give --redrive ID (repeatable) or --all, not both")
    dispatcher = _dispatcher()
    store = dispatcher.dead_letters

    async def run() -> Any:
        # everything touching the store happens here: _closing closes it
        if not (redrive_ids or redrive_all):
            return store.list()
        ids = ([r.id for r in store.list()] if redrive_all
               else list(dict.fromkeys(redrive_ids)))
        groups: dict[str, str] = {}
        for i in ids:
            record = store.get(i)
            if record is not None:
                groups[i] = record.group
        reports = await store.redrive(dispatcher, ids)  # unknown id: raises, nothing runs
        return [(i, groups.get(i, ""), r, store.get(i) is not None)
                for i, r in zip(ids, reports, strict=True)]

    result = asyncio.run(_closing(dispatcher, run()))
    if redrive_ids or redrive_all:
        _print_redriven(result, _as_json(as_json))
        return
    if _as_json(as_json):
        _print([r.as_dict() for r in result])
        return
    if not result:
        click.echo("no dead letters")
    for r in result:
        click.echo(f"{r.id}  {format_timestamp(r.time)}  {r.event.topic}  {r.handler} "
                   f"[{r.group}] x{r.attempts}  {r.error_type}: {r.error}")


def _print_redriven(redriven: list[tuple[str, str, Any, bool]], as_json: bool) -> None:
    """One entry per dead letter; exit 1 when any stays (failed again or no handler ran)."""
    if as_json:
        _print({"redriven": [report.as_dict() | {"dead_letter": id, "kept": kept,
                                                 "ok": not kept}
                             for id, _group, report, kept in redriven]})
    else:
        for id, group, report, kept in redriven:
            ran = [o for o in report.outcomes if o.group == group]
            if not ran:
                click.echo(f"{report.event_id}: no handler of group {group!r} takes this event "
                           f"now; dead letter {id} stays")
                continue
            for line in _report_lines(report):
                click.echo(f"{report.event_id}: {line}")
            if kept:
                click.echo(f"{report.event_id}: dead letter {id} stays")
    if any(kept for *_rest, kept in redriven):
        sys.exit(1)
