"""Entry point ``oneiric = remote``: hook implementations the CLI and discovery call.

Only ``oneiric_cli_commands`` lives here.  It imports the click commands inside
the hook, so click stays a dependency of the CLI, not of oneiric-remote, and
``load_plugins`` imports nothing heavy.  The candidate veto is registered by
``RemoteSync`` itself (``oneiric.remote._veto``), so it works without discovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["oneiric_cli_commands"]


@hookimpl
def oneiric_cli_commands() -> list[click.Group]:
    """The ``manifest`` and ``remote`` click groups (imports click; only the CLI calls this)."""
    from ._cli import manifest, remote

    return [manifest, remote]
