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

from ._context import current_context
from ._errors import EXIT_INVALID, CliError

__all__ = ["current", "read_json_option", "with_cli"]

F = TypeVar("F", bound=Callable[..., Any])


#: The ``CliContext`` of the running command (a fresh one outside ``oneiric``).
current = current_context


def read_json_option(text: str, option: str = "--payload") -> Any:
    """A JSON option's value: JSON text, ``@file`` or ``@-`` (stdin); exit 4 when unreadable.

    One reader for every command that takes a JSON document on the command
    line (``action invoke``, ``event emit``, ``workflow run``), so ``@file``
    and the error wording are the same everywhere.
    """
    import json
    import sys
    from pathlib import Path

    where = option
    if text.startswith("@"):
        name = text[1:]
        where = f"{option} @{name}"
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise CliError(
                f"{where}: cannot read {name!r}: {reason}; give a readable UTF-8 JSON file",
                EXIT_INVALID,
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "pass a JSON value, @file or @-",
            EXIT_INVALID,
        ) from None


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
