"""Exit codes and the CLI's error line, as thin names over oneiric-core's one path.

Why no table here: every error carries a ``category`` where it is defined
(``OneiricError.category``; built-in errors are mapped by core), and
``oneiric.core.exit_code_for`` turns it into the contract's code - the same
function remote's CLI uses, so a class name list cannot drift from the
classes.  This module keeps the names scripts and contributed commands already
import (``EXIT_*``, ``CliError``, ``exit_code_for``, ``one_line``).

=====  ===========  ==========================================================
code   name         when
=====  ===========  ==========================================================
0      ok
1      unexpected   a bug or an error nobody classified (``--debug`` shows the traceback)
2      usage        bad options or arguments, malformed ``--app``
3      not found    unknown domain, key, provider, file or state directory
4      invalid      invalid config, manifest, signature, candidate or validation
5      unavailable  paused, draining, health check failed, activation failed, server down
6      refused      vetoed by a plugin or a policy
=====  ===========  ==========================================================

A non-Oneiric exception with an integer ``exit_code`` attribute keeps it
(click's exceptions, ``CliError``, a contributed command's own error).
"""

from __future__ import annotations

from typing import Final

from oneiric.core.helpers import EXIT_CODES, describe_exception, exit_code_for
from oneiric.core.helpers import one_line as _core_one_line

__all__ = [
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "CliError",
    "exit_code_for",
    "one_line",
]

EXIT_OK: Final = EXIT_CODES["ok"]
EXIT_UNEXPECTED: Final = EXIT_CODES["unexpected"]
EXIT_USAGE: Final = EXIT_CODES["usage"]
EXIT_NOT_FOUND: Final = EXIT_CODES["not_found"]
EXIT_INVALID: Final = EXIT_CODES["invalid"]
EXIT_UNAVAILABLE: Final = EXIT_CODES["unavailable"]
EXIT_REFUSED: Final = EXIT_CODES["refused"]


class CliError(Exception):
    """An error the CLI itself raises, carrying its exit code (e.g. an unknown domain).

    Not a ``OneiricError``: its code is given where it is raised (usage errors
    have no category), and core honours a foreign integer ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_UNEXPECTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    """``oneiric.core.helpers.one_line``, naming the type of errors nobody classified.

    A classified error's message already says what went wrong; an unexpected
    one is shown as ``Type: message`` (``describe_exception``).
    """
    if exit_code_for(exc) == EXIT_UNEXPECTED and not isinstance(exc, CliError):
        return describe_exception(exc, join=" ")
    return _core_one_line(exc)
