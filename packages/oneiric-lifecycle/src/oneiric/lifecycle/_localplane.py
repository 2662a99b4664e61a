"""``LocalControlPlane`` (provider ``local``): the state directory of one machine.

Today's mechanisms behind the ``ControlPlane`` protocol, unchanged: a swap
writes the selection overlay (``<state dir>/selections.json``, locked and
atomic, so no concurrent write is lost; each running application's
``SelectionWatcher`` applies it); pause/drain/resume write the SQLite
``ActivityStore`` (``activity.sqlite``, polled by each ``LifecycleManager``);
status is the snapshots applications publish in ``status/``.  Nothing to run.

Revisions: the plane's revision is the overlay's write count, so
``expect_revision`` is honoured on ``select`` (checked under the overlay's
lock).  Activity decisions are not counted by it, so ``set_activity`` refuses
``expect_revision`` (exit 2) rather than pretend; ``wait`` is unavailable
(exit 5): one machine's applications apply a change within their poll
interval and report it in status, they do not acknowledge it.
"""

from __future__ import annotations

import contextlib
import os
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from oneiric.core import OneiricError, state_dir
from oneiric.core.helpers import (
    ACTIVITY_FILE,
    overlay_revision,
    refuse_control_domain,
    update_overlay,
)

from ._control import (
    Change,
    ChangeAction,
    DesiredState,
    InstanceResult,
    Instances,
    PlaneDescription,
)

if TYPE_CHECKING:
    from ._activity import ActivityState, ActivityStore
    from ._host import Host

__all__ = ["LocalControlPlane"]

_ACTIONS: dict[str, ChangeAction] = {"paused": "pause", "draining": "drain", "active": "resume"}


class LocalControlPlane:
    """The ``local`` control plane: overlay, activity store and status snapshots in a state dir.

    ``settings`` is the provider's validated settings (``local`` has none);
    ``state_dir`` defaults to ``oneiric.core.state_dir()`` (``ONEIRIC_STATE_DIR``
    or XDG), resolved on each call as the CLI and the lifecycle do.
    """

    provider = "local"

    def __init__(
        self, settings: object = None, *, state_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self._state_arg = state_dir
        self._store: ActivityStore | None = None

    def _dir(self, *, create: bool = False) -> Path:
        return state_dir(self._state_arg, create=create)

    @property
    def where(self) -> str:
        """The state directory."""
        return str(self._dir())

    # ------------------------------------------------------------ operator

    def _activity(self, *, create: bool) -> ActivityStore | None:
        """The shared activity store; None when reading and it was never written."""
        if self._store is None:
            path = self._dir(create=create) / ACTIVITY_FILE
            if not create and not path.exists():
                return None
            from ._activity import ActivityStore

            self._store = ActivityStore(path)
        return self._store

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
        """Write the overlay (locked read-change-write, atomic replace).

        The overlay records no actor: ``Change.actor`` is ``actor`` or ``""``
        (who swapped is not looked up, so a swap imports no getpass).
        """
        written = update_overlay(
            self._dir(create=True), domain, key, provider,
            tenant=tenant, expect_revision=expect_revision,
        )
        return Change(
            domain, key, tenant, "select" if provider is not None else "clear", provider,
            written.previous, written.revision, actor or "", time.time(),
            where=str(written.path),
        )

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
        """Write the activity store (one SQLite transaction with its history row)."""
        action = _ACTIONS[state]
        refuse_control_domain(domain, f"oneiric {action} {domain} {key}")
        if expect_revision is not None:
            raise OneiricError(
                f"oneiric {action} --expect-revision: the local control plane counts revisions "
                "of its selection overlay only, not of pause/drain/resume; drop "
                "--expect-revision (or select a fleet control plane in the settings)",
                category="usage",
            )
        store = self._activity(create=True)
        assert store is not None
        previous = store.get(domain, key).state
        record = getattr(store, action)(domain, key, note=note, actor=actor)
        return Change(
            domain, key, None, action, record.state, previous, None, record.actor,
            record.at if record.at is not None else time.time(), note, str(store.path),
        )

    def desired(self) -> DesiredState:
        """The overlay's selections and the activity store's decisions (nothing created)."""
        from oneiric.core import read_overlay

        directory = self._dir()
        overlay = read_overlay(directory)
        store = self._activity(create=False)
        records = store.records() if store is not None else ()
        return DesiredState(
            selections=overlay["selections"], tenants=overlay["tenants"],
            activity={(r.domain, r.key): r for r in records if r.state != "active"},
            revision=overlay_revision(directory),
        )

    def instances(self, *, include_lost: bool = False) -> Instances:
        """The status snapshots in ``<state dir>/status`` (not-found error: no state dir)."""
        directory = self._dir()
        if not directory.is_dir():
            raise OneiricError(
                f"state directory {str(directory)!r} does not exist; pass the --state-dir "
                "(or ONEIRIC_STATE_DIR) of the running application",
                category="not_found",
            )
        from ._status import read_snapshots

        skipped: list[dict[str, str]] = []
        docs = read_snapshots(directory, include_stale=include_lost, skipped=skipped)
        return Instances(tuple(docs), tuple(skipped))

    def describe(self) -> PlaneDescription:
        """Always reachable; the revision is the overlay's (None if it cannot be read)."""
        try:
            revision: int | None = overlay_revision(self._dir())
        except OneiricError:
            revision = None  # a malformed overlay: 'status' still reports, the watcher says why
        return {"provider": self.provider, "state": "ok", "revision": revision}

    def wait(self, change: Change, *, timeout: float) -> tuple[InstanceResult, ...]:
        """Not supported: applications on one machine do not acknowledge changes."""
        raise OneiricError(
            "waiting for acknowledgements is not supported by the local control plane: "
            "applications on this machine apply a change within their poll interval and "
            "show it in 'oneiric status'; select a fleet control plane in the settings to wait",
            category="unavailable",
        )

    # ------------------------------------------------------------ instance

    def attach(self, host: Host) -> AbstractAsyncContextManager[object]:
        """Nothing more to start: the host's own state-dir jobs are this plane's instance side.

        The lifecycle polls the activity store and publishes status snapshots,
        the watcher applies the overlay, and settings loading read it before
        the first activation - with or without a ``Host``, as before.
        """
        return contextlib.nullcontext(self)

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def __repr__(self) -> str:
        return f"<LocalControlPlane state_dir={self._state_arg!r}>"
