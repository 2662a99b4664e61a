"""The hook specifications; imported only when the plugin manager is built.

Parameter names are contract: pluggy matches implementations by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._markers import hookspec

if TYPE_CHECKING:
    from ._candidate import Candidate
    from ._hooktypes import ResolutionRequest, SwapTransition
    from ._registry import PluginRegistry
    from ._resolver import Resolver
    from ._settings import Settings

__all__ = ["OneiricHookSpecs"]


class OneiricHookSpecs:
    """The hook specifications; see docs/writing-a-plugin.md for examples."""

    @hookspec
    def oneiric_register(self, registry: PluginRegistry) -> None:
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
        return None

    @hookspec
    def oneiric_pre_swap(self, transition: SwapTransition) -> object:
        """Raise ``SwapVetoed(reason)`` to refuse a swap; may return an awaitable (awaited)."""

    @hookspec
    def oneiric_post_swap(self, transition: SwapTransition) -> None:
        """Observe a completed bind; exceptions are recorded, never raised."""

    @hookspec
    def oneiric_fetchers(self) -> Mapping[str, object]:
        """Return ``{scheme: Fetcher}`` for remote manifests and artifacts.

        ``object``: the ``Fetcher`` protocol is oneiric-remote's, which the core
        does not import; remote checks each value.
        """
        return {}

    @hookspec(firstresult=True)
    def oneiric_secret(self, name: str) -> str | None:
        """Return the value of ``${secret:NAME}``, or None to let the next source answer."""

    @hookspec
    def oneiric_cli_commands(self) -> object:
        """Return click commands or groups to add under ``oneiric``.

        ``object``: click is the CLI's dependency, not the core's; the CLI checks
        each value.
        """

    @hookspec
    def oneiric_host_services(self, host: object) -> object:
        """Return services for ``host``: an async context manager, an iterable of them, or None.

        ``Host`` (oneiric-lifecycle) enters them in hook order once it is ready
        and exits them in reverse before shutdown.  ``object``: ``Host`` is
        lifecycle's class, which the core does not import.  A plugin using this
        hook declares ``ONEIRIC_HOOKSPEC = 2``.
        """

    @hookspec
    def oneiric_settings_applied(self, resolver: Resolver, settings: Settings) -> None:
        """Register the candidates a plugin derives from settings it owns, after ``apply``.

        Reserved sections such as ``[automations]`` and ``[schedules]``, or the
        settings dir's ``workflows/`` files, become candidates here, so every
        resolver settings are applied to - a ``Host``'s, the CLI's, a reload's -
        sees them the same way (``oneiric explain task nightly``).  Must be
        idempotent (a reload applies again); raise ``ConfigError`` (one line,
        naming the file and key) for an invalid table: nothing of it should be
        registered.  A plugin using this hook declares ``ONEIRIC_HOOKSPEC = 3``.
        """
