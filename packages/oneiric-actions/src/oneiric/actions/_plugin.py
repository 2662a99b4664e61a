"""Entry point ``oneiric: actions``: registers every kit of the catalog, and the CLI commands.

Only strings are registered (``_catalog``), so discovery imports no kit module
and no third-party library.  A provider whose extra is missing is still
listed; core's built-in ``requires`` veto keeps it from winning and explain
says what to install; selected anyway, it fails in one line at activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oneiric.core import hookimpl

from ._catalog import DOMAIN, EMBEDDED_PRIORITY, KITS

if TYPE_CHECKING:
    import click

__all__ = ["oneiric_cli_commands", "oneiric_register"]


@hookimpl
def oneiric_register(registry: Any) -> None:
    for key, providers in KITS.items():
        # the first provider of a key is its default (the catalog lists it first): a
        # stdlib one works everywhere; one needing an extra wins once the extra is in
        embedded = next(iter(providers))
        for provider, entry in providers.items():
            metadata = (
                {"requires": [entry.requires],
                 "install": f'pip install "oneiric-actions[{entry.extra}]"'}
                if entry.requires
                else {}
            )
            registry.register(
                domain=DOMAIN,
                key=key,
                provider=provider,
                factory=entry.factory,
                settings_model=entry.settings_model,
                description=entry.description,
                priority=EMBEDDED_PRIORITY if provider == embedded else None,
                metadata=metadata,
            )


@hookimpl
def oneiric_cli_commands() -> list[click.Group]:
    """The ``action`` click group (imports click; only the CLI calls this)."""
    from ._cli import action

    return [action]
