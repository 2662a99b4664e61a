"""``oneiric demo``: print each screen as it happens, or one JSON transcript."""

from __future__ import annotations

from typing import Any

import click

from ._context import CliContext
from ._errors import EXIT_UNEXPECTED
from ._options import with_cli
from ._output import echo_json

__all__ = ["demo"]


@click.command("demo")
@with_cli
def demo(cli: CliContext) -> None:
    """A guided tour on embedded defaults (temporary state; leaves nothing behind).

    Plugins found, explain, activate, hot swap under load (0 failed operations),
    a failing swap rolled back, pause/drain/resume, and with oneiric-remote a
    provider delivered by a signed manifest.  Ignores --config/--state-dir/--app:
    it runs in its own temporary directory and never touches yours.
    """
    from ._demo import run_demo

    def show(step: dict[str, Any]) -> None:
        if cli.json:
            return
        mark = "" if step["ok"] else "  [FAILED]"
        click.echo(f"\n== {step['title']}{mark}")
        click.echo(step["text"])

    result = run_demo(show)
    data = result.as_dict()
    if cli.json:
        echo_json(data)
    else:
        left = ", ".join(result.left_behind) or "nothing"
        click.echo(f"\nDone: temporary directory removed, left behind: {left}.")
    if not data["ok"]:
        raise click.exceptions.Exit(EXIT_UNEXPECTED)
