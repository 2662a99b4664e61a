"""Entry point ``oneiric: lifecycle``: registers the ``local`` control plane (priority 100).

Only the candidate (a ``"module:attr"`` factory string) is registered, so
discovery imports nothing else.  ``control_plane(...)`` also knows ``local``
without discovery; this registration is what ``oneiric list`` and ``oneiric
explain control plane`` show, beside other packages' planes (``redis``: 0).
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

from ._planes import LOCAL_PLANE

__all__ = ["oneiric_register"]


@hookimpl
def oneiric_register(registry: Any) -> None:
    registry.register(LOCAL_PLANE)
