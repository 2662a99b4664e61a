"""Where a fleet's state lives in Redis: one versioned prefix, one function per key.

Every key of a fleet starts ``oneiric:v1:<fleet>:`` - the layout version first,
so a later layout can be written beside this one and an old instance never
misreads a new one.  A desired-state field names one decision:

* ``s\\x1f<domain>\\x1f<key>\\x1f<tenant>`` - the selected provider (tenant ``""``: global);
* ``a\\x1f<domain>\\x1f<key>`` - the activity decision (JSON: state, note, actor, at).

``\\x1f`` (unit separator) cannot occur in a validated domain, key or tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LAYOUT", "FleetKeys", "activity_field", "canary_field", "parse_field",
           "selection_field"]

#: The key layout version (in every key).
LAYOUT = "v1"
_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class FleetKeys:
    """The keys of fleet ``fleet``."""

    fleet: str

    @property
    def prefix(self) -> str:
        return f"oneiric:{LAYOUT}:{self.fleet}"

    @property
    def meta(self) -> str:
        """Hash: ``revision`` (last written), ``epoch`` (changes when the state is wiped)."""
        return f"{self.prefix}:meta"

    @property
    def desired(self) -> str:
        """Hash: one field per decision (see the module docstring)."""
        return f"{self.prefix}:desired"

    @property
    def log(self) -> str:
        """Stream: one entry per change, entry id ``<revision>-1``."""
        return f"{self.prefix}:log"

    @property
    def seen(self) -> str:
        """Sorted set: instance id by last-seen time (lost instances stay visible)."""
        return f"{self.prefix}:seen"

    def status(self, instance: str) -> str:
        """String with a TTL: the instance's status document."""
        return f"{self.prefix}:status:{instance}"

    def acks(self, revision: int) -> str:
        """Hash: instance id -> acknowledgement of ``revision``."""
        return f"{self.prefix}:acks:{revision}"

    @property
    def rollout(self) -> str:
        """Hash: the canary rollout in progress (resumable by any controller)."""
        return f"{self.prefix}:rollout"


def selection_field(domain: str, key: str, tenant: str | None) -> str:
    return f"s{_SEP}{domain}{_SEP}{key}{_SEP}{tenant or ''}"


def activity_field(domain: str, key: str) -> str:
    return f"a{_SEP}{domain}{_SEP}{key}"


def canary_field(domain: str, key: str, tenant: str | None, instance: str) -> str:
    return f"c{_SEP}{domain}{_SEP}{key}{_SEP}{tenant or ''}{_SEP}{instance}"


def parse_field(field: str) -> tuple[str, str, str, str | None, str | None]:
    """``(kind, domain, key, tenant, instance)`` of a desired-state field; kind ``s``, ``a``
    or ``c`` (a canary's selection for one instance)."""
    parts = field.split(_SEP)
    if parts[0] == "s" and len(parts) == 4:
        return "s", parts[1], parts[2], parts[3] or None, None
    if parts[0] == "a" and len(parts) == 3:
        return "a", parts[1], parts[2], None, None
    if parts[0] == "c" and len(parts) == 5:
        return "c", parts[1], parts[2], parts[3] or None, parts[4]
    raise ValueError(f"not a desired-state field: {field!r}")
