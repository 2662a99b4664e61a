"""``status``, ``health`` and ``activity``: what running applications report.

Running applications publish status documents through the control plane the
settings select (``local``: snapshots in the state directory, written by each
``LifecycleManager``); ``status`` and ``health`` read them there, so an
operator sees every instance without connecting to any, and ``activity``
reads the state directory's pause/drain history.  Only ``health --probe``
builds providers here, in this process, to check them.
"""

from __future__ import annotations

from typing import Any

import click

from ._context import CliContext
from ._errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, CliError
from ._options import with_cli
from ._output import echo_json, iso, table, warn

__all__ = ["activity", "health", "status"]


def _scope(entry: dict[str, Any]) -> str:
    tenant = entry.get("tenant")
    return f"{entry['domain']}/{entry['key']}" + (f" @{tenant}" if tenant else "")


def _snapshots(
    cli: CliContext, include_stale: bool, skipped: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The status documents; a malformed (foreign) one is warned about, listed in ``skipped``."""
    found = cli.control_plane.instances(include_lost=include_stale)
    skipped.extend(found.skipped)
    for entry in found.skipped:
        where = entry.get("path") or entry.get("id")
        warn(f"skipped status snapshot {where}: {entry['error']}")
    return list(found.documents)


def _check_filter(
    cli: CliContext, docs: list[dict[str, Any]], domain: str | None, key: str | None
) -> None:
    """A ``--domain``/``--key`` nothing knows is an error (3), not an empty table.

    Known means: in a running application's snapshot, or registered in this
    CLI's resolver (an application that is not running yet).  Snapshots are
    checked first, so the common case loads no plugins.
    """
    from oneiric.core import validate_name

    for value, what in ((domain, "domain"), (key, "key")):
        if value is not None:
            try:
                validate_name(value, what)
            except ValueError as exc:
                raise CliError(str(exc), EXIT_INVALID) from None
    entries = [k for d in docs for k in d.get("keys") or []]
    seen = {(k["domain"], k["key"]) for k in entries}
    if _matches(seen, domain, key):
        return
    resolver = cli.resolver
    known = seen | {(d, k) for d in resolver.domains() for k in resolver.keys(d)}
    if _matches(known, domain, key):
        return
    domains = sorted({d for d, _ in known})
    if domain is not None and domain not in domains:
        raise CliError(
            f"no domain {domain!r} in running applications' status or registered here; known "
            f"domains: {', '.join(domains) or 'none'}; check the name or pass --app",
            EXIT_NOT_FOUND,
        )
    keys = sorted({k for d, k in known if domain is None or d == domain})
    scope = f" in domain {domain!r}" if domain is not None else ""
    raise CliError(
        f"no key {key!r}{scope} in running applications' status or registered here; known "
        f"keys: {', '.join(keys) or 'none'}; check the name or pass --app",
        EXIT_NOT_FOUND,
    )


def _matches(known: set[tuple[str, str]], domain: str | None, key: str | None) -> bool:
    return any(
        (domain is None or d == domain) and (key is None or k == key) for d, k in known
    )


def _only(entries: list[dict[str, Any]], domain: str | None, key: str | None) -> list[Any]:
    return [
        e for e in entries
        if (domain is None or e["domain"] == domain) and (key is None or e["key"] == key)
    ]


# ------------------------------------------------------------------- status


def _status_impl(cli: CliContext, domain: str | None, include_stale: bool) -> None:
    state = cli.state_path()
    skipped: list[dict[str, str]] = []
    docs = _snapshots(cli, include_stale, skipped)
    if domain is not None:
        _check_filter(cli, docs, domain, None)
        docs = [{**d, "keys": _only(d.get("keys") or [], domain, None)} for d in docs]
    if cli.json:
        echo_json({"state_dir": str(state), "processes": docs, "skipped": skipped,
                   "control_plane": cli.control_plane.describe()})
        return
    if not docs:
        click.echo(
            f"no running application publishes status in {state} (an application's "
            "LifecycleManager writes status/<pid>.json there; pass its --state-dir)"
        )
        return
    for doc in docs:
        alive = "" if doc.get("alive", True) else " (not running)"
        click.echo(f"process {doc.get('pid')} on {doc.get('host')}{alive}: started "
                   f"{doc.get('started_at')}, status written {doc.get('written_at')}")
        for watcher in doc.get("config") or []:
            if watcher.get("error"):
                click.echo(f"  config {watcher.get('config_dir')}: ERROR {watcher['error']}")
        activity_error = (doc.get("activity") or {}).get("error")
        if activity_error:
            click.echo(f"  activity store: ERROR {activity_error}")
        table(
            ["key", "bound", "winner", "activity", "in flight", "swaps", "failures", "note"],
            [
                (
                    _scope(k), k.get("bound"), k.get("winner"),
                    (k.get("activity") or {}).get("state"),
                    (k.get("activity") or {}).get("in_flight"), k.get("swaps"),
                    k.get("failures"), k.get("reason") or "",
                )
                for k in doc.get("keys") or []
            ],
        )
        click.echo("")


# ------------------------------------------------------------------- health


def _snapshot_checks(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    for doc in docs:
        for k in doc.get("keys") or []:
            health = k.get("last_health")
            checks.append({
                "pid": doc.get("pid"), "domain": k["domain"], "key": k["key"],
                "tenant": k.get("tenant"), "provider": k.get("bound"),
                "ok": health.get("ok") if health else None,
                "detail": health.get("detail") if health else "no health check recorded yet",
                "at": health.get("at") if health else None,
            })
    return checks


async def _probe_all(
    cli: CliContext, domain: str | None, key: str | None
) -> list[dict[str, Any]]:
    """Activate each winner here and run its health check; nothing is left running."""
    from oneiric.core import OneiricError
    from oneiric.lifecycle import LifecycleManager

    resolver = cli.resolver
    lifecycle = LifecycleManager(resolver, settings=cli.settings, write_status=False)
    checks: list[dict[str, Any]] = []
    try:
        for (d, k), winner in sorted(resolver.active(domain).items()):
            if key is not None and k != key:
                continue
            check: dict[str, Any] = {
                "pid": None, "domain": d, "key": k, "tenant": None,
                "provider": winner.provider, "ok": False, "detail": "", "at": None,
            }
            try:
                await lifecycle.activate(d, k)
                report = await lifecycle.probe(d, k)
                check.update(ok=report.ok, detail=report.detail)
            except OneiricError as exc:
                check["detail"] = " ".join(str(exc).split())
            checks.append(check)
    finally:
        await lifecycle.shutdown()
    return checks


def _health_impl(
    cli: CliContext, probe: bool, domain: str | None, include_stale: bool, key: str | None = None
) -> None:
    skipped: list[dict[str, str]] = []
    if probe:
        if domain is not None or key is not None:
            _check_filter(cli, [], domain, key)
        import asyncio  # only --probe runs an event loop (~20 ms to import)

        checks = asyncio.run(_probe_all(cli, domain, key))
    else:
        docs = _snapshots(cli, include_stale, skipped)
        if domain is not None or key is not None:
            _check_filter(cli, docs, domain, key)
        checks = _only(_snapshot_checks(docs), domain, key)
    failed = [c for c in checks if c["ok"] is False]
    if cli.json:
        echo_json({"mode": "probe" if probe else "snapshot", "ok": not failed, "checks": checks,
                   "skipped": skipped})
    elif not checks:
        click.echo("nothing to check" + ("" if probe else
                   " (no running application publishes status here; try --probe)"))
    else:
        table(
            ["key", "provider", "ok", "detail", "pid"],
            [(_scope(c), c["provider"], c["ok"], c["detail"], c["pid"] or "here")
             for c in checks],
        )
    if failed:
        raise click.exceptions.Exit(EXIT_UNAVAILABLE)


# ----------------------------------------------------------------- activity


def _activity_impl(cli: CliContext, limit: int) -> None:
    state = cli.state_path(must_exist=True)
    store = cli.activity_store(create=False)
    records = [r.as_dict() for r in store.records()] if store is not None else []
    history = [r.as_dict() for r in store.history(limit)] if store is not None else []
    if cli.json:
        echo_json({"state_dir": str(state), "records": records, "history": history})
        return
    if not records:
        click.echo(f"no pause/drain decisions in {state}")
        return
    table(["key", "state", "note", "actor", "at"],
          [(f"{r['domain']}/{r['key']}", r["state"], r["note"], r["actor"], iso(r["at"]))
           for r in records])
    click.echo("")
    table(["at", "key", "state", "note", "actor"],
          [(iso(r["at"]), f"{r['domain']}/{r['key']}", r["state"], r["note"], r["actor"])
           for r in history], title=f"History (latest {limit})")


# ----------------------------------------------------------------- commands


@click.command("status")
@click.option("--domain", default=None, help="Only keys of this domain.")
@click.option("--all", "include_stale", is_flag=True,
              help="Include snapshots of processes that no longer run.")
@with_cli
def status(cli: CliContext, domain: str | None, include_stale: bool) -> None:
    """What running applications bound, what should be bound, and why they differ.

    Reads the status snapshots (<state dir>/status/<pid>.json) that running
    applications' LifecycleManagers publish.  Exits 3 when --domain names a
    domain neither a running application nor this CLI's resolver knows.
    """
    _status_impl(cli, domain, include_stale)


@click.command("health")
@click.option("--probe", is_flag=True,
              help="Activate each winning provider in this process and run its health check.")
@click.option("--domain", default=None, help="Only keys of this domain.")
@click.option("--key", default=None, help="Only this key (with --domain: of that domain).")
@click.option("--all", "include_stale", is_flag=True,
              help="Include snapshots of processes that no longer run.")
@with_cli
def health(
    cli: CliContext, probe: bool, domain: str | None, key: str | None, include_stale: bool
) -> None:
    """Last health of running applications' providers; --probe checks them here.

    Exits 5 when any check failed, 3 when --domain or --key names nothing known.
    """
    _health_impl(cli, probe, domain, include_stale, key)


@click.command("activity")
@click.option("--limit", default=20, show_default=True, help="History entries to show.")
@with_cli
def activity(cli: CliContext, limit: int) -> None:
    """Pause/drain decisions in force (from the state dir's activity store) and their history."""
    _activity_impl(cli, limit)

