"""Sources from the settings' ``[remote]`` section, validated (unknown keys are errors).

::

    [remote]
    cache_dir = "remote-cache"            # optional; default <state dir>/remote
    bundle = "remote-bundle"              # optional; load from this bundle instead (read-only)

    [remote.sources.acme]
    url = "https://updates.example.com/acme/manifest.json"   # or a local path
    repository = "acme-prod"
    threshold = 2
    trusted_keys = [
      { keyid = "9f2c...", public_key = "base64..." },
      { keyid = "41aa...", public_key = "base64..." },
    ]
    mirrors = ["https://mirror.example.net/acme/manifest.json"]
    allowed_keys = ["adapter.*"]          # optional scope
    allowed_actions = ["http.fetch", "event:orders.*"]   # what delivered metadata may reference
    max_priority = 50                     # optional cap
    min_version = 12                      # optional floor that survives state loss
    factory_allowlist = ["acme"]          # packages factories may use without an artifact
    max_lifetime_days = 30
    ca_bundle = "certs/private-ca.pem"    # optional; TLS is always verified

Relative paths are relative to the config directory.  ``ONEIRIC_REMOTE_BUNDLE``
(non-empty; relative to the working directory) overrides ``bundle``: the
deployment decides where its package put the bundle, the settings what to trust.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneiric.core import ConfigError
from oneiric.core.helpers import REMOTE_CACHE_DIR, one_line, quote_name

from ._config import RemoteSource
from ._verify import TrustedKey

__all__ = ["BUNDLE_ENV", "RemoteSettings", "configured_bundle", "sources_from_settings"]

#: The environment variable naming a bundle directory (wins over ``[remote] bundle``).
BUNDLE_ENV = "ONEIRIC_REMOTE_BUNDLE"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeySettings(_Strict):
    keyid: str
    public_key: str


class SourceSettings(_Strict):
    url: str
    repository: str
    trusted_keys: list[KeySettings] = Field(min_length=1)
    threshold: int = 1
    mirrors: list[str] = []
    allowed_keys: list[str] | None = None
    allowed_actions: list[str] = []
    max_priority: int | None = None
    min_version: int | None = None
    factory_allowlist: list[str] = []
    max_lifetime_days: float = 30
    ca_bundle: str | None = None
    allow_local_artifacts: bool = False


class RemoteSettings(_Strict):
    cache_dir: str | None = None
    bundle: str | None = None
    sources: dict[str, SourceSettings] = {}


def _path(value: str, base: Path | None) -> str:
    if "://" in value or value.startswith("file:"):
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(path)


def _base(config_dir: Path | None) -> Path | None:
    return config_dir if config_dir is None or config_dir.is_dir() else config_dir.parent


def _validated(remote: Mapping[str, Any]) -> RemoteSettings:
    try:
        return RemoteSettings.model_validate(dict(remote))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(quote_name(p) for p in ("remote", *first.get("loc", ())))
        kind = first.get("type")
        msg = {"extra_forbidden": "unknown setting", "missing": "required setting is missing"}.get(
            str(kind), one_line(str(first.get("msg")))
        )
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{loc}: {msg}{more}; fix the [remote] section") from None


def configured_bundle(
    remote: Mapping[str, Any],
    config_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The bundle directory to load from, or None (then the last-good cache is used).

    ``ONEIRIC_REMOTE_BUNDLE`` (non-empty) wins over ``[remote] bundle``; a
    relative setting resolves against the settings directory.  Nothing is
    checked on disk here: ``load_bundle`` says what is wrong with the directory.
    The whole section is validated, so a typo elsewhere is not silently ignored.
    """
    settings = _validated(remote)
    env = os.environ if environ is None else environ
    from_env = env.get(BUNDLE_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    if settings.bundle is None:
        return None
    text = settings.bundle
    if not text.strip() or "://" in text or text.startswith("file:"):
        raise ConfigError(
            f"remote.bundle {settings.bundle!r} is not a directory path; set the path of a "
            "directory written by 'oneiric remote bundle'"
        )
    return Path(_path(settings.bundle, _base(config_dir)))


def sources_from_settings(
    remote: Mapping[str, Any],
    config_dir: Path | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
) -> dict[str, RemoteSource]:
    """Build a ``RemoteSource`` per ``[remote.sources.<name>]``; ``ConfigError`` on one line.

    ``state_dir`` is the state directory of the process that asked (a
    ``Host(state_dir=...)``): without ``[remote] cache_dir`` the cache is its
    ``remote/`` folder, so an application that keeps its state elsewhere also
    keeps its delivered manifests there.  ``None`` means ``state_dir()``.
    """
    base = _base(config_dir)
    settings = _validated(remote)
    cache_dir: str | None = None
    if settings.cache_dir:
        cache_dir = _path(settings.cache_dir, base)
    elif state_dir is not None:
        cache_dir = str(Path(state_dir).expanduser() / REMOTE_CACHE_DIR)
    sources: dict[str, RemoteSource] = {}
    for name, src in settings.sources.items():
        try:
            keys = [TrustedKey(k.keyid, k.public_key) for k in src.trusted_keys]
            local = "://" not in src.url
            sources[name] = RemoteSource(
                _path(src.url, base) if local else src.url,
                repository=src.repository,
                trusted_keys=keys,
                threshold=src.threshold,
                mirrors=[_path(m, base) if "://" not in m else m for m in src.mirrors],
                cache_dir=cache_dir,
                factory_allowlist=src.factory_allowlist,
                allowed_keys=src.allowed_keys,
                allowed_actions=src.allowed_actions,
                max_priority=src.max_priority,
                min_version=src.min_version,
                max_lifetime_days=src.max_lifetime_days,
                verify=_path(src.ca_bundle, base) if src.ca_bundle else True,
                allow_local_artifacts=src.allow_local_artifacts,
            )
        except ConfigError as exc:
            raise ConfigError(f"remote.sources.{name}: {exc}") from None
    return sources
