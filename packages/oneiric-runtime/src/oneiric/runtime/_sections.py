"""Reserved settings sections whose tables become candidates: one parser loop, one registrar.

``[automations.<id>]`` become event handlers, ``[schedules.<id>]`` task
components, ``workflows/<id>.*`` files workflow definitions.  All three are
read the same way - every table validated before any registers, the first
problem one ``ConfigError`` naming the file and ``<section>.<id>.<field>`` -
and registered the same way: idempotently per settings object, a reload
replacing the previous tables' candidates and unregistering removed ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from oneiric.core import Candidate, ConfigError, Resolver, Source, validate_name
from oneiric.core.helpers import one_line

__all__ = ["Registered", "parse_tables", "register_tables", "settings_source"]

_T = TypeVar("_T")
def parse_tables(
    section: Mapping[str, Any],
    *,
    kind: str,
    name: str,
    parse: Callable[[str, Any, str], _T],
    max_length: int = 64,
    origin: str = "",
) -> dict[str, _T]:
    """``parse(id, table, where)`` for every table of ``section`` (``kind`` = ``"schedules"``).

    ``name`` is the singular used in messages (``"schedule"``); ``max_length``
    bounds an id (it becomes part of a candidate key); ``origin`` (the
    settings file) prefixes the messages.  The first problem raises, so an invalid
    table registers nothing.
    """
    prefix = f"{origin}: " if origin else ""
    found: dict[str, _T] = {}
    for table_id in sorted(section):
        where = f"{kind}.{table_id}"
        try:
            validate_name(table_id, name)
            if len(table_id) > max_length:
                raise ConfigError(f"a {name} id has at most {max_length} characters")
            found[table_id] = parse(table_id, section[table_id], where)
        except (ConfigError, ValueError) as exc:
            text = one_line(exc)
            if not text.startswith(where):
                text = f"{where}: {text}"
            raise ConfigError(prefix + text) from None
    return found


@dataclass
class Registered:
    """What one kind registered on one resolver (kept with ``Resolver.extension``)."""

    settings: object = None
    source: Source | None = None
    keys: list[str] = field(default_factory=list)  # the candidate keys registered
    values: dict[str, Any] = field(default_factory=dict)  # the parsed tables, by id


def settings_source(config_dir: Path | None) -> Source:
    """``settings:<config dir>``, the source of every candidate a settings file defines."""
    name = str(config_dir).replace(":", "_").replace("@", "_") if config_dir else "settings"
    return Source("settings", name)


def register_tables(
    resolver: Resolver,
    state: Registered,
    settings: object,
    domain: str,
    candidates: Mapping[str, Candidate],
    values: Mapping[str, Any],
) -> None:
    """Replace what ``state`` registered with ``candidates`` (key -> candidate), in one batch.

    ``values`` (id -> the parsed table) is kept in ``state.values`` for the
    services that use them; keys no longer there are unregistered.
    """
    source = next(iter(candidates.values())).source if candidates else state.source
    with resolver.batch():
        old = state.source
        if old is not None:
            for gone in state.keys:
                if gone not in candidates or (source is not None and old.origin != source.origin):
                    resolver.unregister(domain, gone, "settings", old.origin)
        for candidate in candidates.values():
            resolver.register(candidate)
    state.settings, state.source = settings, source
    state.keys, state.values = list(candidates), dict(values)
