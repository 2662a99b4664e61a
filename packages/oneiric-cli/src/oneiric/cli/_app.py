"""The ``oneiric`` root group: global options, lazy commands, one error path.

Why lazy: ``oneiric --help`` must answer in well under 150 ms, and the
original design of this product took a second because it imported every
command (and every adapter) first.  Built-in commands are listed here as
``"module:attr"`` with their short help; a command's module is imported only
when that command runs.  Commands contributed by installed packages
(``oneiric_cli_commands``) are loaded only for ``--help`` or when a name is not
a built-in.

Why ``main`` is overridden: errors are the user interface of a CLI.  Every
exception leaving a command - built-in or contributed - is printed as one line
on stderr with the exit code from ``_errors.exit_code_for``; a traceback only
with ``--debug``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from ._context import CliContext
from ._errors import EXIT_UNEXPECTED, exit_code_for, one_line
from ._output import scrubbed

__all__ = ["BUILTIN_COMMANDS", "LazyGroup", "cli", "main"]

# name -> ("module:attr", short help).  The help is repeated here so that
# ``oneiric --help`` imports none of the command modules.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("oneiric.cli._cmd_registry:plugins",
                "Installed plugins, what each registered, and load errors."),
    "list": ("oneiric.cli._cmd_registry:list_cmd",
             "Every (domain, key) and its winning provider; --shadowed adds the losers."),
    "explain": ("oneiric.cli._cmd_registry:explain",
                "Why a provider wins a (domain, key), and why every other one lost."),
    "status": ("oneiric.cli._cmd_runtime:status",
               "What running applications bound, what should be bound, and why they differ."),
    "health": ("oneiric.cli._cmd_runtime:health",
               "Last health of running applications' providers; --probe checks here."),
    "activity": ("oneiric.cli._cmd_runtime:activity",
                 "Pause/drain decisions in force and their history."),
    "swap": ("oneiric.cli._cmd_control:swap",
             "Select a provider for running applications (state dir overlay)."),
    "pause": ("oneiric.cli._cmd_control:pause",
              "Refuse new leases on a key in running applications."),
    "drain": ("oneiric.cli._cmd_control:drain",
              "Let in-flight work finish and refuse new leases on a key."),
    "resume": ("oneiric.cli._cmd_control:resume",
               "Accept leases on a paused or draining key again."),
    "demo": ("oneiric.cli._cmd_demo:demo",
             "A guided tour on embedded defaults (temporary state; leaves nothing behind)."),
}

_USAGE_HINT = "see '{path} --help'"


class LazyGroup(click.Group):
    """A group whose commands are ``"module:attr"`` strings imported on first use."""

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def _contributed(self) -> dict[str, click.Command]:
        from ._contrib import contributions

        found = contributions(self._reserved())
        self._report(found.errors)
        return found.commands

    def _reserved(self) -> frozenset[str]:
        return frozenset(self.lazy_commands) | frozenset(self.commands)

    def _summaries(self) -> list[tuple[str, str]]:
        """Contributed (name, short help), from the summary cache when it is valid."""
        from ._contrib import summaries

        rows, errors = summaries(self._reserved())
        self._report(errors)
        return rows

    def _report(self, errors: list[dict[str, str]]) -> None:
        from ._contrib import report

        report(errors)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.lazy_commands) | set(self.commands)
        names.update(name for name, _ in self._summaries())
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        if cmd_name in self.lazy_commands:
            from oneiric.core import import_reference

            command = import_reference(self.lazy_commands[cmd_name][0], what="command")
            assert isinstance(command, click.Command)
            return command
        return self._contributed().get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Built-ins from the table above, then contributed commands (nothing imported)."""
        rows = [(name, short) for name, (_, short) in sorted(self.lazy_commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        extra = self._summaries()
        if extra:
            with formatter.section("Commands from installed packages"):
                formatter.write_dl(extra)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; every failure is one line on stderr and an exit code."""
        argv = list(sys.argv[1:] if args is None else args)
        head = argv[: argv.index("--")] if "--" in argv else argv
        debug = "--debug" in head or bool(os.environ.get("ONEIRIC_DEBUG"))
        try:
            rv = super().main(
                args=argv,
                prog_name=prog_name or "oneiric",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except click.exceptions.Exit as exc:  # pragma: no cover - click returns it
            code = exc.exit_code
        except click.Abort:
            click.echo("Error: aborted", err=True)
            code = 130
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" ({_USAGE_HINT.format(path=exc.ctx.command_path)})"
            click.echo(f"Error: {scrubbed(message)}", err=True)
            code = exc.exit_code
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                click.echo(f"Error: {exc.code}", err=True)
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            code = 130
        except BrokenPipeError:  # `oneiric list | head`
            code = 0
        except BaseException as exc:  # GeneratorExit, a plugin's own BaseException...
            if debug:
                import traceback

                traceback.print_exc()
            code = exit_code_for(exc)
            hint = "" if debug or code != EXIT_UNEXPECTED else " (run with --debug for details)"
            click.echo(f"Error: {scrubbed(one_line(exc))}{hint}", err=True)
        if standalone_mode:
            sys.exit(code)
        return code


def _versions() -> dict[str, str]:
    """Every installed oneiric distribution and its version."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name == "oneiric" or name.startswith("oneiric-"):
            found.setdefault(name, dist.version)
    return dict(sorted(found.items()))


@click.group(
    cls=LazyGroup,
    lazy_commands=BUILTIN_COMMANDS,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--config", "config_dir", metavar="DIR", default=None,
              help="Settings directory (default: ONEIRIC_CONFIG, else ./settings if present).")
@click.option("--state-dir", "state_dir", metavar="DIR", default=None,
              help="State directory shared with running applications (default: "
                   "ONEIRIC_STATE_DIR, else the user's state dir).")
@click.option("--app", "app", metavar="MODULE:CALLABLE", envvar="ONEIRIC_APP", default=None,
              help="Called with the resolver after plugins and settings are loaded, so "
                   "candidates the application registers in code are seen (env ONEIRIC_APP).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every command accepts it).")
@click.option("--debug", is_flag=True, help="Debug logs on stderr and tracebacks on errors.")
@click.option("--version", "version", is_flag=True,
              help="Show the version of every installed oneiric distribution and exit.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_dir: str | None,
    state_dir: str | None,
    app: str | None,
    as_json: bool,
    debug: bool,
    version: bool,
) -> None:
    """Oneiric: explain, inspect and operate pluggable components.

    Exit codes: 0 ok, 1 unexpected, 2 usage, 3 not found, 4 invalid, 5 unavailable,
    6 refused.  Shell completion: eval "$(_ONEIRIC_COMPLETE=bash_source oneiric)".
    """
    ctx.obj = CliContext(
        config_dir=config_dir, state_dir=state_dir, app=app, json=as_json, debug=debug
    )
    from oneiric.core import check_namespace
    from oneiric.core.helpers import check_environment, log_level_from_environment

    from ._logs import route_logs

    check_namespace()
    check_environment()  # ONEIRIC_PROFILE, ONEIRIC_ACTIVITY_STORE, LOG_LEVEL: one line if wrong
    # Errors reach the user as the one-line message; logs below ERROR would
    # repeat them.  --debug (or ONEIRIC_LOG_LEVEL, else LOG_LEVEL) shows more, on stderr.
    level = "DEBUG" if debug else log_level_from_environment("ERROR")
    route_logs(level, json=as_json)
    if version:
        versions = _versions()
        if as_json:
            from ._output import echo_json

            echo_json({"distributions": versions})
        else:
            for name, number in versions.items():
                click.echo(f"{name} {number}")
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``oneiric``) and ``python -m oneiric.cli``."""
    cli.main(args=argv, prog_name="oneiric")
