"""Rendering: aligned tables for people, stable JSON for machines, secrets never.

Why here: every command prints through these few functions, so "secrets are
redacted everywhere" and "results on stdout, everything else on stderr" are
true by construction rather than by each command remembering them.

Tables are plain aligned text; with the optional ``rich`` extra installed and
stdout a terminal they are drawn by rich instead (same columns, same order),
so piped output never changes with what is installed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

__all__ = ["dumps", "echo_json", "iso", "kv", "redacted", "table", "warn"]


def redacted(data: Any) -> Any:
    """``data`` with every secret replaced by ``**********`` (``oneiric.core.redact``).

    A secret is a pydantic ``SecretStr`` (or anything with ``get_secret_value``)
    or any string containing a secret value the settings resolved in this
    process; if pydantic was never imported no such value can exist, so the
    settings module (and pydantic) is not imported just to find none.
    """
    if "pydantic" not in sys.modules:
        return data
    from oneiric.core import redact

    return redact(data)


def scrubbed(text: str) -> str:
    """``text`` with each secret value inside it replaced, the rest kept (for error lines).

    An error line must stay useful ("connection refused by redis://:***@host"),
    so only the secret itself goes, unlike :func:`redacted`, which blanks the
    whole value that holds one.
    """
    if "pydantic" not in sys.modules:
        return text
    from oneiric.core.helpers import scrub_text

    return scrub_text(text)


def dumps(data: object) -> str:
    """The JSON text of ``data``: redacted, sorted keys, two-space indent."""
    return json.dumps(
        redacted(data), indent=2, sort_keys=True, default=lambda v: redacted(str(v))
    )


def echo_json(data: object) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(dumps(data))


def warn(message: str) -> None:
    """One line on stderr (never stdout: stdout is for results)."""
    click.echo(f"warning: {redacted(message)}", err=True)


def iso(at: float | str | None) -> str | None:
    """Epoch seconds in the one timestamp format (``oneiric.core.helpers.format_timestamp``).

    Text is taken as already formatted (a snapshot's times), so tables and
    JSON show a moment the same way whichever store it came from.
    """
    if at is None or isinstance(at, str):
        return at
    from oneiric.core.helpers import format_timestamp

    return format_timestamp(at)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def _use_rich() -> bool:
    if not sys.stdout.isatty():
        return False
    try:
        import rich  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print ``rows`` under ``headers`` as an aligned table (nothing but the title if empty)."""
    cells = [[_cell(redacted(v)) for v in row] for row in rows]
    if _use_rich():
        from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
        from rich.table import Table  # type: ignore[import-not-found, unused-ignore]

        grid = Table(*headers, title=title, title_justify="left")
        for row in cells:
            grid.add_row(*row)
        Console().print(grid)
        return
    if title:
        click.echo(title)
    if not cells:
        return
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    click.echo("\n".join(line.rstrip() for line in lines))


def kv(pairs: Mapping[str, Any]) -> None:
    """Print ``name: value`` lines, names aligned."""
    width = max((len(k) for k in pairs), default=0)
    for name, value in pairs.items():
        click.echo(f"{name.ljust(width)}  {_cell(redacted(value))}")
