"""Exit codes, and the one mapping from exceptions to them.

Why one mapping: every command (built-in or contributed by another package)
fails the same way - one line on stderr and an exit code a script can act on -
so the rule lives here once instead of in a try/except per command.

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

An exception class (or instance) with an integer ``exit_code`` attribute wins
over the table below, so other packages (oneiric-remote) declare their codes
without the CLI importing them.
"""

from __future__ import annotations

from typing import Final

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

EXIT_OK: Final = 0
EXIT_UNEXPECTED: Final = 1
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_INVALID: Final = 4
EXIT_UNAVAILABLE: Final = 5
EXIT_REFUSED: Final = 6


class CliError(Exception):
    """An error the CLI itself raises, carrying its exit code (e.g. an unknown domain)."""

    def __init__(self, message: str, exit_code: int = EXIT_UNEXPECTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# (class name, exit code), most specific first.  Matched by name along the MRO
# so that this module imports neither oneiric.core nor oneiric.lifecycle: the
# mapping must work for errors of packages the CLI has not imported yet.
_BY_NAME: Final[tuple[tuple[str, int], ...]] = (
    ("SwapVetoed", EXIT_REFUSED),
    ("HealthCheckFailed", EXIT_UNAVAILABLE),
    ("SwapTimeout", EXIT_UNAVAILABLE),
    ("ComponentPaused", EXIT_UNAVAILABLE),
    ("ComponentDraining", EXIT_UNAVAILABLE),
    ("NotActiveError", EXIT_UNAVAILABLE),
    ("ActivityStoreError", EXIT_UNAVAILABLE),
    ("NotRegisteredError", EXIT_NOT_FOUND),
    ("ConfigError", EXIT_INVALID),
    ("InvalidCandidateError", EXIT_INVALID),
    ("FactoryError", EXIT_INVALID),
    ("PluginError", EXIT_INVALID),
    ("FileNotFoundError", EXIT_NOT_FOUND),
    # a path of the wrong kind (a file where a directory belongs, or the reverse)
    ("NotADirectoryError", EXIT_INVALID),
    ("IsADirectoryError", EXIT_INVALID),
    ("ModuleNotFoundError", EXIT_NOT_FOUND),
    ("ValueError", EXIT_INVALID),
)

# Causes that make a failed activation "invalid" (4) rather than "unavailable" (5).
_INVALID_CAUSES: Final = frozenset(
    {"ConfigError", "FactoryError", "ValidationError", "ImportError", "ModuleNotFoundError"}
)


def exit_code_for(exc: BaseException) -> int:
    """The contract's exit code for ``exc`` (see the module docstring)."""
    declared = getattr(exc, "exit_code", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    names = [cls.__name__ for cls in type(exc).__mro__]
    if "SelectionUnavailableError" in names:
        # the selected provider is missing (3), or a policy vetoed it (6)
        reason = str(getattr(exc, "reason", ""))
        return EXIT_REFUSED if reason.startswith("vetoed") else EXIT_NOT_FOUND
    if "ActivationError" in names:
        cause = str(getattr(exc, "error_type", ""))
        return EXIT_INVALID if cause in _INVALID_CAUSES else EXIT_UNAVAILABLE
    for name, code in _BY_NAME:
        if name in names:
            return code
    if "SwapError" in names:  # any other failure before bind: the old provider keeps serving
        return EXIT_UNAVAILABLE
    return EXIT_UNEXPECTED


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a CLI prints this and nothing else)."""
    if isinstance(exc, OSError) and exc.filename:
        text = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    else:
        text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    # Errors we did not classify keep their type: "KeyError: 'x'" says more than "'x'".
    if exit_code_for(exc) == EXIT_UNEXPECTED and not isinstance(exc, CliError):
        return f"{type(exc).__name__}: {text}"
    return text
