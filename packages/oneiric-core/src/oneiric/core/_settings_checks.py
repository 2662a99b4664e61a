"""Name checks of selections and of the overlay, and the key paths errors show.

A selection names a key and a provider (optionally ``provider@kind:name``);
both must be valid names, and a tenant must be named.  The overlay is checked
whole before it is used or changed, so one malformed entry is an error that
names it rather than a crash later.  No pydantic here: ``write_overlay`` uses
these checks without loading it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ._candidate import validate_name
from ._errors import ConfigError
from ._precedence import parse_selection
from ._redact import scrub_text
from ._text import one_line, quote_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["OVERLAY_FIX", "check_overlay", "check_selection_map", "dotted", "message"]

OVERLAY_FIX = "fix or delete the file (it is written by 'oneiric swap')"


def _part(name: object) -> str:
    """One part of a key path: ``quote_name``, except that a printable name with spaces
    stays as it is (``cache.Bad Provider``): it is a TOML key as the user wrote it, and
    the path already delimits it."""
    if isinstance(name, str) and name and name.isprintable():
        return name
    return quote_name(name)


def dotted(*parts: object) -> str:
    """A key path for an error message; names with line breaks or controls are quoted."""
    return ".".join(_part(p) for p in parts)


def message(text: str) -> str:
    """A quoted message (a validator's, a parser's) on one line, secrets scrubbed."""
    return scrub_text(one_line(text))


def check_selection_map(
    mapping: Mapping[str, object], locate: Callable[[str], str], path: str
) -> None:
    """Each ``key: provider`` of ``mapping`` valid, else a ConfigError at ``locate(key)``."""
    for key, value in mapping.items():
        try:
            validate_name(key, "key")
            if not isinstance(value, str):
                raise ValueError(
                    f"expected a provider name, got {type(value).__name__}; "
                    "write the provider name as a string"
                )
            provider, _ = parse_selection(value)
            validate_name(provider, "provider")
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{locate(key)}: {path}.{_part(key)}: {message(str(exc))}") from None


def check_overlay(overlay: Mapping[str, Mapping[str, object]], path: Path) -> None:
    """The whole overlay (as ``read_overlay`` returns it) or a one-line ConfigError."""
    try:
        _check_overlay_content(overlay, path)
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text if OVERLAY_FIX in text else f"{text}; {OVERLAY_FIX}") from None


def _check_overlay_content(overlay: Mapping[str, Mapping[str, object]], path: Path) -> None:
    def here(_key: str) -> str:
        return str(path)

    for domain, mapping in overlay["selections"].items():
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: selections.{_part(domain)} must be an object")
        _check_overlay_domain(domain, path)
        check_selection_map(mapping, here, dotted("selections", domain))
    for domain, tenants in overlay["tenants"].items():
        if not isinstance(tenants, dict):
            raise ConfigError(f"{path}: tenants.{_part(domain)} must be an object")
        _check_overlay_domain(domain, path)
        for tenant, mapping in tenants.items():
            if not tenant or not isinstance(mapping, dict):
                raise ConfigError(
                    f"{path}: {dotted('tenants', domain, tenant)} must be an object under a "
                    "non-empty tenant name"
                )
            check_selection_map(mapping, here, dotted("tenants", domain, tenant))


def _check_overlay_domain(domain: str, path: Path) -> None:
    try:
        validate_name(domain, "domain")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
