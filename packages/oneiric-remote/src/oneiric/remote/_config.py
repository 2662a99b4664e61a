"""Configuration values: limits, timeouts, the retry policy and ``RemoteSource``.

Small frozen objects instead of loose numbers, so every limit has one name, one
default and one place to read it (the httpx habit: ``Timeout``, ``Limits``).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from oneiric.core import ConfigError, state_dir, validate_name
from oneiric.core.helpers import REMOTE_CACHE_DIR

from ._metadata import check_patterns
from ._verify import TrustedKey, trust_fingerprint

__all__ = ["Limits", "RemoteSource", "SyncRetry", "Timeouts"]

_PKG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SCOPE = re.compile(r"\*|[a-z0-9][a-z0-9_.-]{0,63}\.(\*|[a-z0-9][a-z0-9_.-]{0,63})")


@dataclass(frozen=True, slots=True)
class Limits:
    """Byte and count limits; exceeding one aborts the download or extraction."""

    manifest_bytes: int = 1024 * 1024
    archive_entries: int = 10_000
    archive_file_bytes: int = 256 * 1024 * 1024
    archive_total_bytes: int = 1024 * 1024 * 1024
    compression_ratio: int = 100
    max_redirects: int = 3
    future_skew_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds.  ``*_deadline`` bound a whole download, so a slow drip cannot stall a sync."""

    connect: float = 10.0
    read: float = 30.0
    manifest_deadline: float = 60.0
    artifact_deadline: float = 600.0
    lock: float = 300.0


