"""Redaction: the one place secrets are removed from output.

Why a registry: a secret stops being a ``SecretStr`` as soon as a provider's
own settings model declares the field ``str``, or the secret is embedded in a
longer string (``redis://:${secret:pw}@host``) or copied into an error message.
Type-based redaction misses all of those, so the settings interpolator records
every secret value it resolves (``register_secret``) and ``redact`` replaces
*any string containing one* - whole, never just the substring, so no fragment
around it leaks either.  Values shorter than ``MIN_SUBSTRING_LEN`` (4)
characters are redacted only where a string equals them exactly: a 1-character
secret would otherwise redact every output (such a secret protects nothing
anyway).  The registry is process-wide (a set under a lock; readers use an
immutable snapshot and never lock); ``reset_registry`` is for tests.

Used by status snapshots, ``Settings.as_dict``, explanations, the CLI's JSON
and tables, every log event and settings error messages.  Only the settings
interpolator registers values, and it lives in the module that imports
pydantic: while pydantic is not imported no secret exists in this process, so
callers outside core may skip redaction then.  Limit: a value a provider
transforms (URL-encodes, splits, hashes) no longer contains the registered
text and is not recognised.

Dependency-free on purpose: imported by logging and explanations, which load
with ``import oneiric.core``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

__all__ = [
    "MIN_SUBSTRING_LEN",
    "REDACTED",
    "redact",
    "redact_text",
    "register_secret",
    "reset_registry",
    "scrub_credentials",
    "scrub_text",
]

REDACTED = "**********"
MIN_SUBSTRING_LEN = 4

_lock = threading.Lock()
_values: set[str] = set()
# Immutable snapshots, replaced under the lock: readers never lock.
_long: tuple[str, ...] = ()
_short: frozenset[str] = frozenset()


def register_secret(value: str) -> None:
    """Remember ``value`` as a secret: every later output containing it is redacted."""
    global _long, _short
    if not isinstance(value, str) or not value:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        # Longest first, so that a check stops at the most specific match early.
        _long = tuple(
            sorted((v for v in _values if len(v) >= MIN_SUBSTRING_LEN), key=len, reverse=True)
        )
        _short = frozenset(v for v in _values if len(v) < MIN_SUBSTRING_LEN)


def reset_registry() -> None:
    """Forget every registered secret (for tests: the registry is process-wide)."""
    global _long, _short
    with _lock:
        _values.clear()
        _long = ()
        _short = frozenset()


def _contains_secret(text: str) -> bool:
    if text in _short:
        return True
    return any(secret in text for secret in _long)


def redact_text(text: str) -> str:
    """``text``, or ``**********`` if it contains a registered secret."""
    if (_long or _short) and _contains_secret(text):
        return REDACTED
    return text


def redact(value: Any) -> Any:
    """Replace secrets by ``**********`` for display (status, explain, JSON, logs, errors).

    A secret is a ``SecretStr`` (anything with ``get_secret_value``) or any
    string containing a registered secret value.  Models (``model_dump``),
    mappings (keys too) and sequences are walked; they come back as plain
    dicts and lists, ready for JSON.  Exceptions become their redacted text.
    """
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "get_secret_value"):
        return REDACTED
    if isinstance(value, Mapping):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(str(value))
    dump = getattr(value, "model_dump", None)
    if dump is not None and not isinstance(value, type):
        return redact(dump())
    if isinstance(value, bytes):
        return value if not (_long or _short) else redact_bytes(value)
    return value


def redact_bytes(value: bytes) -> bytes | str:
    """``value``, or ``**********`` if its UTF-8 text contains a registered secret."""
    text = value.decode("utf-8", "replace")
    return REDACTED if _contains_secret(text) else value


def scrub_text(text: str) -> str:
    """``text`` with every registered secret (of 4+ characters) replaced by ``**********``.

    For error messages: the file, line and key path around the value stay
    useful, only the secret goes.  (Data values are redacted whole: ``redact``.)
    """
    for secret in _long:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


# Credentials nobody registered (a handler's exception quoting a DSN or a
# header).  Every quantifier is bounded, so each search is linear in the text.
@functools.cache
def _credential_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    import re

    return (
        re.compile(r"(?i)\b(bearer|basic)(\s{1,8})[A-Za-z0-9\-._~+/]{1,4096}=*"),
        re.compile(
            r"(?i)((?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|"
            r"private[_-]?key|credentials?|cookie|session[_-]?id)[A-Za-z0-9_-]{0,32}[\"']?"
            r"\s{0,4}[=:]\s{0,4}[\"']?)([^\s\"'&,;]{1,4096})"
        ),
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^\s:/@]{0,256}:)[^\s@/]{1,1024}@"),
    )


def scrub_credentials(text: str) -> str:
    """``text`` with credentials that were never registered replaced by ``**********``.

    For error text from code Oneiric does not control (a handler's or an
    action's exception, stored in a dead letter or a workflow checkpoint):
    ``Bearer``/``Basic`` values, the value after a secret-looking key
    (``password=``, ``api_key:``, ``token=``...) and the password of a URL
    (``redis://user:pw@host``).  Registered secrets are ``scrub_text``'s job;
    call both.  (``re`` is compiled on first use: logging imports this module.)
    """
    auth, key_value, url_password = _credential_patterns()
    text = auth.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = key_value.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return url_password.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
