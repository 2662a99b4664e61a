"""Where the orchestrator listens and the token it demands: checked before anything loads.

Why first: an endpoint that serves ``/status`` (provider settings, redacted,
and every key's state) on a public address without a credential is a leak the
moment it binds, and finding out after plugins, settings and remote manifests
loaded wastes a cold start.  So ``oneiric orchestrate`` parses the address and
reads the token before it builds anything; a refusal is one line and exit 6.

* ``--http HOST:PORT``: an IP literal (``[::1]:PORT`` for IPv6) or ``localhost``;
  a hostname that may resolve anywhere is refused (usage error), because a
  loopback check on a name is a guess.
* A non-loopback address needs a token: ``--token-file F`` (wins) or
  ``ONEIRIC_TOKEN``.  A Unix socket (mode 0600) is guarded by file permissions
  and needs none; a token, when given, is enforced everywhere.
* A token file readable or writable by group or others is refused (exit 6):
  the endpoint's credential must be as private as a key file.  A token is
  16 to 4096 printable ASCII characters without spaces (what a header carries).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from oneiric.core import ConfigError, OneiricError

__all__ = [
    "DEFAULT_HTTP",
    "Bind",
    "OrchestrateRefused",
    "TokenFileNotFound",
    "check_bind",
    "load_token",
    "parse_http",
]

DEFAULT_HTTP = "127.0.0.1:9180"
MIN_TOKEN = 16
MAX_TOKEN = 4096
_HINT = "create one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class OrchestrateRefused(OneiricError):
    """A listening policy refused (public address without a token, a shared token file)."""

    category = "refused"


class TokenFileNotFound(OneiricError):
    """``--token-file`` names no file (exit 3)."""

    category = "not_found"


@dataclass(frozen=True, slots=True)
class Bind:
    """A TCP ``host``/``port`` or a Unix socket ``path``; ``loopback`` when only local."""

    host: str | None = None
    port: int = 0
    path: Path | None = None

    @property
    def loopback(self) -> bool:
        if self.path is not None:
            return True
        assert self.host is not None
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_http(text: str) -> Bind:
    """``HOST:PORT`` → ``Bind``; ``ConfigError`` (usage) naming what is wrong."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
    else:
        host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--http {text!r} is not HOST:PORT; e.g. 127.0.0.1:9180, "
                          "0.0.0.0:9180 or [::1]:9180")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"--http host {host!r} is not an IP address; give an address "
                          "(127.0.0.1, 0.0.0.0, ::) - a name's loopback status is a guess"
                          ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ConfigError(f"--http host {host!r} is IPv4-mapped; write the IPv4 address")
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--http port {port_text!r} is not a port number 0-65535")
    return Bind(host=str(address), port=int(port_text))


def load_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``token_file`` (wins) or ``ONEIRIC_TOKEN``; None when neither is set."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        text, origin = _read_private(Path(token_file)), f"token file {token_file!r}"
    else:
        value = env.get("ONEIRIC_TOKEN")
        if value is None or value == "":
            return None
        text, origin = value, "ONEIRIC_TOKEN"
    token = text.strip()
    if not token:
        raise ConfigError(f"{origin} is empty; {_HINT}")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(f"{origin} holds characters a header cannot carry; use printable "
                          f"ASCII without spaces ({_HINT})")
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ConfigError(f"{origin} is {len(token)} characters; use {MIN_TOKEN} to "
                          f"{MAX_TOKEN} ({_HINT})")
    return token


def _read_private(path: Path) -> str:
    """Read a token file that only its owner can read; refuse anything else in one line."""
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise TokenFileNotFound(f"token file {str(path)!r} does not exist; create it "
                                 f"(mode 0600) or pass another --token-file") from None
    except OSError as exc:
        raise ConfigError(f"token file {str(path)!r} cannot be opened "
                          f"({exc.strerror or type(exc).__name__}); it must be a regular "
                          "file, not a symlink") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"token file {str(path)!r} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise OrchestrateRefused(
                f"token file {str(path)!r} is accessible by group or others (mode "
                f"{mode:04o}); run: chmod 600 {path}")
        data = os.read(fd, MAX_TOKEN + 2)
    finally:
        os.close(fd)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"token file {str(path)!r} is not ASCII text; {_HINT}") from None


def check_bind(bind: Bind, token: str | None) -> None:
    """Refuse a non-loopback address without a token (exit 6)."""
    if token is None and not bind.loopback:
        raise OrchestrateRefused(
            f"refusing to listen on {bind} without a token: pass --token-file F (mode 0600) "
            "or set ONEIRIC_TOKEN, or bind 127.0.0.1")
