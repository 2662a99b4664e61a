"""``ControlPlane``: what the CLI and the ``Host`` use to change and read a running fleet.

Why a protocol: ``oneiric swap|pause|drain|resume|status`` and ``Host`` must
work unchanged whether decisions travel through the state directory of one
machine (``local``, this package) or through one server for many instances
(``redis``, oneiric-fleet).  So the CLI and the host talk only to this
protocol, and a provider is a candidate in the reserved domain ``control``,
key ``plane``, chosen once at start from the settings files (``_planes.py``).

Operator methods are synchronous: a ``pause`` must not import asyncio nor run
an event loop, and a provider with a network client opens it lazily.  Writes
return a frozen ``Change`` (never a dict), so every provider reports the same
facts: what changed, the plane's revision after it, who and when.  The
instance side is one async context, ``attach(host)``, that the host enters
for as long as it runs: it applies desired state to this process and
publishes its status.

Errors are ``OneiricError`` with a category (exit codes): a stale
``expect_revision`` is *refused* (6); a request the provider cannot honour
(``wait`` on ``local``) is *unavailable* (5) and says so in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, runtime_checkable

from oneiric.core.helpers import format_timestamp

if TYPE_CHECKING:
    from ._activity import ActivityRecord, ActivityState
    from ._host import Host

__all__ = [
    "Change",
    "ChangeAction",
    "ControlPlane",
    "DesiredState",
    "InstanceResult",
    "Instances",
    "PlaneDescription",
    "PlaneState",
]

#: ``ok``; ``unreachable`` (its server cannot be reached); ``regressed`` (its
#: state went backwards: a new epoch or a lower revision than applied).
PlaneState = Literal["ok", "unreachable", "regressed"]

#: What a write did: a selection set or cleared, or an activity decision.
ChangeAction = Literal["select", "clear", "pause", "drain", "resume"]


class PlaneDescription(TypedDict):
    """``describe()``: ``status --json`` prints it as ``"control_plane"``."""

    provider: str
    state: PlaneState
    revision: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write to the control plane.

    ``value`` is the provider selected (``None`` when cleared) or the activity
    state written (``active``, ``paused``, ``draining``); ``previous`` is what
    the plane held before (``None``: nothing); ``revision`` is the plane's
    revision after the write (``None`` when the provider keeps none);
    ``where`` names where it was written (a file, a server) for messages.
    """

    domain: str
    key: str
    tenant: str | None
    action: ChangeAction
    value: str | None
    previous: str | None
    revision: int | None
    actor: str
    at: float
    note: str = ""
    where: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``at`` in the one timestamp format."""
        return {
            "domain": self.domain, "key": self.key, "tenant": self.tenant,
            "action": self.action, "value": self.value, "previous": self.previous,
            "revision": self.revision, "actor": self.actor, "at": format_timestamp(self.at),
            "note": self.note, "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What the plane asks every instance to run: selections and activity decisions.

    ``selections`` is ``{domain: {key: provider}}``, ``tenants`` is ``{domain:
    {tenant: {key: provider}}}`` (only what the plane holds: the settings files
    come on top of nothing here), ``activity`` maps ``(domain, key)`` to the
    decision in force (keys without one are active).
    """

    selections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tenants: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    activity: Mapping[tuple[str, str], ActivityRecord] = field(default_factory=dict)
    revision: int | None = None

    def selection(self, domain: str, key: str, *, tenant: str | None = None) -> str | None:
        """The provider the plane selects for one key and scope, if any."""
        if tenant is None:
            return self.selections.get(domain, {}).get(key)
        return self.tenants.get(domain, {}).get(tenant, {}).get(key)


@dataclass(frozen=True, slots=True)
class Instances:
    """``instances()``: the status documents instances publish (see ``StatusDocument``).

    ``documents`` are live instances (and, when asked, lost ones: each has
    ``"alive": false``); ``skipped`` lists status records that could not be
    read (``{"path" or "id", "error"}``) - shown, never silently dropped.
    """

    documents: tuple[dict[str, Any], ...] = ()
    skipped: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """One instance's answer to a waited-for change (``wait``).

    ``result``: ``swapped``, ``health_failed``, ``missing``, ``paused``,
    ``drained``, ``resumed``, ``pending`` (timed out) or ``lost``.
    """

    instance: str
    result: str
    detail: str = ""


@runtime_checkable
class ControlPlane(Protocol):
    """Where operator decisions go and where instances report (ARCHITECTURE §12).

    A provider is built once per process by ``control_plane(...)`` from the
    settings files and kept until ``close()``.  Operator methods are
    synchronous and raise ``OneiricError`` subclasses with a category.
    """

    #: the provider name (``local``, ``redis``)
    provider: str
    #: where desired state and status live, for messages (a directory, a server)
    where: str

    def select(
        self,
        domain: str,
        key: str,
        provider: str | None,
        *,
        tenant: str | None = None,
        actor: str | None = None,
        expect_revision: int | None = None,
    ) -> Change:
        """Select ``provider`` for ``domain/key`` (``None``: clear the plane's selection)."""
        ...

    def set_activity(
        self,
        domain: str,
        key: str,
        state: ActivityState,
        *,
        note: str = "",
        actor: str | None = None,
        expect_revision: int | None = None,
    ) -> Change:
        """Write ``paused``, ``draining`` or ``active`` (resume) for ``domain/key``."""
        ...

    def desired(self) -> DesiredState:
        """The selections and activity decisions the plane holds now."""
        ...

    def instances(self, *, include_lost: bool = False) -> Instances:
        """The status documents running instances publish (lost ones too if asked)."""
        ...

    def describe(self) -> PlaneDescription:
        """``{"provider", "state", "revision"}`` as this process sees the plane."""
        ...

    def wait(self, change: Change, *, timeout: float) -> tuple[InstanceResult, ...]:
        """Block until every instance live at ``change`` acknowledged it (or ``timeout``)."""
        ...

    def attach(self, host: Host) -> AbstractAsyncContextManager[object]:
        """The instance side, entered by ``Host`` while it runs: apply desired state, report."""
        ...

    def close(self) -> None:
        """Release connections and files (idempotent)."""
        ...
