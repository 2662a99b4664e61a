"""The reserved domain ``control``: where control-plane providers are candidates.

Why a module of its own in core: the selection overlay (core), the
lifecycle's ``activate``, oneiric-remote's manifest policy and the CLI all
refuse to change this domain at run time; one constant and one message keep
them alike.  The control plane is chosen in the settings files
(``[control.selections] plane``) and kept by a process from start to exit, so
nothing that changes a running process may reach it (ARCHITECTURE §12).
"""

from __future__ import annotations

from ._errors import OneiricError

__all__ = ["CONTROL_DOMAIN", "CONTROL_KEY", "refuse_control_domain"]

#: The reserved domain and the one key in it: the control plane provider.
CONTROL_DOMAIN = "control"
CONTROL_KEY = "plane"


def refuse_control_domain(domain: str, what: str) -> None:
    """Raise a *refused* ``OneiricError`` (exit 6) if ``domain`` is the reserved one.

    ``what`` names the refused request (``"oneiric swap control plane"``).
    """
    if domain == CONTROL_DOMAIN:
        raise OneiricError(
            f"{what}: domain {CONTROL_DOMAIN!r} is reserved for the control plane, which the "
            f"settings files choose ([{CONTROL_DOMAIN}.selections] {CONTROL_KEY} = ...) and each "
            "process keeps from start to exit; edit the settings and restart instead",
            category="refused",
        )
