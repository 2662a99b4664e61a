"""Hook specifications of the pluggy project ``oneiric``.

Every hook that any Oneiric package calls is specified here, in the core, so
a plugin that implements ``oneiric_pre_swap`` or ``oneiric_fetchers`` depends
on oneiric-core alone.  Parameter names are contract: pluggy matches them by
name.  No hook runs on the per-request path: vetoes run when a cached winner
is (re)computed, swaps are rare, fetchers run per sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

if TYPE_CHECKING:
    from ._candidate import Candidate

__all__ = [
    "HOOKSPEC_VERSION",
    "PROJECT",
    "ResolutionRequest",
    "SwapTransition",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
]

PROJECT = "oneiric"
#: Bumped whenever a hook is added or a hook's contract changes; a plugin
#: declaring a newer ``ONEIRIC_HOOKSPEC`` is refused with a clear reason.
HOOKSPEC_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@attrs.frozen(slots=True)
class ResolutionRequest:
    """What is being resolved when a veto hook is asked about a candidate."""

    domain: str
    key: str
    tenant: str | None = None
    require: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class SwapTransition:
    """What the lifecycle is about to bind (pre-swap) or has bound (post-swap)."""

    domain: str
    key: str
    tenant: str | None
    old_provider: str | None
    new_provider: str
    new_instance: Any
    force: bool = False
    reason: str = ""


class OneiricHookSpecs:
    """The hook specifications; see docs/writing-a-plugin.md for examples."""

    @hookspec
    def oneiric_register(self, registry: Any) -> None:
        """Add candidates with ``registry.register(...)``.

        Use ``"module:attr"`` strings for factories so discovery imports nothing heavy.
        """

    @hookspec
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: ResolutionRequest
    ) -> str | None:
        """Return a reason string to exclude ``candidate`` for ``request``, or None.

        Called when a cached winner is (re)computed, never per request; must be pure.
        Call ``resolver.invalidate()`` when the policy behind it changes.
        """

    @hookspec
    def oneiric_pre_swap(self, transition: SwapTransition) -> Any:
        """Raise ``SwapVetoed(reason)`` to refuse a swap; may return an awaitable."""

    @hookspec
    def oneiric_post_swap(self, transition: SwapTransition) -> None:
        """Observe a completed bind; exceptions are recorded, never raised."""

    @hookspec
    def oneiric_fetchers(self) -> Mapping[str, Any]:
        """Return ``{scheme: Fetcher}`` for remote manifests and artifacts."""

    @hookspec(firstresult=True)
    def oneiric_secret(self, name: str) -> str | None:
        """Return the value of ``${secret:NAME}``, or None to let the next source answer."""

    @hookspec
    def oneiric_cli_commands(self) -> Any:
        """Return click commands or groups to add under ``oneiric``."""


_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with Oneiric's hook specs and built-ins.

    One manager per process: plugins are process-wide (like imports), while
    candidates live in each ``Resolver``.
    """
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager(PROJECT)
        manager.add_hookspecs(OneiricHookSpecs)
        from . import _secrets

        manager.register(_secrets, name="oneiric.core.secrets")
        _manager = manager
    return _manager
