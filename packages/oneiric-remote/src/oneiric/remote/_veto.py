"""The built-in veto: a manifest candidate whose wheel requirements are missing cannot win.

The core has no "unavailable" flag on ``Candidate``; a sync stores the reason in
``metadata["unavailable"]`` and this hook turns it into a veto, so ``explain``
shows ``vetoed by oneiric-remote: requires X which is not installed`` instead of
the component failing at import time.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from oneiric.core import Candidate, ResolutionRequest, hookimpl, veto_applies_to

if TYPE_CHECKING:
    import pluggy

__all__ = ["PLUGIN_NAME", "ensure_registered", "oneiric_candidate_veto"]

PLUGIN_NAME = "oneiric-remote"


@hookimpl
@veto_applies_to(source_kinds=["manifest"])
def oneiric_candidate_veto(candidate: Candidate, request: ResolutionRequest) -> str | None:
    """Veto manifest candidates that carry an ``unavailable`` reason (pure: reads metadata)."""
    if candidate.source.kind != "manifest":
        return None
    reason = candidate.metadata.get("unavailable")
    return str(reason) if reason else None


def ensure_registered(manager: pluggy.PluginManager) -> None:
    """Register this module with ``manager`` once (idempotent)."""
    module = sys.modules[__name__]
    if manager.is_registered(module) or manager.get_plugin(PLUGIN_NAME) is not None:
        return
    manager.register(module, name=PLUGIN_NAME)
