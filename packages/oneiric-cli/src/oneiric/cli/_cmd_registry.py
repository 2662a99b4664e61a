"""``plugins``, ``list`` and ``explain``: what is registered and why each winner won.

These commands only read the resolver the CLI builds (plugins, settings with
the overlay, ``--app``); they never touch running applications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._context import CliContext
from ._options import with_cli
from ._output import echo_json, table

if TYPE_CHECKING:
    from oneiric.core import RankedCandidate

__all__ = ["explain", "list_cmd", "plugins"]


def _ranked_row(domain: str, key: str, ranked: RankedCandidate) -> dict[str, Any]:
    return {"domain": domain, "key": key, **ranked.as_dict()}


# ------------------------------------------------------------------ plugins


@click.command("plugins")
@with_cli
def plugins(cli: CliContext) -> None:
    """Installed plugins, what each registered, and load errors.

    A plugin that failed to load (or whose CLI commands failed) is listed with
    its error; the others work, so this command itself succeeds.
    """
    from ._app import BUILTIN_COMMANDS
    from ._contrib import contributions

    report = cli.report
    found = contributions(frozenset(BUILTIN_COMMANDS))
    if cli.json:
        echo_json(
            {
                "plugins": [e.as_dict() for e in report.entries],
                "commands": found.as_dict()["commands"],
                "command_errors": found.as_dict()["errors"],
            }
        )
        return
    rows = [
        (
            e.distribution,
            e.version,
            e.entry_point,
            e.module,
            e.candidates,
            f"{e.load_time_s * 1000:.1f}",
            "ok" if e.error is None else f"ERROR {e.error}",
        )
        for e in report.entries
    ]
    if not rows:
        click.echo("no plugins installed (entry-point group 'oneiric')")
    table(["distribution", "version", "entry point", "module", "candidates", "load ms",
           "status"], rows)
    if found.commands:
        click.echo("")
        table(["command", "from plugin"],
              [(name, found.owners[name]) for name in sorted(found.commands)])
    for error in found.errors:
        click.echo(f"commands of {error['plugin']} unavailable: {error['error']}")


# --------------------------------------------------------------------- list


@click.command("list")
@click.option("--domain", default=None, help="Only this domain.")
@click.option("--shadowed", is_flag=True, help="Also list every losing candidate and why.")
@with_cli
def list_cmd(cli: CliContext, domain: str | None, shadowed: bool) -> None:
    """Every (domain, key) and its winning provider; --shadowed adds the losers."""
    from oneiric.core import OneiricError

    resolver = cli.resolver
    if domain is not None:
        cli.known_domain(domain)
    keys: list[dict[str, Any]] = []
    losers: list[dict[str, Any]] = []
    for d in [domain] if domain is not None else resolver.domains():
        for k in resolver.keys(d):
            row: dict[str, Any] = {
                "domain": d, "key": k, "provider": None, "source": None, "priority": None,
                "priority_origin": None, "stack_level": None, "reason": None,
                "candidates": len(resolver.candidates(d, k)), "error": None,
            }
            try:
                explanation = resolver.explain(d, k)
            except OneiricError as exc:
                row["error"] = str(exc)
                keys.append(row)
                continue
            ranking = explanation.ranking
            winner = next((r for r in ranking if r.selected), None)
            if winner is not None:
                data = winner.as_dict()
                row.update(
                    provider=data["provider"], source=data["source"], priority=data["priority"],
                    priority_origin=data["priority_origin"], stack_level=data["stack_level"],
                    reason=data["reason"],
                )
            else:
                row["error"] = explanation.why
            keys.append(row)
            losers.extend(_ranked_row(d, k, r) for r in ranking if not r.selected)
    if cli.json:
        echo_json({"keys": keys, "shadowed": losers if shadowed else None})
        return
    if not keys:
        click.echo("no candidates registered; install a plugin or pass --app")
        return
    table(
        ["domain", "key", "provider", "source", "priority", "candidates", "why"],
        [
            (
                r["domain"], r["key"], r["provider"] or "(none)", r["source"],
                f"{r['priority']} ({r['priority_origin']})" if r["priority"] is not None else None,
                r["candidates"], r["reason"] or f"ERROR {r['error']}",
            )
            for r in keys
        ],
    )
    if shadowed:
        click.echo("")
        if not losers:
            click.echo("no shadowed candidates")
            return
        table(
            ["domain", "key", "provider", "source", "priority", "lost because"],
            [
                (
                    r["domain"], r["key"], r["provider"], r["source"],
                    f"{r['priority']} ({r['priority_origin']})", r["reason"],
                )
                for r in losers
            ],
            title="Shadowed candidates",
        )


# ------------------------------------------------------------------ explain


@click.command("explain")
@click.argument("domain")
@click.argument("key")
@click.option("--tenant", default=None, help="Explain for this tenant.")
@click.option("--require", "require", multiple=True, metavar="CAP",
              help="Only candidates with this capability (repeatable).")
@with_cli
def explain(
    cli: CliContext, domain: str, key: str, tenant: str | None, require: tuple[str, ...]
) -> None:
    """Why a provider wins a (domain, key), and why every other one lost.

    The ranking is printed winner first; each loser shows the rule it lost on
    (selection, priority, stack_level, registration order, veto, capability),
    where it came from and where its priority came from.
    """
    from oneiric.core import NotRegisteredError

    resolver = cli.resolver
    cli.known_domain(domain)
    if key not in resolver.keys(domain):
        raise NotRegisteredError(domain, key, resolver.keys(domain))
    explanation = resolver.explain(domain, key, tenant=tenant, require=require)
    if cli.json:
        echo_json(explanation.as_dict())
        return
    data = explanation.as_dict()
    scope = f" (tenant {tenant})" if tenant else ""
    needs = f" requiring {', '.join(require)}" if require else ""
    winner = data["selected"] or "(no eligible provider)"
    click.echo(f"{domain}/{key}{scope}{needs} -> {winner}")
    click.echo(f"  {data['why']}")
    click.echo("")
    table(
        ["#", "provider", "source", "priority", "priority from", "stack", "registered", "rule"],
        [
            (
                f"{i}{' *' if c['selected'] else ''}", c["provider"], c["source"], c["priority"],
                c["priority_origin"], c["stack_level"], f"#{c['registered']}", c["reason"],
            )
            for i, c in enumerate(data["candidates"], 1)
        ],
    )
