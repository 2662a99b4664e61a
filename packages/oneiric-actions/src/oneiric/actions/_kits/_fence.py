"""The fence both network kits share: header checks, TLS settings and the host allowlist.

``http.fetch`` and ``workflow.notify`` refuse the same things the same way: a
header that could split a request or override what the transport owns, TLS
verification turned off, a host nobody allowed.  Standard library only, so the
settings models can validate with it before httpx is imported.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path

from oneiric.core import ConfigError

__all__ = ["HOST_ENTRY", "HostAllowlist", "check_header", "check_verify", "ssl_context"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
#: Headers the transport or this action owns; a payload or setting cannot set them.
_RESERVED = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
    "idempotency-key",
})
HOST_ENTRY = re.compile(r"(\*\.)?[^\s/@:*?#\[\]]+|\[?[0-9A-Fa-f:.]+\]?")


def check_header(name: object, value: object, where: str) -> str | None:
    """Why header ``name: value`` is not sendable (``None`` when it is)."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"{where}: header name {str(name)[:40]!r} is not a valid HTTP token"
    if name.lower() in _RESERVED:
        return (
            f"{where}: header {name!r} is set by the transport or the action "
            "(Idempotency-Key comes from the invocation's idempotency_key); remove it"
        )
    if not isinstance(value, str):
        return f"{where}: header {name!r} must be a string, got {type(value).__name__}"
    if _BAD_VALUE.search(value):
        return f"{where}: header {name!r} contains CR, LF or NUL; send a single-line value"
    return None


def check_verify(value: bool | str) -> bool | str:
    """``verify`` is ``true`` or an existing CA bundle file; never ``false``."""
    if value is False:
        raise ValueError(
            "TLS verification cannot be turned off; give true or the path of a CA bundle"
        )
    if isinstance(value, str) and not Path(value).is_file():
        raise ValueError(f"CA bundle {value!r} is not a file; give the path of a PEM bundle")
    return value


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The verifying TLS context for ``verify`` (system CAs, or only the given bundle)."""
    try:
        if isinstance(verify, str):
            return ssl.create_default_context(cafile=verify)
        return ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA bundle {verify!r}: {exc}; fix verify") from None


def _host_text(raw: str) -> str:
    """A host as compared: lower case, IDNA (ASCII), no trailing dot, no IPv6 brackets."""
    host = raw.strip().strip("[]").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ConfigError(f"allowed host {raw!r} is not a valid host name; fix allowed_hosts")


class HostAllowlist:
    """Exact hosts and ``*.domain`` suffixes; ``"*"`` allows all, empty allows none."""

    __slots__ = ("_any", "_exact", "_suffixes", "entries")

    def __init__(self, entries: list[str]) -> None:
        self.entries = tuple(entries)
        self._any = "*" in entries
        self._exact = frozenset(_host_text(e) for e in entries if not e.startswith("*"))
        self._suffixes = tuple(
            "." + _host_text(e[2:]) for e in entries if e.startswith("*.")
        )

    def allows(self, host: str) -> bool:
        if self._any:
            return True
        host = host.rstrip(".").lower()
        if host in self._exact:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return any(host.endswith(s) for s in self._suffixes)
        return False  # an address matches exact entries only, never "*.0.0.1"

    def describe(self) -> str:
        return ", ".join(self.entries) if self.entries else "none (allowed_hosts is empty)"