@dataclass(frozen=True, slots=True)
class SyncRetry:
    """Retries of transient failures and the per-source circuit breaker.

    Delay before retry *n* (1-based) is ``min(max_delay, base_delay * 2**(n-1))``
    scaled by a random factor in ``[1 - jitter, 1]``; a server's Retry-After (capped
    at ``max_retry_after``) replaces it when larger.  The breaker opens after
    ``breaker_threshold`` failed sync cycles in a row and lets one try through
    after ``breaker_cooldown`` seconds.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    breaker_threshold: int = 3
    breaker_cooldown: float = 300.0


def _is_local(url: str) -> bool:
    return url.startswith("file:") or "://" not in url


def local_path(url: str) -> Path:
    """The filesystem path of a ``file:`` URL or a plain path."""
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URL {url!r} names a host; use file:///absolute/path")
        from urllib.request import url2pathname

        return Path(url2pathname(parts.path))
    return Path(url)


def _check_top_url(url: object, what: str) -> str:
    if not isinstance(url, str | os.PathLike) or not str(url):
        raise ConfigError(f"{what} must be an https URL or a local path, got {url!r}")
    text = os.fspath(url)
    assert isinstance(text, str)
    scheme = urlsplit(text).scheme.lower() if "://" in text or text.startswith("file:") else ""
    if scheme == "http":
        raise ConfigError(f"{what} {text!r} uses http; use https (TLS is always verified)")
    return text


@dataclass(frozen=True)
class RemoteSource:
    """Where a manifest comes from and what it is trusted to deliver.

    ``url`` and ``mirrors`` are transport (https, a plugin scheme, or a local path
    named here in local config); the trust (``repository``, ``trusted_keys``,
    ``threshold``) decides what is authentic; the scope (``allowed_keys``,
    ``max_priority``, ``factory_allowlist``) limits what an authentic manifest may
    do, so one compromised key cannot take over every key.
    """

    url: str
    _: KW_ONLY
    repository: str
    trusted_keys: Sequence[TrustedKey]
    threshold: int = 1
    mirrors: Sequence[str] = ()
    cache_dir: str | os.PathLike[str] | None = None
    factory_allowlist: Sequence[str] = ()
    allowed_keys: Sequence[str] | None = None
    allowed_actions: Sequence[str] = ()
    max_priority: int | None = None
    min_version: int | None = None
    max_lifetime_days: float = 30
    verify: bool | str | os.PathLike[str] | ssl.SSLContext = True
    allow_local_artifacts: bool = False
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: SyncRetry = field(default_factory=SyncRetry)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "url", _check_top_url(self.url, "source url"))
        set_(self, "mirrors", tuple(_check_top_url(m, "mirror") for m in _seq(self.mirrors)))
        try:
            validate_name(self.repository, "repository")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        keys = tuple(self.trusted_keys)
        for key in keys:
            if not isinstance(key, TrustedKey):
                raise ConfigError(f"trusted_keys must hold TrustedKey values, got {key!r}")
        set_(self, "trusted_keys", keys)
        distinct = len({k.keyid for k in keys})
        if not keys:
            raise ConfigError(
                f"source {self.repository!r} has no trusted_keys; pin at least one public key"
            )
        if type(self.threshold) is not int or not 1 <= self.threshold <= distinct:
            raise ConfigError(
                f"source {self.repository!r}: threshold {self.threshold!r} must be between 1 "
                f"and the number of distinct trusted keys ({distinct})"
            )
        allow = tuple(_seq(self.factory_allowlist))
        for name in allow:
            if not isinstance(name, str) or not _PKG.fullmatch(name):
                raise ConfigError(
                    f"factory_allowlist entry {name!r} is not a dotted package name like 'acme'"
                )
        set_(self, "factory_allowlist", allow)
        if self.allowed_keys is not None:
            scopes = tuple(_seq(self.allowed_keys))
            for pattern in scopes:
                if not isinstance(pattern, str) or not _SCOPE.fullmatch(pattern):
                    raise ConfigError(
                        f"allowed_keys pattern {pattern!r} must look like 'adapter.cache', "
                        "'adapter.*' or '*'"
                    )
            set_(self, "allowed_keys", scopes)
        set_(self, "allowed_actions", check_patterns(_seq(self.allowed_actions)))
        for name in ("max_priority", "min_version"):
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        if not (isinstance(self.max_lifetime_days, int | float) and self.max_lifetime_days > 0):
            raise ConfigError(f"max_lifetime_days must be positive, got {self.max_lifetime_days!r}")
        if self.verify is False or self.verify is None:
            raise ConfigError(
                "verify=False is not supported: TLS is always verified; pass a CA bundle path "
                "or an ssl.SSLContext for a private CA"
            )

    # ------------------------------------------------------------- derived

    @property
    def fingerprint(self) -> str:
        """The trust fingerprint that names this source's state file."""
        return trust_fingerprint(self.repository, self.trusted_keys, self.threshold)

    @property
    def urls(self) -> tuple[str, ...]:
        """The top-level URL, then the mirrors, in the order they are tried."""
        return (self.url, *self.mirrors)

    @property
    def is_local(self) -> bool:
        """True when the top-level source is a local path or ``file:`` URL."""
        return _is_local(self.url)

    def cache_path(self) -> Path:
        """The cache directory's path (``cache_dir`` or ``state_dir()/remote``); nothing created."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        return state_dir() / REMOTE_CACHE_DIR

    def resolved_cache_dir(self) -> Path:
        """The cache directory (created 0700): ``cache_path()``."""
        base = self.cache_path()
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(base, 0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create remote cache dir {str(base)!r}: {exc.strerror or exc}; "
                "set cache_dir or ONEIRIC_STATE_DIR to a writable directory"
            ) from None
        return base

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx gets as ``verify`` (a CA path becomes a context; TLS always verified)."""
        if isinstance(self.verify, ssl.SSLContext):
            return self.verify
        if isinstance(self.verify, bool):  # False is refused when the source is made
            return True
        return ssl.create_default_context(cafile=os.fspath(self.verify))

    def in_scope(self, domain: str, key: str) -> bool:
        """Whether ``allowed_keys`` lets this source deliver ``(domain, key)``."""
        if self.allowed_keys is None:
            return True
        full = f"{domain}.{key}"
        return any(p == "*" or p == full or p == f"{domain}.*" for p in self.allowed_keys)

    def factory_allowed(self, module: str) -> bool:
        """``factory_allowlist`` at dotted boundaries: ``acme`` allows ``acme.x``, not ``acmex``."""
        return any(module == p or module.startswith(p + ".") for p in self.factory_allowlist)


def _seq(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
