"""``swap``, ``pause``, ``drain``, ``resume``: the CLI as the operator of a control plane.

The CLI never reaches into a running application.  It writes the decision
through the ``ControlPlane`` the settings files select (``cli.control_plane``)
and never asks which provider that is.  With ``local`` (the default) ``swap``
writes the selection overlay (``<state dir>/selections.json``, applied by the
application's ``SelectionWatcher``), ``pause``/``drain``/``resume`` write the
shared activity store (``<state dir>/activity.sqlite``, polled by its
``LifecycleManager``).  Domain ``control`` is refused (exit 6): the plane is
fixed at start.  Before writing, the CLI checks what it can - the provider exists and is not
vetoed, the key is known, and with ``--validate`` the provider actually starts
and is healthy - so a typo fails here, in one line, not later in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._context import CliContext
from ._errors import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNAVAILABLE, CliError
from ._options import with_cli
from ._output import echo_json, iso, warn
from ._waiting import check_wait, report_wait, run_canary, wait_options

if TYPE_CHECKING:
    from oneiric.lifecycle import ActivityState

__all__ = ["drain", "pause", "resume", "swap"]


def _check_key(cli: CliContext, domain: str, key: str) -> None:
    from oneiric.core import NotRegisteredError

    cli.known_domain(domain)
    keys = cli.resolver.keys(domain)
    if key not in keys:
        raise NotRegisteredError(domain, key, keys)


def _check_provider(
    cli: CliContext, domain: str, key: str, provider: str, tenant: str | None
) -> None:
    """Raise unless ``provider`` (``name`` or ``name@kind:origin``) is registered and eligible."""
    from oneiric.core import OneiricError, validate_name

    name, _, origin_text = provider.partition("@")
    validate_name(name, "provider")
    origin = tuple(origin_text.split(":", 1)) if origin_text else None
    candidates = cli.resolver.candidates(domain, key)
    matches = [
        c for c in candidates
        if c.provider == name and (origin is None or c.source.origin == origin)
    ]
    if not matches:
        known = sorted({f"{c.provider}" for c in candidates})
        raise CliError(
            f"no provider {provider!r} for {domain}/{key}; registered providers: "
            f"{', '.join(known) or 'none'}; install its plugin, or pass --app to see "
            "providers the application registers in code",
            EXIT_NOT_FOUND,
        )
    try:
        ranking = cli.resolver.explain(domain, key, tenant=tenant).ranking
    except OneiricError:
        return  # the current selection is broken; the new one may fix it
    for ranked in ranking:
        if ranked.candidate in matches and not ranked.eligible:
            raise CliError(
                f"provider {provider!r} for {domain}/{key} cannot be selected: {ranked.reason}",
                EXIT_REFUSED,
            )


def _refuse_control(domain: str, action: str, key: str) -> None:
    """Domain ``control`` is the plane itself: chosen in the settings, fixed at start (6)."""
    from oneiric.core.helpers import refuse_control_domain

    refuse_control_domain(domain, f"oneiric {action} {domain} {key}")


def _blocked(cli: CliContext, domain: str, key: str) -> dict[str, Any] | None:
    """The pause/drain decision in force for the key, if any."""
    record = cli.control_plane.desired().activity.get((domain, key))
    return record.as_dict() if record is not None and record.state != "active" else None


def _live_snapshots(cli: CliContext) -> list[dict[str, Any]]:
    """Status documents of instances running now (none where the plane has no place yet)."""
    from oneiric.core import OneiricError

    try:
        return list(cli.control_plane.instances().documents)
    except OneiricError as exc:
        if exc.category != "not_found":
            raise
        return []


def _known_tenant(
    cli: CliContext, docs: list[dict[str, Any]], domain: str, tenant: str
) -> bool:
    """Whether the settings files or a running application know ``tenant`` in ``domain``.

    The overlay's own tenants do not count: an earlier swap of a typo would
    make the typo look known.
    """
    settings = cli.settings
    domain_settings = settings.domains.get(domain) if settings is not None else None
    if domain_settings is not None and tenant in domain_settings.tenants:
        return True
    return any(
        k.get("tenant") == tenant and k.get("domain") == domain
        for doc in docs for k in doc.get("keys") or []
    )


def _warn_unapplied(cli: CliContext, docs: list[dict[str, Any]]) -> None:
    """One warning line when no running application can apply the decision (exit stays 0)."""
    if not docs:
        warn(f"no running application publishes status in {cli.control_plane.where}; the "
             "change applies when one starts")


async def _validate(
    cli: CliContext, domain: str, key: str, provider: str, tenant: str | None
) -> dict[str, Any]:
    """Build, init and health-check ``provider`` here, then clean it up."""
    from oneiric.lifecycle import LifecycleManager

    lifecycle = LifecycleManager(cli.resolver, settings=cli.settings, write_status=False)
    try:
        await lifecycle.activate(domain, key, provider, tenant=tenant)
        report = await lifecycle.probe(domain, key, tenant=tenant)
    finally:
        await lifecycle.shutdown()
    if not report.ok:
        from oneiric.core import HealthCheckFailed

        raise HealthCheckFailed(
            f"{domain}/{key}/{provider} is unhealthy: {report.detail}; nothing was written"
        )
    return report.as_dict()


_EXPECT_REVISION = click.option(
    "--expect-revision", type=click.IntRange(min=0), default=None, metavar="N",
    help="Write only if the control plane is still at revision N (compare-and-set; exit 6 "
         "when it moved on).  The local plane counts swaps only.",
)


@click.command("swap")
@click.argument("domain")
@click.argument("key")
@click.argument("provider", required=False)
@click.option("--tenant", default=None, help="Select for this tenant only.")
@click.option("--clear", is_flag=True,
              help="Remove the overlay's selection instead: settings files and precedence "
                   "decide again.")
@click.option("--validate", is_flag=True,
              help="First activate the provider in this process and check its health.")
@click.option("--defer", is_flag=True,
              help="Write even if the key is paused or draining (applied after resume).")
@_EXPECT_REVISION
@wait_options
@click.option("--canary", default=None, metavar="N%",
              help="Swap N% of the live instances first (a fleet control plane); with --wait "
                   "bake, then promote or roll back.")
@click.option("--bake", default="60s", show_default=True, metavar="T",
              help="With --canary --wait: how long the cohort must stay healthy.")
@with_cli
def swap(
    cli: CliContext,
    domain: str,
    key: str,
    provider: str | None,
    tenant: str | None,
    clear: bool,
    validate: bool,
    defer: bool,
    expect_revision: int | None,
    wait: bool,
    timeout: float,
    canary: str | None,
    bake: str,
) -> None:
    """Select PROVIDER for DOMAIN/KEY in running applications.

    Writes the control plane (local: the state dir's selection overlay); each
    running application's SelectionWatcher applies it and its lifecycle swaps
    (with rollback if the new provider fails).  The overlay wins over the
    settings files, which are never rewritten.  With --clear (and no PROVIDER)
    the overlay's selection is removed, so the settings files, or precedence,
    decide again.
    """
    if clear and provider is not None:
        raise click.UsageError("pass PROVIDER or --clear, not both")
    if not clear and provider is None:
        raise click.UsageError("missing argument 'PROVIDER' (or pass --clear)")
    if clear and validate:
        raise click.UsageError("--validate needs a PROVIDER; it cannot be used with --clear")
    _refuse_control(domain, "swap", key)
    check_wait(cli, wait)
    _check_key(cli, domain, key)
    if provider is not None:
        _check_provider(cli, domain, key, provider, tenant)
    if canary is not None:
        if provider is None:
            raise click.UsageError("--canary needs a PROVIDER; it cannot be used with --clear")
        run_canary(cli, domain, key, provider, tenant, canary, bake, wait, timeout)
        return
    blocked = _blocked(cli, domain, key)
    if blocked is not None and not defer:
        # Not the actor: it is ``user@host pid N`` (kept as data in ``activity``),
        # and error messages name no user, host or pid.
        note = f" ({blocked['note']})" if blocked["note"] else ""
        raise CliError(
            f"{domain}/{key} is {blocked['state']}{note}; a running application would defer "
            f"the swap until resume; run 'oneiric resume {domain} {key}' first or pass --defer",
            EXIT_UNAVAILABLE,
        )
    health = None
    if validate and provider is not None:
        import asyncio  # only --validate runs an event loop (~20 ms to import)

        health = asyncio.run(_validate(cli, domain, key, provider, tenant))
    docs = _live_snapshots(cli)
    unknown_tenant = tenant is not None and not _known_tenant(cli, docs, domain, tenant)
    # what the settings files select: the previous value when the plane held none
    configured = cli.resolver.selections(domain, tenant=tenant).get(key)
    change = cli.control_plane.select(
        domain, key, provider, tenant=tenant, expect_revision=expect_revision
    )
    previous = change.previous if change.previous is not None else configured
    path = change.where
    result = {
        "domain": domain, "key": key, "tenant": tenant, "provider": provider,
        "previous": previous, "overlay": path, "validated": validate, "health": health,
        "deferred": blocked is not None, "cleared": clear,
    }
    if not wait:
        _warn_unapplied(cli, docs)
    if unknown_tenant:
        warn(f"tenant {tenant!r} is in neither the settings nor a running application's status "
             f"for domain {domain!r}; the selection applies only where that tenant is served")
    if wait:
        report_wait(cli, change, timeout, result)
        return
    if cli.json:
        echo_json(result)
        return
    scope = f" for tenant {tenant}" if tenant else ""
    was = f" (was {previous})" if previous else ""
    if clear:
        click.echo(f"{domain}/{key}{scope}: overlay selection cleared{was}; the settings files "
                   "and precedence decide again")
        click.echo(f"written to {path}")
        return
    checked = f"; validated here: healthy {health['detail']!r}" if health else ""
    if provider is not None and previous == provider:
        # Not "(was X)": nothing to do would be wrong.  The overlay changed
        # (its revision), so applications where X is not bound (e.g. its swap
        # failed before) swap again.
        was = (" (selection re-issued: applications where it is not bound, e.g. after a "
               "failed swap, swap again)")
    click.echo(f"{domain}/{key}{scope} -> {provider}{was}{checked}")
    if cli.control_plane.provider == "local":
        click.echo(f"written to {path}; applications watching this state dir swap within their "
                   "poll interval" + (" after resume" if blocked else ""))
    else:
        click.echo(f"written to {path} at revision {change.revision}; instances swap as they "
                   "read it" + (" after resume" if blocked else "") + " (--wait to see each)")


# ------------------------------------------------------------ pause/drain/resume


def _check_known(cli: CliContext, domain: str, key: str) -> None:
    """The key must be known to the resolver or to a running application's status."""
    from oneiric.core import OneiricError, validate_name

    validate_name(domain, "domain")
    validate_name(key, "key")
    if key in cli.resolver.keys(domain):
        return
    for doc in _live_snapshots(cli):
        if any(k["domain"] == domain and k["key"] == key for k in doc.get("keys", [])):
            return
    try:
        _check_key(cli, domain, key)
    except OneiricError as exc:
        raise CliError(f"{exc}; or pass --force to write the decision anyway",
                       EXIT_NOT_FOUND) from None
    except CliError as exc:
        raise CliError(f"{exc}; or pass --force to write the decision anyway",
                       exc.exit_code) from None


_STATES: dict[str, ActivityState] = {"pause": "paused", "drain": "draining", "resume": "active"}


def _decide(
    cli: CliContext,
    action: str,
    domain: str,
    key: str,
    note: str,
    force: bool,
    expect_revision: int | None,
    wait: bool = False,
    timeout: float = 60.0,
) -> None:
    from oneiric.core.helpers import format_timestamp

    _refuse_control(domain, action, key)
    check_wait(cli, wait)
    if not force:
        _check_known(cli, domain, key)
    change = cli.control_plane.set_activity(
        domain, key, _STATES[action], note=note, expect_revision=expect_revision
    )
    data = {
        "domain": change.domain, "key": change.key, "state": change.value, "note": change.note,
        "actor": change.actor, "at": format_timestamp(change.at),
        "state_dir": str(cli.state_path()),
    }
    if wait:
        report_wait(cli, change, timeout, data)
        return
    _warn_unapplied(cli, _live_snapshots(cli))
    if cli.json:
        echo_json(data)
        return
    effect = {
        "pause": "running applications refuse new leases",
        "drain": "running applications let in-flight work finish and refuse new leases",
        "resume": "running applications accept leases again and apply deferred swaps",
    }[action]
    note_text = f" ({note})" if note else ""
    # the actor (user@host pid) is data: in --json and 'oneiric activity', not in messages
    click.echo(f"{domain}/{key} {change.value}{note_text} at {iso(change.at)}")
    click.echo(f"{effect} within their activity poll interval")


def _decision_command(action: str, summary: str) -> click.Command:
    @click.command(action, help=summary)
    @click.argument("domain")
    @click.argument("key")
    @click.option("--note", default="", help="Why (kept in the activity history).")
    @click.option("--force", is_flag=True,
                  help="Write even if no resolver or running application knows the key.")
    @_EXPECT_REVISION
    @wait_options
    @with_cli
    def command(
        cli: CliContext, domain: str, key: str, note: str, force: bool,
        expect_revision: int | None, wait: bool, timeout: float,
    ) -> None:
        _decide(cli, action, domain, key, note, force, expect_revision, wait, timeout)

    return command


pause = _decision_command(
    "pause", "Refuse new leases on DOMAIN/KEY in running applications (in-flight work continues)."
)
drain = _decision_command(
    "drain", "Let in-flight work on DOMAIN/KEY finish and refuse new leases; status shows when "
    "it is drained."
)
resume = _decision_command(
    "resume", "Accept leases on DOMAIN/KEY again; swaps deferred by a pause or drain are applied."
)
