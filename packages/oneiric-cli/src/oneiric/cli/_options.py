"""What every built-in command takes: the shared context and its own ``--json``.

Why: the contract accepts ``--json`` both before and after the command name
(``oneiric --json list`` and ``oneiric list --json``); one decorator gives every
command the option and merges it with the global one, so no command can forget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ._context import CliContext

__all__ = ["current", "with_cli"]

F = TypeVar("F", bound=Callable[..., Any])


def current() -> CliContext:
    """The ``CliContext`` of the running command (a fresh one outside ``oneiric``)."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:
        obj = ctx.ensure_object(CliContext)
    return obj


def with_cli(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json`` to a command and pass the ``CliContext`` as its first argument."""

    def wrapper(*args: Any, json_flag: bool = False, **kwargs: Any) -> Any:
        cli = current()
        if json_flag:
            cli["json"] = True
        try:
            return func(cli, *args, **kwargs)
        finally:
            cli.close()

    functools.update_wrapper(wrapper, func)
    return click.option(
        "--json", "json_flag", is_flag=True, help="Print JSON (shapes in docs/cli.md)."
    )(wrapper)
