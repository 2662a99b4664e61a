"""Commands other packages add under ``oneiric`` through the ``oneiric_cli_commands`` hook.

Why a summary cache: listing contributed commands in ``oneiric --help`` means
importing every plugin module, and some import a lot (oneiric-remote's package
pulls in asyncio and ssl).  The names, short help and errors are cached per
environment in ``~/.cache/oneiric/`` (``$XDG_CACHE_HOME``; ``ONEIRIC_CLI_CACHE``
names another file, ``0`` disables it), keyed by the installed plugin
distributions and their versions, so ``--help`` imports no plugin unless
something was installed or upgraded.  Running a contributed command always
loads the real thing.

Why each implementation is called on its own (``oneiric.core.call_hook``, not
the plain hook caller): one broken contributor must cost its own commands, not
the whole CLI.  A
failure - the hook raising, returning something that is not a click command,
or a name already taken - becomes one line naming the plugin; the other
commands work.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from oneiric.core.helpers import describe_exception

__all__ = ["Contributions", "contributions", "report", "reset", "summaries"]


@dataclass
class Contributions:
    """The contributed commands by name, who contributed each, and what failed."""

    commands: dict[str, click.Command] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "commands": [
                {"name": name, "plugin": self.owners[name]} for name in sorted(self.commands)
            ],
            "errors": list(self.errors),
        }


_cache: Contributions | None = None
_reported = False


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, click.Command):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for entry in value for item in _flatten(entry)]
    return [value]


def contributions(reserved: frozenset[str]) -> Contributions:
    """Load plugins (once per process) and collect their commands; ``reserved`` are built-ins."""
    global _cache
    if _cache is not None:
        return _cache
    from oneiric.core import (
        Resolver,
        call_hook,
        check_namespace,
        get_plugin_manager,
        load_plugins,
    )

    check_namespace()
    load_plugins(Resolver())  # registers the plugin modules' hooks with the plugin manager
    result = Contributions()
    for outcome in call_hook(get_plugin_manager(), "oneiric_cli_commands"):
        plugin = outcome.plugin
        if outcome.error is not None:  # SystemExit/GeneratorExit too: a plugin must not end the CLI
            result.errors.append(
                {
                    "plugin": plugin,
                    "error": "oneiric_cli_commands raised "
                    + describe_exception(outcome.error, join=" "),
                }
            )
            continue
        for command in _flatten(outcome.value):
            if not isinstance(command, click.Command) or not command.name:
                result.errors.append(
                    {"plugin": plugin, "error": f"oneiric_cli_commands returned {command!r}, "
                     "not a named click command"}
                )
                continue
            name = command.name
            if name in reserved:
                result.errors.append(
                    {"plugin": plugin, "error": f"command {name!r} is a built-in; ignored"}
                )
                continue
            if name in result.commands:
                result.errors.append(
                    {"plugin": plugin, "error": f"command {name!r} is already contributed by "
                     f"{result.owners[name]}; ignored"}
                )
                continue
            result.commands[name] = command
            result.owners[name] = plugin
    _cache = result
    _store(result)
    return result


# ------------------------------------------------------------ summary cache


def _cache_file() -> Path | None:
    override = os.environ.get("ONEIRIC_CLI_CACHE")
    if override is not None:
        return None if override in ("", "0") else Path(override)
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return root / "oneiric" / f"cli-commands-{env}.json"


def _fingerprint() -> list[Any]:
    from oneiric.core import discover_entry_points

    from .__about__ import __version__

    return [__version__, sys.version, sys.prefix,
            [[e.distribution, e.version, e.name, e.value] for e in discover_entry_points()]]


def _store(result: Contributions) -> None:
    """Write the summary cache (best effort: a read-only home must not break the CLI)."""
    path = _cache_file()
    if path is None:
        return
    data = {
        "fingerprint": _fingerprint(),
        "commands": [
            {"name": name, "help": command.get_short_help_str(200),
             "plugin": result.owners[name]}
            for name, command in sorted(result.commands.items())
        ],
        "errors": result.errors,
    }
    from oneiric.core.helpers import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not durable: a lost cache is rebuilt on the next run; atomic: never half a file
        atomic_write(path, json.dumps(data).encode("utf-8"), durable=False)
    except OSError:
        pass


def summaries(reserved: frozenset[str]) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """``([(name, short help)], errors)`` of contributed commands, from the cache if valid."""
    if _cache is None:
        path = _cache_file()
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                valid = data.get("fingerprint") == json.loads(json.dumps(_fingerprint()))
            except (OSError, ValueError, AttributeError):
                valid = False
            if valid:
                rows = [(c["name"], c["help"]) for c in data["commands"]
                        if c["name"] not in reserved]
                return rows, list(data["errors"])
    found = contributions(reserved)
    return (
        [(name, found.commands[name].get_short_help_str(200)) for name in sorted(found.commands)],
        list(found.errors),
    )


def report(errors: list[dict[str, str]]) -> None:
    """One line on stderr per broken contributor, once per process."""
    global _reported
    if _reported:
        return
    _reported = True
    for error in errors:
        click.echo(
            f"warning: commands of plugin {error['plugin']} unavailable: {error['error']}",
            err=True,
        )


def reset() -> None:
    """Forget the collected commands (tests install and remove contributors)."""
    global _cache, _reported
    _cache = None
    _reported = False
