"""``${env:NAME}``, ``${env:NAME:-default}`` and ``${secret:NAME}`` in settings values.

A value that contains a secret becomes a ``pydantic.SecretStr`` and the secret
is registered for redaction before anything can print it.  Errors name the
file, the line of the key and its dotted path, like every other settings error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ._errors import ConfigError
from ._redact import register_secret, scrub_text
from ._settings_checks import dotted
from ._text import one_line

if TYPE_CHECKING:
    import pluggy

    from ._settings_files import Doc

__all__ = ["Interpolator", "reveal"]

_INTERP = re.compile(r"\$\{(env|secret):([A-Za-z0-9_.\-]+)(?::-([^}]*))?\}")
# Anything that looks like a reference, so that a typo is an error, not a literal.
_REF = re.compile(r"\$\{\s*(?:env|secret)\b[^}]*\}?", re.I)


class Interpolator:
    """Replaces the references in the string values of one load of settings."""

    def __init__(self, hooks: pluggy.PluginManager | None, environ: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.environ = environ

    def secret(self, name: str, where: str) -> str:
        hooks = self.hooks
        if hooks is None:
            from ._hooks import get_plugin_manager

            hooks = get_plugin_manager()
        try:
            value = hooks.hook.oneiric_secret(name=name)
        except Exception as exc:
            raise ConfigError(
                f"{where}: secret source failed for {name!r}: {type(exc).__name__}: "
                f"{scrub_text(one_line(str(exc)))}; "
                "check the secrets plugin and its configuration"
            ) from None
        if value is None:
            from ._secrets import env_name, secrets_dir

            raise ConfigError(
                f"{where}: secret {name!r} not found; set {env_name(name)} or create "
                f"{secrets_dir() / name} (or install a secrets plugin)"
            )
        value = str(value)
        # Recorded before anything can print it: from here on every output that
        # contains it is redacted, whatever type a provider's model gives it.
        register_secret(value)
        return value

    def mapping(
        self, body: dict[str, Any], doc: Doc, parts: tuple[str, ...], keypath: tuple[str, ...]
    ) -> dict[str, Any]:
        """Interpolate a table (a mapping stays a mapping)."""
        return {
            k: self.value(v, doc, (*parts, str(k)), (*keypath, str(k))) for k, v in body.items()
        }

    def value(
        self, value: object, doc: Doc, parts: tuple[str, ...], keypath: tuple[str, ...]
    ) -> object:
        """Interpolate ``value`` found at ``parts`` of ``doc`` (shown as ``keypath``)."""
        if isinstance(value, dict):
            return {
                k: self.value(v, doc, (*parts, str(k)), (*keypath, str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            head, last = keypath[:-1], keypath[-1]
            return [
                self.value(v, doc, parts, (*head, f"{last}[{i}]")) for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or "${" not in value:
            return value
        where = f"{doc.where(parts)}: {dotted(*keypath)}"
        for ref in _REF.finditer(value):
            if not _INTERP.fullmatch(ref.group(0)):
                raise ConfigError(
                    f"{where}: malformed reference {ref.group(0)!r}; write ${{env:NAME}}, "
                    "${env:NAME:-default} or ${secret:NAME}"
                )
        is_secret = False

        def replace(match: re.Match[str]) -> str:
            nonlocal is_secret
            kind, name, default = match.group(1), match.group(2), match.group(3)
            if kind == "env":
                found = self.environ.get(name)
                if found is None:
                    if default is not None:
                        return default
                    raise ConfigError(
                        f"{where}: environment variable {name} is not set; set it or write "
                        f"${{env:{name}:-default}}"
                    )
                return found
            if default is not None:
                raise ConfigError(
                    f"{where}: ${{secret:{name}}} takes no default; "
                    "a missing secret is always an error"
                )
            is_secret = True
            return self.secret(name, where)

        result = _INTERP.sub(replace, value)
        return SecretStr(result) if is_secret else result


def reveal(value: object) -> object:
    """Unwrap SecretStr values so a provider's own model decides how to hold them."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        register_secret(secret)  # also a SecretStr built in code: it is about to become a str
        return secret
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
