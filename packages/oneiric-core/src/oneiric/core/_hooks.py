"""The process-wide plugin manager (markers in ``_markers``, hook values in ``_hooktypes``).

Every hook that any Oneiric package calls is specified in the core
(``_hookspecs.py``), so a plugin that implements ``oneiric_pre_swap`` or
``oneiric_fetchers`` depends on oneiric-core alone.  pluggy itself is imported
only when a marker is first used or the manager is built.  Parameter names
are contract: pluggy matches them by name.  No hook runs on the per-request
path: vetoes run when a cached winner is (re)computed, swaps are rare,
fetchers run per sync.
"""

from __future__ import annotations

from ._hooktypes import ResolutionRequest, SwapTransition
from ._markers import PROJECT, hookimpl, hookspec

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pluggy

__all__ = [
    "HOOKSPEC_VERSION",
    "PROJECT",
    "ResolutionRequest",
    "SwapTransition",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "new_plugin_manager",
]

#: Bumped whenever a hook is added or a hook's contract changes; a plugin
#: declaring a newer ``ONEIRIC_HOOKSPEC`` is refused with a clear reason.
HOOKSPEC_VERSION = 3  # 2: oneiric_host_services; 3: oneiric_settings_applied


_manager: pluggy.PluginManager | None = None


def new_plugin_manager(*, builtins: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with Oneiric's hook specs (and, by default, built-ins).

    For tests and embedders that want plugins isolated from the process-wide
    manager: pass it as ``Resolver(hooks=...)`` / ``LifecycleManager(hooks=...)``.
    """
    import pluggy

    from ._hookspecs import OneiricHookSpecs

    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(OneiricHookSpecs)
    if builtins:
        from . import _requires, _secrets

        manager.register(_secrets, name="oneiric.core.secrets")
        manager.register(_requires, name=_requires.PLUGIN_NAME)
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with Oneiric's hook specs and built-ins.

    One manager per process: plugins are process-wide (like imports), while
    candidates live in each ``Resolver``.
    """
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager
