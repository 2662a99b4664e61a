"""Finding and parsing the settings files of a config directory.

The layout (see ``_settings``): ``oneiric.toml`` with one section per domain
plus the reserved ``[remote]``/``[lifecycle]``/``[host]``/``[automations]``/``[schedules]``,
and one
``<domain>.toml|yaml|yml`` per domain that overrides that domain's section.
Every file is read through ``_safeload`` (bounded size, depth and work); a
parsed file keeps its text so that later errors can name the line of a key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._candidate import validate_name
from ._errors import ConfigError
from ._safeload import load_toml, load_yaml, read_text, strict_yaml_loader

__all__ = [
    "BUILTIN_DOMAINS",
    "FORMATS",
    "RESERVED_SECTIONS",
    "Doc",
    "config_dir",
    "domain_of_section",
    "find_files",
    "parse_file",
]

BUILTIN_DOMAINS = ("adapter", "service", "task", "event", "workflow", "action")
_PLURALS = {f"{d}s": d for d in BUILTIN_DOMAINS}
RESERVED_SECTIONS = ("remote", "lifecycle", "host", "automations", "schedules")
FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


class Doc:
    """One parsed file: its data and enough text to locate keys by line."""

    def __init__(self, path: Path, data: dict[str, Any], text: str) -> None:
        self.path = path
        self.data = data
        self.text = text

    def line_of(self, parts: tuple[object, ...]) -> int | None:
        """Best-effort line number of the key path ``parts``.

        Each key is searched after the previous one, as a TOML table header
        component (``[a.b]``), a TOML/YAML key (``b =``, ``b:``) or a dotted key
        (``a.b =``), so ``port`` is found under its own provider rather than
        at the first ``port`` of the file.  Returns the line of the deepest
        key found.
        """
        line: int | None = None
        pos = 0
        for part in parts:
            if not isinstance(part, str):
                continue
            name = re.escape(part)
            pattern = re.compile(
                rf"(?:^|(?<=[\[.\s{{,]))[\"']?{name}[\"']?[ \t]*(?:[=:.\]])", re.M
            )
            match = pattern.search(self.text, pos)
            if match is None:
                break
            pos = match.start()
            line = self.text.count("\n", 0, pos) + 1
        return line

    def where(self, parts: tuple[object, ...]) -> str:
        line = self.line_of(parts)
        return f"{self.path}:{line}" if line else str(self.path)


def parse_file(path: Path) -> Doc:
    fmt = FORMATS[path.suffix.lower()]
    try:
        text = read_text(path, "settings file", "fix the file or its permissions")
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file disappeared while loading; retry") from None
    if fmt == "toml":
        data: Any = load_toml(text, path)
    else:
        loader = strict_yaml_loader()
        if loader is None:
            raise ConfigError(
                f"{path}: YAML settings need PyYAML; run 'pip install \"oneiric-core[yaml]\"' "
                "or use TOML"
            )
        data = load_yaml(text, path, loader)
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return Doc(path, data, text)


def domain_of_section(name: str, where: str) -> str:
    """The domain a section or file stem names (``adapters`` -> ``adapter``)."""
    domain = _PLURALS.get(name, name)
    try:
        return validate_name(domain, "domain")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_dir(path: str | os.PathLike[str] | None) -> Path | None:
    """``path``, else ``ONEIRIC_CONFIG``, else ``./settings`` if it exists, else None."""
    env = os.environ.get("ONEIRIC_CONFIG")
    if path is None and not env:
        local = Path("settings")
        return local if local.is_dir() else None
    target = Path(path if path is not None else str(env)).expanduser()
    if not target.exists():
        if path is not None:
            raise ConfigError(
                f"config directory {str(target)!r} does not exist; create it or pass another "
                "--config / ONEIRIC_CONFIG"
            )
        raise ConfigError(
            f"ONEIRIC_CONFIG points to {str(target)!r}, which does not exist; "
            "create it or unset ONEIRIC_CONFIG"
        )
    return target


def find_files(directory: Path) -> tuple[Doc | None, list[tuple[Doc, str]]]:
    """The parsed main file (or single settings file) and the per-domain files with their domain."""
    docs: list[tuple[Doc, str]] = []
    if not directory.is_dir():
        if directory.suffix.lower() not in FORMATS:
            raise ConfigError(f"{directory}: expected a .toml, .yaml or .yml settings file")
        return parse_file(directory), docs
    main: Doc | None = None
    per_domain: dict[str, Path] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ConfigError(
            f"{directory}: cannot list the config directory: {exc.strerror or exc}; "
            "check its permissions"
        ) from None
    for file in entries:
        # Not only regular files: a directory or FIFO named like a settings
        # file is an error (read_text says so), never silently skipped.
        if file.suffix.lower() not in FORMATS:
            continue
        if file.stem == "oneiric":
            if file.suffix.lower() != ".toml":
                raise ConfigError(f"{file}: the main settings file must be oneiric.toml")
            main = parse_file(file)
            continue
        if file.stem in RESERVED_SECTIONS:
            raise ConfigError(
                f"{file}: {file.stem!r} is a reserved section, not a domain; "
                f"move it to [{file.stem}] in oneiric.toml"
            )
        domain = domain_of_section(file.stem, str(file))
        if domain in per_domain:
            raise ConfigError(
                f"{file}: domain {domain!r} is also configured by {per_domain[domain]}; "
                "keep one file per domain"
            )
        per_domain[domain] = file
    for domain, file in per_domain.items():
        docs.append((parse_file(file), domain))
    return main, docs
