"""oneiric-lifecycle: run the providers the resolver picks, and hot-swap them safely.

``LifecycleManager`` activates providers (build → init → health → bind),
swaps them with rollback, tracks leases so nothing is cleaned up while in use,
honours pause/drain decisions from the shared ``ActivityStore`` and publishes
a status snapshot for the CLI.  ``DomainBridge`` is what application code
holds; ``SelectionWatcher`` turns edited settings files into swaps.
``Host`` assembles all of it in one ``async with``; ``oneiric.lifecycle.asgi``
runs a ``Host`` in an ASGI server (see docs/web-app.md).

See docs/lifecycle.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core import (
    ActivationError,
    ComponentDraining,
    ComponentPaused,
    HealthCheckFailed,
    NotActiveError,
    SwapError,
    SwapTimeout,
    SwapTransition,
    SwapVetoed,
)
from oneiric.core.helpers import lazy_exports

from .__about__ import __version__

if TYPE_CHECKING:
    from ._activity import ActivityRecord, ActivityStore
    from ._bridge import DomainBridge, Handle, Lease, SyncLease
    from ._component import HealthReport
    from ._config import LifecycleConfig
    from ._errors import ActivityStoreError
    from ._host import Host
    from ._manager import LifecycleManager
    from ._status import KeyStatus, StatusDocument, read_snapshots, snapshot_path
    from ._swap import SwapResult
    from ._watcher import SelectionWatcher

__all__ = [
    "ActivationError",
    "ActivityRecord",
    "ActivityStore",
    "ActivityStoreError",
    "ComponentDraining",
    "ComponentPaused",
    "DomainBridge",
    "Handle",
    "HealthCheckFailed",
    "HealthReport",
    "Host",
    "KeyStatus",
    "Lease",
    "LifecycleConfig",
    "LifecycleManager",
    "NotActiveError",
    "SelectionWatcher",
    "StatusDocument",
    "SwapError",
    "SwapResult",
    "SwapTimeout",
    "SwapTransition",
    "SwapVetoed",
    "SyncLease",
    "__version__",
    "read_snapshots",
    "snapshot_path",
]

#: Public names imported on first use by the module that defines them: a CLI
#: command that needs only ``ActivityStore`` or ``read_snapshots`` must not pay
#: for the manager, asyncio and the host.
_LAZY = {
    "ActivityRecord": "_activity",
    "ActivityStore": "_activity",
    "ActivityStoreError": "_errors",
    "DomainBridge": "_bridge",
    "Handle": "_bridge",
    "HealthReport": "_component",
    "Host": "_host",
    "KeyStatus": "_status",
    "Lease": "_bridge",
    "LifecycleConfig": "_config",
    "LifecycleManager": "_manager",
    "SelectionWatcher": "_watcher",
    "StatusDocument": "_status",
    "SwapResult": "_swap",
    "SyncLease": "_bridge",
    "read_snapshots": "_status",
    "snapshot_path": "_status",
}

__getattr__ = lazy_exports(__name__, _LAZY)
