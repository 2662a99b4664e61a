"""oneiric-actions: action kits invoked by key, swappable like any component.

Actions are components of domain ``action`` (the key is the action, the
provider an implementation), so resolve, explain, swap, pause and tenants
work as for adapters.  ``Actions(lifecycle).invoke(key, payload)`` adds input
and output validation, a timeout, retries, a lease and telemetry per call.
Every name loads on first access: discovery imports ``_plugin`` only.
See docs/actions.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core.helpers import lazy_exports

from .__about__ import __version__

if TYPE_CHECKING:
    from oneiric.core import RetryPolicy

    from ._catalog import DOMAIN
    from ._errors import (
        ActionError,
        ActionFailed,
        ActionInputError,
        ActionOutputError,
        ActionTimeout,
    )
    from ._invoke import ActionInfo, Actions
    from ._json import binary, find_non_json, from_json, to_json
    from ._spec import ActionContext, ActionResult, ActionSpec

__all__ = [
    "DOMAIN",
    "ActionContext",
    "ActionError",
    "ActionFailed",
    "ActionInfo",
    "ActionInputError",
    "ActionOutputError",
    "ActionResult",
    "ActionSpec",
    "ActionTimeout",
    "Actions",
    "RetryPolicy",
    "__version__",
    "binary",
    "find_non_json",
    "from_json",
    "to_json",
]

_LAZY = {
    "DOMAIN": "_catalog",
    "ActionContext": "_spec",
    "ActionError": "_errors",
    "ActionFailed": "_errors",
    "ActionInfo": "_invoke",
    "ActionInputError": "_errors",
    "ActionOutputError": "_errors",
    "ActionResult": "_spec",
    "ActionSpec": "_spec",
    "ActionTimeout": "_errors",
    "Actions": "_invoke",
    "binary": "_json",
    "find_non_json": "_json",
    "from_json": "_json",
    "to_json": "_json",
}


def __getattr__(name: str) -> object:
    """Lazy exports; ``RetryPolicy`` is core's (one type for actions, events, workflows)."""
    if name == "RetryPolicy":
        from oneiric.core import RetryPolicy

        return RetryPolicy
    return _lazy(name)


_lazy = lazy_exports(__name__, _LAZY)
