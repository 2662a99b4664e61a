"""``oneiric fleet status|history|adopt|rollout``: the fleet as its operators see it.

They run on the control plane the settings files select (``--config``); on
any plane but ``redis`` they refuse in one line (exit 2) rather than show one
machine as a "fleet".  ``--json`` everywhere.  Exit codes: 0; 2 not a fleet;
5 Redis unreachable.
"""

from __future__ import annotations

import json
from typing import Any

import click

from oneiric.core import OneiricError
from oneiric.core.helpers import format_timestamp

__all__ = ["fleet"]


def _plane() -> Any:
    from oneiric.cli import current_context

    plane = current_context().control_plane
    if plane.provider != "redis":
        raise OneiricError(
            f"the settings select the {plane.provider!r} control plane, not a fleet; set "
            "[control.selections] plane = \"redis\" (docs/fleet.md) to use 'oneiric fleet'",
            category="usage")
    return plane


def _as_json(flag: bool) -> bool:
    from oneiric.cli import current_context

    return flag or current_context().json


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group("fleet")
def fleet() -> None:
    """Every instance of the fleet, its history and recovery (the redis control plane)."""


@fleet.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_cmd(as_json: bool) -> None:
    """Instance x key: winner, bound provider, activity, applied revision, health, lost."""
    plane = _plane()
    instances = []
    for doc in plane.instances(include_lost=True).documents:
        keys = [{"domain": k["domain"], "key": k["key"], "tenant": k.get("tenant"),
                 "winner": k.get("winner"), "bound": k.get("bound"),
                 "activity": (k.get("activity") or {}).get("state"),
                 "health": k.get("last_health")} for k in doc.get("keys") or []]
        instances.append({
            "id": doc["id"], "host": doc.get("host"), "pid": doc.get("pid"),
            "last_seen": format_timestamp(doc["last_seen"]), "lost": doc["lost"],
            "applied_revision": doc.get("applied_revision"), "keys": keys,
            "control_plane": doc.get("control_plane") or {},
        })
    document = {"control_plane": plane.describe(), "instances": instances}
    if _as_json(as_json):
        _print(document)
        return
    described = document["control_plane"]
    click.echo(f"fleet {plane.settings.fleet!r} at {plane.where}: {described['state']}, "
               f"revision {described['revision']}; {len(instances)} instance(s), "
               f"{sum(i['lost'] for i in instances)} lost")
    for item in instances:
        state = "LOST" if item["lost"] else item["control_plane"].get("state", "?")
        click.echo(f"  {item['id']} ({state}, applied {item['applied_revision']}, "
                   f"last seen {item['last_seen']})")
        for key in item["keys"]:
            health = key["health"] or {}
            ok = "healthy" if health.get("ok") else "unhealthy" if health else "unprobed"
            scope = f"[{key['tenant']}]" if key["tenant"] else ""
            click.echo(f"    {key['domain']}/{key['key']}{scope}: bound {key['bound']}, "
                       f"winner {key['winner']}, {key['activity']}, {ok}")


@fleet.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many changes, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history_cmd(limit: int, as_json: bool) -> None:
    """The changes written to the fleet: revision, time, actor, what changed."""
    changes = _plane().admin.history(limit)
    if _as_json(as_json):
        _print({"changes": [{**c.as_dict(), "at": format_timestamp(c.at)} for c in changes]})
        return
    for c in changes:
        what = (f"select {c.provider or '(cleared)'}" if c.kind == "select"
                else {"paused": "pause", "draining": "drain", "active": "resume"}[c.state or ""])
        scope = f"[{c.tenant}]" if c.tenant else ""
        note = f" ({c.note})" if c.note else ""
        click.echo(f"{c.revision:>6}  {format_timestamp(c.at)}  {c.actor}  "
                   f"{c.domain}/{c.key}{scope}: {what}{note}")


@fleet.command("adopt")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def adopt_cmd(as_json: bool) -> None:
    """Accept the fleet's current state after Redis was wiped or regressed.

    Selects, for every key all live instances bind to the same provider, that
    provider (keys they disagree on are listed and keep their bindings), then
    lets regressed instances follow the new epoch.
    """
    from oneiric.lifecycle import default_actor

    result = _plane().admin.adopt(default_actor())
    if _as_json(as_json):
        _print(result)
        return
    click.echo(f"adopted epoch {result['epoch']} at revision {result['revision']}; "
               f"{len(result['seeded'])} selection(s) seeded from the instances")
    for item in result["conflicts"]:
        click.echo(f"  not seeded: {item['domain']}/{item['key']} is bound to "
                   f"{', '.join(item['bound'])} on different instances (each keeps its own)")


@fleet.group("rollout")
def rollout() -> None:
    """The canary rollout in progress (started by 'oneiric swap ... --canary N%')."""


def _rollouts() -> Any:
    from ._rollout import Rollouts

    return Rollouts(_plane())


def _show(record: dict[str, Any] | None, as_json: bool) -> None:
    if _as_json(as_json):
        _print({"rollout": record})
        return
    if record is None:
        click.echo("no rollout has been started in this fleet")
        return
    click.echo(f"{record['domain']}/{record['key']} -> {record['target']}: {record['state']} "
               f"(canary {record['percent']:g}% on {', '.join(record['cohort'])}; bake "
               f"{record['bake']:g}s; revision {record['revision']})"
               + (f": {record['detail']}" if record.get("detail") else ""))


@rollout.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rollout_status(as_json: bool) -> None:
    """The current (or last) rollout: target, cohort, state."""
    _show(_rollouts().status(), as_json)


@rollout.command("promote")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rollout_promote(as_json: bool) -> None:
    """Select the rollout's target for the whole fleet."""
    from oneiric.lifecycle import default_actor

    _show(_rollouts().promote(default_actor()), as_json)


@rollout.command("abort")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rollout_abort(as_json: bool) -> None:
    """Roll the cohort back to the fleet's selection."""
    from oneiric.lifecycle import default_actor

    _show(_rollouts().abort(default_actor()), as_json)
