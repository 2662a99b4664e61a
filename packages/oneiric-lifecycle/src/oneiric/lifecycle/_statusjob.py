"""The manager's status job: the status document, and the snapshot the CLI reads.

Any change of state calls ``_dirty()``; the snapshot is then rewritten at most
once per ``status_interval`` (one timer, on the manager's loop, whatever
thread marked it dirty), so a burst of swaps costs one write.
"""

from __future__ import annotations

import threading
from pathlib import Path

from oneiric.core import Candidate, OneiricError, get_logger

from ._base import ManagerBase
from ._status import KeyStatus, StatusDocument, document, key_status, write_snapshot

__all__ = ["StatusJob"]

_log = get_logger("oneiric.lifecycle.manager")


class StatusJob(ManagerBase):
    """``status()``, ``write_status()`` and the coalesced snapshot timer."""

    @property
    def status_path(self) -> Path | None:
        """Where the status snapshot is written (known once the manager ran on its loop)."""
        return self._status_file

    def status(self, domain: str | None = None) -> StatusDocument:
        """The status document (see ``oneiric.lifecycle._status`` for its shape)."""
        keys: list[KeyStatus] = []
        for slot in sorted(
            self._slots.values(), key=lambda s: (s.domain, s.key, s.tenant or "")
        ):
            if domain is not None and slot.domain != domain:
                continue
            winner: Candidate | None
            try:
                winner = self.resolver.resolve(slot.domain, slot.key, tenant=slot.tenant)
                winner_error = None
            except OneiricError as exc:
                winner, winner_error = None, str(exc)
            current = slot.current
            registered = True
            if current is not None and current.candidate is not None:
                identity = current.candidate.identity
                registered = any(
                    c.identity == identity
                    for c in self.resolver.candidates(slot.domain, slot.key)
                )
            keys.append(
                key_status(
                    slot,
                    winner=winner,
                    winner_error=winner_error,
                    registered=registered,
                    activity=self._activity.get((slot.domain, slot.key)),
                )
            )
        store = self.activity_store
        return document(
            keys,
            started_at=self._started_at,
            written_at=self._clock(),
            config=[w.status() for w in self._watchers],
            activity={
                "path": str(store.path) if store is not None else None,
                "error": self._activity_error,
            },
        )

    def _dirty(self) -> None:
        """Schedule a snapshot write (coalesced: at most one per ``status_interval``)."""
        loop = self._loop
        if (
            loop is None
            or self._closed
            or self._status_file is None
            or self._snapshot_timer is not None
        ):
            return
        if threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._dirty)
            return
        self._snapshot_timer = loop.call_later(self.config.status_interval, self.write_status)

    def write_status(self) -> Path | None:
        """Write the status snapshot now; return its path (None when disabled)."""
        self._snapshot_timer = None
        path = self._status_file
        if path is None or self._closed:
            return None
        try:
            write_snapshot(path, self.status())
        except OSError as exc:
            _log.warning("cannot write status snapshot", path=str(path), error=str(exc))
            return None
        return path
