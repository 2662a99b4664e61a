"""oneiric-lifecycle: run the providers the resolver picks, and hot-swap them safely.

``LifecycleManager`` activates providers (build → init → health → bind),
swaps them with rollback, tracks leases so nothing is cleaned up while in use,
honours pause/drain decisions from the shared ``ActivityStore`` and publishes
a status snapshot for the CLI.  ``DomainBridge`` is what application code
holds; ``SelectionWatcher`` turns edited settings files into swaps.
``Host`` assembles all of it in one ``async with``; ``oneiric.lifecycle.asgi``
runs a ``Host`` in an ASGI server (see docs/web-app.md).  ``ControlPlane`` is
what the CLI and the host change and read at run time through;
``control_plane(...)`` builds the one the settings select (``local``:
``LocalControlPlane``, the state directory; see docs/control-plane.md).

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
    from ._activity import ActivityRecord, ActivityState, ActivityStore, default_actor
    from ._bridge import DomainBridge, Handle, Lease, SyncLease
    from ._component import HealthReport
    from ._config import LifecycleConfig
    from ._control import (
        Change,
        ControlPlane,
        DesiredState,
        InstanceResult,
        Instances,
        PlaneDescription,
    )
    from ._errors import ActivityStoreError
    from ._host import Host
    from ._localplane import LocalControlPlane
    from ._manager import LifecycleManager
    from ._planes import control_plane
    from ._status import KeyStatus, StatusDocument, read_snapshots, snapshot_path
    from ._swap import SwapResult
    from ._watcher import SelectionWatcher

__all__ = [
    "ActivationError",
    "ActivityRecord",
    "ActivityState",
    "ActivityStore",
    "ActivityStoreError",
    "Change",
    "ComponentDraining",
    "ComponentPaused",
    "ControlPlane",
    "DesiredState",
    "DomainBridge",
    "Handle",
    "HealthCheckFailed",
    "HealthReport",
    "Host",
    "InstanceResult",
    "Instances",
    "KeyStatus",
    "Lease",
    "LifecycleConfig",
    "LifecycleManager",
    "LocalControlPlane",
    "NotActiveError",
    "PlaneDescription",
    "SelectionWatcher",
    "StatusDocument",
    "SwapError",
    "SwapResult",
    "SwapTimeout",
    "SwapTransition",
    "SwapVetoed",
    "SyncLease",
    "__version__",
    "control_plane",
    "default_actor",
    "read_snapshots",
    "snapshot_path",
]

#: Public names imported on first use by the module that defines them: a CLI
#: command that needs only ``ActivityStore`` or ``read_snapshots`` must not pay
#: for the manager, asyncio and the host.
_LAZY = {
    "ActivityRecord": "_activity",
    "ActivityState": "_activity",
    "ActivityStore": "_activity",
    "default_actor": "_activity",
    "ActivityStoreError": "_errors",
    "Change": "_control",
    "ControlPlane": "_control",
    "DesiredState": "_control",
    "InstanceResult": "_control",
    "Instances": "_control",
    "LocalControlPlane": "_localplane",
    "PlaneDescription": "_control",
    "control_plane": "_planes",
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
