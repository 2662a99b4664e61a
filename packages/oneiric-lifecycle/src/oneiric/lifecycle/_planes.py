"""``control_plane(...)``: pick and build this process's control plane, once, at start.

Why once and from the settings files only: the control plane is where
decisions about the running process come from; letting the overlay, the
plane's own state or a manifest choose it would let a run-time write cut the
process off from its operators.  So the provider is the candidate of the
reserved domain ``control``, key ``plane``, that ``[control.selections]
plane`` names (else the one precedence picks: ``local`` declares 100,
oneiric-fleet's ``redis`` 0), built with its factory and
``[control.provider_settings.plane.<provider>]``, and kept by the caller for
the process's life - never lifecycle-activated, swapped or paused.

Without a selection the plane is ``local``, whatever else is installed:
installing a package never redirects where operator decisions go, and a
process whose settings select nothing needs no plugin discovery to find its
plane (``oneiric status`` and ``pause --force`` stay as lean as before).
``local`` is known here even without discovery (``Host(plugins=False)``);
lifecycle's own plugin registers the same candidate so ``oneiric list`` and
``explain`` show it.

A plane factory is called as ``factory(settings, state_dir=...)``: the
provider's validated settings model (``None`` without one) and the state
directory of the caller (``None``: the default).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from oneiric.core import (
    Candidate,
    ConfigError,
    FactoryError,
    OneiricError,
    Resolver,
    SelectionUnavailableError,
    Source,
    resolve_factory,
    resolve_settings_model,
)
from oneiric.core.helpers import CONTROL_DOMAIN, CONTROL_KEY, describe_exception

from .__about__ import __version__
from ._control import ControlPlane

if TYPE_CHECKING:
    import pluggy

    from oneiric.core import Settings

__all__ = ["LOCAL_PLANE", "control_plane"]

#: The ``local`` provider as lifecycle's plugin registers it (priority 100).
LOCAL_PLANE = Candidate(
    CONTROL_DOMAIN,
    CONTROL_KEY,
    "local",
    "oneiric.lifecycle._localplane:LocalControlPlane",
    priority=100,
    source=Source("entry_point", "oneiric-lifecycle", __version__),
    description="this machine's state dir: selection overlay, activity store, status snapshots",
)


def _candidates(resolver: Resolver | None) -> list[Candidate]:
    found = list(resolver.candidates(CONTROL_DOMAIN, CONTROL_KEY)) if resolver is not None else []
    if not any(c.factory == LOCAL_PLANE.factory for c in found):
        found.insert(0, LOCAL_PLANE)  # registered first: any other registration wins ties
    return found


def _selected(settings: Settings | None) -> str | None:
    """``[control.selections] plane`` from the settings files (never the overlay)."""
    domain = settings.domains.get(CONTROL_DOMAIN) if settings is not None else None
    return domain.selections.get(CONTROL_KEY) if domain is not None else None


def control_plane(
    settings: Settings | None,
    *,
    resolver: Resolver | Callable[[], Resolver] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    hooks: pluggy.PluginManager | None = None,
) -> ControlPlane:
    """Resolve, build and return the control plane the settings files select.

    ``resolver`` supplies the registered ``control/plane`` candidates (pass
    one with the installed plugins loaded and nothing else registered yet, as
    ``Host`` and the CLI do), or a function returning it, called only when
    the settings select a provider; ``local`` is always a candidate; ``hooks`` is the plugin
    manager whose vetoes apply (default: the resolver's).  Raises
    ``ConfigError`` (one line, exit 4) when the selected provider is not
    installed or its settings are invalid, naming what is installed.
    """
    selected = _selected(settings)
    if selected is None:
        return _build(LOCAL_PLANE, settings, state_dir)
    found = resolver() if callable(resolver) else resolver
    candidates = _candidates(found)
    private = Resolver(hooks=hooks if hooks is not None else (found.hooks if found else None))
    with private.batch():
        for candidate in candidates:
            private.register(candidate)
    private.set_selections(CONTROL_DOMAIN, {CONTROL_KEY: selected})
    where = f"{settings.config_dir}: " if settings is not None and settings.config_dir else ""
    try:
        chosen = private.resolve(CONTROL_DOMAIN, CONTROL_KEY)
    except SelectionUnavailableError as exc:
        installed = ", ".join(sorted({c.provider for c in candidates}))
        raise ConfigError(
            f"{where}[{CONTROL_DOMAIN}.selections] {CONTROL_KEY} = {selected!r}: control plane "
            f"provider {selected!r} {exc.reason}; installed: {installed}; install its package "
            "(oneiric-fleet for 'redis') or change the selection"
        ) from None
    except OneiricError as exc:
        raise ConfigError(f"{where}no control plane can be used: {exc}") from None
    return _build(chosen, settings, state_dir)


def _build(
    chosen: Candidate, settings: Settings | None, state_dir: str | os.PathLike[str] | None
) -> ControlPlane:
    """Call the factory with the provider's validated settings; check what it built."""
    model = resolve_settings_model(chosen)
    config: object = None
    if model is not None:
        config = (
            settings.settings_for(chosen) if settings is not None else model.model_validate({})
        )
    try:
        plane = resolve_factory(chosen)(config, state_dir=state_dir)
    except OneiricError:
        raise
    except Exception as exc:
        raise FactoryError(
            f"control plane provider {chosen.provider!r} ({chosen.source}) failed to build: "
            f"{describe_exception(exc)}"
        ) from exc
    if not isinstance(plane, ControlPlane):
        raise ConfigError(
            f"control plane provider {chosen.provider!r} ({chosen.source}) built a "
            f"{type(plane).__name__}, which does not implement ControlPlane; fix or remove "
            "the plugin"
        )
    return plane
