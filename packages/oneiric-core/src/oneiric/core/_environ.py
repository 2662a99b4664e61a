"""The original design's environment variables: honoured, or rejected in one line.

Issue 11: ``ONEIRIC_PROFILE``, ``ONEIRIC_ACTIVITY_STORE`` and ``LOG_LEVEL``
were silently ignored, so an operator who set them believed they worked.

* ``LOG_LEVEL`` is honoured: the default log level when ``ONEIRIC_LOG_LEVEL``
  (which wins) is not set.  A value that is not a level name is a ConfigError
  (set ``ONEIRIC_LOG_LEVEL`` to override a ``LOG_LEVEL`` meant for another
  program).
* ``ONEIRIC_PROFILE``: ``default`` or ``serverless`` (the orchestrator's profile,
  ARCHITECTURE §11: no watchers, no polling; ``profile_from_environment()``
  reads it); any other non-empty value is a ConfigError, because accepting a
  profile that has no effect would be a lie.
* ``ONEIRIC_ACTIVITY_STORE``: the activity store is always
  ``<state dir>/activity.sqlite`` (one state dir shared by the CLI and the
  applications); a non-empty value is a ConfigError pointing at
  ``ONEIRIC_STATE_DIR``.

``check_environment()`` is the one check, called by the CLI at start and by
the lifecycle.  Only ``os`` is imported: ``import oneiric.core`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._errors import ConfigError

__all__ = [
    "PROFILES",
    "check_environment",
    "log_level_from_environment",
    "profile_from_environment",
]

#: The profiles this version implements (``ONEIRIC_PROFILE``).
PROFILES = ("default", "serverless")

_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise a one-line ``ConfigError`` for a design-era variable this version cannot honour."""
    env = os.environ if environ is None else environ
    profile_from_environment(env)
    store = env.get("ONEIRIC_ACTIVITY_STORE", "").strip()
    if store:
        raise ConfigError(
            f"ONEIRIC_ACTIVITY_STORE={store!r} is not supported: the activity store is always "
            "<state dir>/activity.sqlite; unset it and set ONEIRIC_STATE_DIR (or --state-dir) "
            "to move the state dir"
        )
    log_level_from_environment("INFO", env)


def profile_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """``ONEIRIC_PROFILE`` in lower case (``default`` when unset); ConfigError if unknown."""
    env = os.environ if environ is None else environ
    profile = env.get("ONEIRIC_PROFILE", "").strip()
    if profile and profile.lower() not in PROFILES:
        raise ConfigError(
            f"ONEIRIC_PROFILE={profile!r} is not supported: the profiles that exist are "
            f"{', '.join(PROFILES)}; set one of them or unset it"
        )
    return profile.lower() or "default"


def log_level_from_environment(default: str, environ: Mapping[str, str] | None = None) -> str:
    """``ONEIRIC_LOG_LEVEL``, else ``LOG_LEVEL``, else ``default``; a level name, upper case."""
    env = os.environ if environ is None else environ
    for name in ("ONEIRIC_LOG_LEVEL", "LOG_LEVEL"):
        value = env.get(name, "").strip()
        if not value:
            continue
        level = "WARNING" if value.upper() == "WARN" else value.upper()
        if level not in _LEVELS:
            extra = "; set ONEIRIC_LOG_LEVEL to override it" if name == "LOG_LEVEL" else ""
            raise ConfigError(
                f"{name}={value!r} is not a log level: use one of {', '.join(_LEVELS)}{extra}"
            )
        return level
    return default
