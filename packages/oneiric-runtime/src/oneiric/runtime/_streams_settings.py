"""The Redis Streams transport's settings and key layout, validated before anything connects.

``[host.events]`` in oneiric.toml (not ``[events]``: that section is the
``event`` domain's selections and provider settings) chooses the host's event
transport::

    [host.events]
    transport = "redis"                  # or "local" (the default: the in-process inbox)
    url = "redis://127.0.0.1:6379/0"
    fleet = "shop"                       # the namespace shared with the control plane (§12)
    min_idle = "60s"                     # takeover: strictly above every handler's timeout
    max_deliveries = 5                   # then the entry moves to the dead-letter stream

Every value is checked here, the first problem one ``ConfigError`` line
naming the field, so a typo never silently falls back to the local inbox.
Keys carry a layout version and the fleet, so two fleets (or a future
layout) can share one Redis without reading each other's entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from oneiric.core import ConfigError
from oneiric.core.helpers import parse_duration

__all__ = ["KEY_VERSION", "StreamKeys", "StreamSettings", "transport_settings"]

#: The key layout's version: a change of layout gets a new prefix, never a silent reuse.
KEY_VERSION = "v1"
_FLEET = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DURATIONS = ("min_idle", "retention", "block", "claim_every", "trim_every", "dedupe_ttl")
_COUNTS = ("max_deliveries", "max_length", "batch")
_DEFAULT_URL = "redis://127.0.0.1:6379/0"
_DEFAULT_MIN_IDLE = 60.0


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """One validated configuration (durations in seconds); build with ``from_mapping``."""

    url: str = _DEFAULT_URL
    fleet: str = "default"
    #: An entry pending this long on a consumer may be taken over (must exceed handler timeouts).
    min_idle: float = _DEFAULT_MIN_IDLE
    #: Deliveries (the pending list's counter) before an entry is dead-lettered.
    max_deliveries: int = 5
    #: Entries older than this are trimmed once every group is past them.
    retention: float = 86_400.0
    #: At most this many entries are kept (again: never one a group still needs).
    max_length: int = 1_000_000
    #: How long one XREADGROUP blocks; it bounds how soon a new group's reader starts.
    block: float = 1.0
    #: Entries per XREADGROUP / XAUTOCLAIM.
    batch: int = 64
    #: How often pending entries are renewed and idle ones claimed (default: min_idle / 4).
    claim_every: float = 0.0
    #: How often the stream is trimmed.
    trim_every: float = 60.0
    #: How long a non-idempotent handler's success is remembered (dedupe), as in memory.
    dedupe_ttl: float = 86_400.0
    #: This process's consumer name (default: ``oneiric.core.helpers.instance_id()``).
    consumer: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "[host.events]"
                     ) -> StreamSettings:
        """Validate ``data``; unknown fields and bad values raise one-line ``ConfigError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            if hasattr(value, "get_secret_value"):  # ${secret:...} in the URL: a SecretStr
                value = value.get_secret_value()
            if name in _DURATIONS:
                seconds = parse_duration(value, what=f"{where} {name}")
                if seconds <= 0:
                    raise ConfigError(f"{where}: {name} must be > 0, got {value!r}")
                values[name] = float(seconds)
            elif name in _COUNTS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"{where}: {name} must be an integer >= 1, got {value!r}")
                values[name] = value
            elif not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: {name} must be a non-empty string, got {value!r}")
            else:
                values[name] = value.strip()
        url = values.get("url", _DEFAULT_URL)
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"{where}: url must start with redis://, rediss:// or unix://, got a "
                f"{url.split(':', 1)[0]!r} URL"
            )
        fleet = values.setdefault("fleet", "default")
        if not _FLEET.match(fleet):
            raise ConfigError(
                f"{where}: fleet {fleet!r} is not a fleet name; use 1-64 characters of "
                "a-z, 0-9, '_', '.', '-' starting with a letter or digit"
            )
        if "claim_every" not in values:
            values["claim_every"] = min(values.get("min_idle", _DEFAULT_MIN_IDLE) / 4, 5.0)
        settings = cls(**values)
        if settings.claim_every * 2 > settings.min_idle:
            raise ConfigError(
                f"{where}: claim_every ({settings.claim_every:g}s) must be at most half of "
                f"min_idle ({settings.min_idle:g}s): it renews this consumer's own entries"
            )
        return settings

    @property
    def keys(self) -> StreamKeys:
        return StreamKeys(self.fleet)


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """``oneiric:v1:<fleet>:...``: the fleet's event stream, dead letters, dedupe marks.

    One stream per fleet (not one per topic): subscriptions are topic
    *patterns*, so per-topic streams would need discovery of every stream a
    pattern matches (SCAN, racing new topics); one stream keeps a group's
    cursor, pending list and trimming floor in one place (docs/architecture.md).
    """

    fleet: str

    @property
    def prefix(self) -> str:
        return f"oneiric:{KEY_VERSION}:{self.fleet}"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def group(self, group: str) -> str:
        """The consumer group of handler group ``group`` (``<fleet>:<group>``, §11)."""
        return f"{self.fleet}:{group}"

    def dead(self, group: str) -> str:
        return f"{self.prefix}:dead:{group}"

    def dedupe(self, group: str, event_id: str) -> str:
        return f"{self.prefix}:dedupe:{group}:{event_id}"


def transport_settings(host_section: Mapping[str, Any] | None) -> StreamSettings | None:
    """``[host.events]``: ``None`` for the local inbox, else the Redis settings (validated)."""
    section = (host_section or {}).get("events")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"[host.events] must be a table, got {type(section).__name__}; "
            "e.g. [host.events] transport = \"redis\""
        )
    rest = dict(section)
    transport = rest.pop("transport", "local")
    if transport == "local":
        if rest:
            raise ConfigError(
                f"[host.events]: {sorted(rest)[0]!r} applies to transport = \"redis\" only; "
                "remove it or set transport = \"redis\""
            )
        return None
    if transport != "redis":
        raise ConfigError(
            f"[host.events]: transport must be \"local\" or \"redis\", got {transport!r}"
        )
    return StreamSettings.from_mapping(rest)
