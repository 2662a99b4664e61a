"""``oneiric schedule list|next|trigger``: click commands, imported by the CLI only.

They run on the ``oneiric`` command's resolver and settings, so the
schedules they see are the ``[schedules]`` a host of the same settings fires
(and ``oneiric explain task ID`` explains), and read the state dir's shared
``schedules.sqlite`` for what hosts did: last look, last fire, counts.
``trigger`` fires *here*, in this process, once (dedupe id
``<id>:manual:<uuid>``), honouring ``oneiric pause task ID``.

Exit codes: 0 ok, 1 the triggered fire failed, 3 unknown schedule, 4 invalid
settings, 5 the schedule is paused (``ComponentPaused``) or its file unavailable.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from oneiric.core.helpers import format_timestamp

__all__ = ["schedule"]


def _call(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(scheduler)`` on the CLI's resolver; close the store and lifecycle after."""
    from oneiric.cli import current_context
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager

    from ._schedule_runner import scheduler_for

    ctx = current_context()
    manager = LifecycleManager(
        ctx.resolver, settings=ctx.settings,
        config=LifecycleConfig(grace_period=0, health_interval=0),
        state_dir=ctx.get("state_dir"), write_status=False,
    )
    scheduler = scheduler_for(manager, state_dir=ctx.get("state_dir"))

    async def closing() -> Any:
        try:
            return await work(scheduler)
        finally:
            await scheduler.aclose()
            from ._host import _ENGINE, _OWNER

            for owner in (_OWNER, _ENGINE):  # a trigger may have opened either
                made: Any = manager.resolver.extension(owner, lambda: None)
                if made is not None:
                    await made.aclose()
            await manager.shutdown()

    return asyncio.run(closing())


def _as_json(flag: bool) -> bool:
    from oneiric.cli import current_context

    return flag or current_context().json


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _stamp(value: float | None) -> str:
    return format_timestamp(value) if value is not None else "-"


@click.group("schedule")
def schedule() -> None:
    """Schedules: list them with their state, show next fire times, trigger one now."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_schedules(as_json: bool) -> None:
    """Every [schedules.<id>]: when it fires, what it runs, its next and last fire, counts."""

    async def listing(scheduler: Any) -> list[dict[str, Any]]:
        rows = []
        for item in scheduler.schedules.values():
            upcoming = scheduler.next(item.id, 1)
            state = scheduler.store.state(item.id).as_dict()
            rows.append({
                "id": item.id, "cron": item.cron, "every": item.every,
                "timezone": item.timezone if item.cron is not None else None,
                "run": item.run, "coalesce": item.coalesce,
                "misfire_grace": item.misfire_grace, "jitter": item.jitter,
                "max_instances": item.max_instances,
                "next": format_timestamp(upcoming[0]) if upcoming else None,
                "paused": await scheduler.is_paused(item.id),
            } | {k: v for k, v in state.items() if k != "schedule"})
        return rows

    rows = _call(listing)
    if _as_json(as_json):
        _print({"schedules": rows})
        return
    if not rows:
        click.echo("no schedules are configured (add [schedules.<id>] to oneiric.toml)")
    for r in rows:
        spec = f"cron {r['cron']!r} {r['timezone']}" if r["cron"] else f"every {r['every']:g}s"
        paused = " [paused]" if r["paused"] else ""
        click.echo(f"{r['id']}{paused}: {spec} -> {r['run']}  next {r['next'] or '-'}  "
                   f"last {r['last_fired_at'] or '-'}  fires {r['fires']} misfires "
                   f"{r['misfires']} busy {r['busy']} failures {r['failures']}")


@schedule.command("next")
@click.argument("schedule_id", metavar="ID")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many fire times.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def next_fires(schedule_id: str, count: int, as_json: bool) -> None:
    """The next fire times of ID (UTC, and local time in its zone)."""

    async def upcoming(scheduler: Any) -> tuple[Any, list[float]]:
        return scheduler.get(schedule_id), scheduler.next(schedule_id, count)

    item, times = _call(upcoming)
    if _as_json(as_json):
        _print({"schedule": schedule_id, "next": [format_timestamp(t) for t in times]})
        return
    from datetime import datetime

    for t in times:
        local = datetime.fromtimestamp(t, item.zone).isoformat()
        click.echo(f"{format_timestamp(t)}  ({local} {item.timezone})")


@schedule.command("trigger")
@click.argument("schedule_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def trigger(schedule_id: str, as_json: bool) -> None:
    """Fire ID now, here, once; exit 1 if its target failed."""

    async def fire(scheduler: Any) -> Any:
        return await scheduler.trigger(schedule_id)

    result = _call(fire)
    if _as_json(as_json):
        _print(result.as_dict())
    else:
        error = f": {result.error}" if result.error else ""
        click.echo(f"{result.dedupe_id}: {result.status}{error}")
    if result.status != "ok":
        sys.exit(1)
