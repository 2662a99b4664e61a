"""``--wait [--timeout S]`` of swap/pause/drain/resume: every live instance's acknowledgement.

The write returns once the control plane committed it; ``--wait`` then asks
the plane (``ControlPlane.wait``) for each instance that was live at that
moment and prints what it answered.  Exit 0 only when every one of them
acknowledged success; any failure (``health_failed``, ``missing``), a
``lost`` instance (never waited for: it stopped reporting) or one still
``pending`` at the timeout exits 5 after the whole list is printed.  The local
plane cannot acknowledge (exit 5, one line, from the plane itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._errors import EXIT_UNAVAILABLE, CliError
from ._output import echo_json

if TYPE_CHECKING:
    from oneiric.lifecycle import Change

    from ._context import CliContext

__all__ = ["SUCCESS", "check_wait", "report_wait", "run_canary", "wait_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: The acknowledgement each action succeeds with.
SUCCESS = {"select": "swapped", "clear": "swapped", "pause": "paused", "drain": "drained",
           "resume": "resumed"}
DEFAULT_TIMEOUT = 60.0


def wait_options(command: F) -> F:
    """``--wait`` and ``--timeout S`` on a control command."""
    command = click.option(
        "--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
        show_default=True, metavar="S",
        help="With --wait: give up after S seconds and list the instances still pending.",
    )(command)
    return click.option(
        "--wait", is_flag=True,
        help="Wait for every live instance to acknowledge the change (a fleet control plane); "
             "exit 5 if any failed, was lost or is still pending.",
    )(command)


def check_wait(cli: CliContext, wait: bool) -> None:
    """Refuse ``--wait`` before anything is written when the plane cannot acknowledge."""
    if wait and cli.control_plane.provider == "local":
        raise CliError(
            "--wait needs acknowledgements, which the local control plane does not give "
            "(applications on this machine show a change in 'oneiric status'); nothing was "
            "written - drop --wait, or select a fleet control plane in the settings",
            EXIT_UNAVAILABLE)


def report_wait(cli: CliContext, change: Change, timeout: float,
                data: dict[str, Any]) -> None:
    """Wait, print each instance's answer (or add them to ``data`` for --json), exit 5 if any
    did not succeed."""
    results = cli.control_plane.wait(change, timeout=timeout)
    wanted = SUCCESS[change.action]
    failed = [r for r in results if r.result != wanted]
    rows = [{"instance": r.instance, "result": r.result, "detail": r.detail} for r in results]
    if cli.json:
        echo_json({**data, "revision": change.revision,
                   "wait": {"ok": not failed, "expected": wanted, "instances": rows}})
    else:
        for r in results:
            mark = "ok " if r.result == wanted else "!! "
            detail = f" - {r.detail}" if r.detail else ""
            click.echo(f"{mark}{r.instance}: {r.result}{detail}")
        click.echo(f"{len(results) - len(failed)} of {len(results)} instances {wanted} "
                   f"(revision {change.revision})")
    if failed:
        kinds = sorted({r.result for r in failed})
        raise CliError(
            f"{len(failed)} of {len(results)} instances did not acknowledge "
            f"{change.action} {change.domain}/{change.key} ({', '.join(kinds)}); see the list "
            "above or 'oneiric fleet status'", EXIT_UNAVAILABLE)


def _percent(text: str) -> float:
    value = text.strip().removesuffix("%")
    try:
        percent = float(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a percentage; write e.g. 10%",
                                 param_hint="--canary") from None
    if not 0 < percent <= 100:
        raise click.BadParameter(f"{text!r} is not in (0, 100]%", param_hint="--canary")
    return percent


def run_canary(cli: CliContext, domain: str, key: str, provider: str, tenant: str | None,
               canary: str, bake: str, wait: bool, timeout: float) -> None:
    """``swap --canary``: start (and with --wait follow) a rollout on a fleet plane."""
    from oneiric.core import ConfigError
    from oneiric.core.helpers import parse_duration

    percent = _percent(canary)
    try:
        bake_s = parse_duration(bake, what="--bake")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--bake") from None
    start = getattr(cli.control_plane, "canary", None)
    if start is None:
        raise CliError(
            f"--canary needs a fleet control plane; the {cli.control_plane.provider!r} plane "
            "has no instances to roll out to one by one (nothing was written)", 2)
    report = start(domain, key, provider, tenant=tenant, percent=percent, bake=bake_s,
                   wait=wait, timeout=timeout)
    results = report.get("instances", [])
    failed = report["state"] == "rolled_back" or any(r["result"] != "swapped" for r in results)
    if cli.json:
        echo_json(report)
    else:
        click.echo(f"{domain}/{key} -> {provider}: canary on {len(report['cohort'])} instance(s) "
                   f"({', '.join(report['cohort'])}); rollout {report['state']}"
                   + (f": {report['detail']}" if report.get("detail") else ""))
        for r in results:
            mark = "ok " if r["result"] == "swapped" else "!! "
            click.echo(f"{mark}{r['instance']}: {r['result']}"
                       + (f" - {r['detail']}" if r["detail"] else ""))
        if not wait:
            click.echo("promote it with 'oneiric fleet rollout promote' (or abort it)")
    if failed:
        raise CliError(f"rollout of {domain}/{key} to {provider} {report['state']}"
                       + (f": {report['detail']}" if report.get("detail") else "")
                       + "; see 'oneiric fleet rollout status'", EXIT_UNAVAILABLE)
