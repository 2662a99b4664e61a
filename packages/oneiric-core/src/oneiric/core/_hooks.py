"""Hook markers, the values hooks receive, and the process-wide plugin manager.

Every hook that any Oneiric package calls is specified in the core
(``_hookspecs.py``), so a plugin that implements ``oneiric_pre_swap`` or
``oneiric_fetchers`` depends on oneiric-core alone.  pluggy itself is imported
only when a marker is first used or the manager is built.  Parameter names
are contract: pluggy matches them by name.  No hook runs on the per-request
path: vetoes run when a cached winner is (re)computed, swaps are rare,
fetchers run per sync.
"""

from __future__ import annotations

from ._frozen import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pluggy

__all__ = [
    "HOOKSPEC_VERSION",
    "PROJECT",
    "ResolutionRequest",
    "SwapTransition",
    "get_plugin_manager",
    "hookimpl",
    "new_plugin_manager",
    "hookspec",
]

PROJECT = "oneiric"
#: Bumped whenever a hook is added or a hook's contract changes; a plugin
#: declaring a newer ``ONEIRIC_HOOKSPEC`` is refused with a clear reason.
HOOKSPEC_VERSION = 1


class _LazyMarker:
    """A pluggy marker created on first use, so ``import oneiric.core`` skips pluggy."""

    __slots__ = ("_kind", "_marker")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._marker: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        marker = self._marker
        if marker is None:
            import pluggy

            factory = pluggy.HookimplMarker if self._kind == "impl" else pluggy.HookspecMarker
            marker = self._marker = factory(PROJECT)
        return marker(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<oneiric hook{self._kind} marker>"


if TYPE_CHECKING:
    hookspec = pluggy.HookspecMarker(PROJECT)
    hookimpl = pluggy.HookimplMarker(PROJECT)
else:
    hookspec = _LazyMarker("spec")
    hookimpl = _LazyMarker("impl")


class ResolutionRequest(Frozen):
    """What is being resolved when a veto hook is asked about a candidate."""

    __slots__ = ("domain", "key", "require", "tenant")
    _fields = ("domain", "key", "tenant", "require")
    domain: str
    key: str
    tenant: str | None
    require: tuple[str, ...]

    def __init__(
        self, domain: str, key: str, tenant: str | None = None, require: tuple[str, ...] = ()
    ) -> None:
        _set = object.__setattr__
        _set(self, "domain", domain)
        _set(self, "key", key)
        _set(self, "tenant", tenant)
        _set(self, "require", tuple(require))


class SwapTransition(Frozen):
    """What the lifecycle is about to bind (pre-swap) or has bound (post-swap)."""

    __slots__ = (
        "domain", "force", "key", "new_instance", "new_provider", "old_provider", "reason", "tenant"
    )
    _fields = (
        "domain", "key", "tenant", "old_provider", "new_provider", "new_instance", "force", "reason"
    )
    domain: str
    key: str
    tenant: str | None
    old_provider: str | None
    new_provider: str
    new_instance: Any
    force: bool
    reason: str

    def __init__(
        self,
        domain: str,
        key: str,
        tenant: str | None,
        old_provider: str | None,
        new_provider: str,
        new_instance: Any,
        force: bool = False,
        reason: str = "",
    ) -> None:
        _set = object.__setattr__
        _set(self, "domain", domain)
        _set(self, "key", key)
        _set(self, "tenant", tenant)
        _set(self, "old_provider", old_provider)
        _set(self, "new_provider", new_provider)
        _set(self, "new_instance", new_instance)
        _set(self, "force", force)
        _set(self, "reason", reason)


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
        from . import _secrets

        manager.register(_secrets, name="oneiric.core.secrets")
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


def __getattr__(name: str) -> Any:
    if name == "OneiricHookSpecs":  # kept importable from here; defined lazily
        from ._hookspecs import OneiricHookSpecs

        return OneiricHookSpecs
    raise AttributeError(name)
