"""oneiric-cli: the ``oneiric`` command line.

``main`` is the console-script entry point; ``cli`` is the click group, for
embedding and for ``click.testing.CliRunner``.  Command implementations live
in private modules imported only when their command runs (see ``_app``), so
``oneiric --help`` stays fast.  See docs/cli.md.
"""

from __future__ import annotations

from .__about__ import __version__
from ._app import cli, main
from ._context import CliContext, current_context
from ._errors import (
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    exit_code_for,
)
from ._options import read_json_option

__all__ = [
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "CliContext",
    "__version__",
    "cli",
    "current_context",
    "exit_code_for",
    "main",
    "read_json_option",
]
