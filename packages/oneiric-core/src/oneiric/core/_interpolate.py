"""``${env:NAME}``, ``${env:NAME:-default}`` and ``${secret:NAME}`` in settings values.

Every other ``${...}`` is a ``ConfigError`` naming the syntax to use, never
literal text: the original design's ``${ONEIRIC_SECRET_DB_PASSWORD}`` taken
literally would reach a provider as a password and escape redaction.  ``$${``
writes a literal ``${``.

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
# ``$${`` (a literal ``${``) or anything that starts a reference: a reference
# that is not exactly ``_INTERP`` is an error, not a literal.
_TOKEN = re.compile(r"\$\$\{|\$\{[^}]*\}?")
# With ``keep_others``: a reference that starts like ours (``${env:``, ``${secret:``) is
# still ours to judge; anything else belongs to the section's owner.
_OURS = re.compile(r"\$\{\s*(?:env|secret)\s*:", re.IGNORECASE)
_SYNTAX = "write ${env:NAME}, ${env:NAME:-default} or ${secret:NAME} ($${ for a literal ${)"
_SECRET_ENV = "ONEIRIC_SECRET_"


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
        self,
        body: dict[str, Any],
        doc: Doc,
        parts: tuple[str, ...],
        keypath: tuple[str, ...],
        *,
        keep_others: bool = False,
    ) -> dict[str, Any]:
        """Interpolate a table (a mapping stays a mapping).

        ``keep_others=True`` (a section holding templates, e.g. ``[automations]``):
        ``${env:}``/``${secret:}`` resolve, every other ``${...}`` and ``$${``
        stay verbatim for the section's owner to check and fill.
        """
        return {
            k: self.value(v, doc, (*parts, str(k)), (*keypath, str(k)), keep_others=keep_others)
            for k, v in body.items()
        }

    def value(
        self,
        value: object,
        doc: Doc,
        parts: tuple[str, ...],
        keypath: tuple[str, ...],
        *,
        keep_others: bool = False,
    ) -> object:
        """Interpolate ``value`` found at ``parts`` of ``doc`` (shown as ``keypath``)."""
        if isinstance(value, dict):
            return {
                k: self.value(v, doc, (*parts, str(k)), (*keypath, str(k)),
                              keep_others=keep_others)
                for k, v in value.items()
            }
        if isinstance(value, list):
            head, last = keypath[:-1], keypath[-1]
            return [
                self.value(v, doc, parts, (*head, f"{last}[{i}]"), keep_others=keep_others)
                for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or "${" not in value:
            return value
        where = f"{doc.where(parts)}: {dotted(*keypath)}"
        # Every reference is checked before any is resolved: no secret source is
        # asked for a value that a later typo in the same string would discard.
        for token in _TOKEN.finditer(value):
            text = token.group(0)
            if text != "$${" and not _INTERP.fullmatch(text):
                if keep_others and not _OURS.match(text):
                    continue
                raise ConfigError(f"{where}: {_unsupported(text)}")
        is_secret = False

        def replace(token: re.Match[str]) -> str:
            nonlocal is_secret
            text = token.group(0)
            if text == "$${":
                return text if keep_others else "${"
            match = _INTERP.fullmatch(text)
            if match is None:  # kept for the owner (checked above)
                return text
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

        result = _TOKEN.sub(replace, value)
        return SecretStr(result) if is_secret else result


def _unsupported(text: str) -> str:
    """The error for a reference that is not ``${env:...}``/``${secret:...}``, with a hint."""
    body = text[2:-1] if text.endswith("}") else text[2:]
    kind = body.partition(":")[0].strip().lower()
    if kind in ("env", "secret") or not re.fullmatch(r"[A-Za-z0-9_.\-]+", body):
        return f"malformed reference {text!r}; {_SYNTAX}"
    if body.startswith(_SECRET_ENV) and len(body) > len(_SECRET_ENV):
        hint = f"for the secret in {body} write ${{secret:{body[len(_SECRET_ENV):]}}}"
    else:
        hint = f"for the environment variable write ${{env:{body}}}"
    return (
        f"unsupported reference {text!r} (taken literally it would not be redacted); "
        f"{hint}; {_SYNTAX}"
    )


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
