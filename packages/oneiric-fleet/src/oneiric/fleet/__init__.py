"""oneiric-fleet: one control plane for many application instances, on Redis.

The state of a fleet - desired selections and pause/drain decisions, a
revision and an epoch - lives in one Redis; operators change it with one
atomic script that also appends the change to a log stream (``FleetAdmin``);
each instance follows that log from the revision it applied (``Follower``
over a ``FleetMember``), publishes its status with a TTL and acknowledges what
took effect.  See docs/fleet.md.  Every name loads on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core.helpers import lazy_exports

from .__about__ import __version__

if TYPE_CHECKING:
    from ._admin import LOST_FORGOTTEN_AFTER, FleetAdmin
    from ._codec import FleetState, LoggedChange
    from ._errors import FleetError, FleetUnavailable, StaleRevision
    from ._follow import Changed, Condition, Follower, Relisted
    from ._keys import LAYOUT, FleetKeys
    from ._member import FleetMember

__all__ = [
    "LAYOUT",
    "LOST_FORGOTTEN_AFTER",
    "Changed",
    "Condition",
    "FleetAdmin",
    "FleetError",
    "FleetKeys",
    "FleetMember",
    "FleetState",
    "FleetUnavailable",
    "Follower",
    "LoggedChange",
    "Relisted",
    "StaleRevision",
    "__version__",
]

_LAZY = {
    "LAYOUT": "_keys",
    "LOST_FORGOTTEN_AFTER": "_admin",
    "LoggedChange": "_codec",
    "Changed": "_follow",
    "Condition": "_follow",
    "FleetState": "_codec",
    "FleetAdmin": "_admin",
    "FleetError": "_errors",
    "FleetKeys": "_keys",
    "FleetMember": "_member",
    "FleetUnavailable": "_errors",
    "Follower": "_follow",
    "Relisted": "_follow",
    "StaleRevision": "_errors",
}

__getattr__ = lazy_exports(__name__, _LAZY)
