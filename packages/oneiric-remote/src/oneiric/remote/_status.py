"""Sync status: one JSON snapshot per source in the cache dir, for ``oneiric remote status``.

Observability only: a status file that cannot be read or written never fails a
sync (it is logged).  Rewritten at every sync, so written atomically but not
fsynced; its times are in the one JSON format (``format_timestamp``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import get_logger
from oneiric.core.helpers import atomic_write

from ._state import read_json

if TYPE_CHECKING:
    from ._config import RemoteSource

__all__ = ["StatusFile", "SyncStatus", "read_status"]

_log = get_logger("oneiric.remote.sync")


@dataclass
class SyncStatus:
    """What ``status-<fingerprint>.json`` holds (its keys are the file shape)."""

    repository: str
    url: str
    fingerprint: str
    last_attempt: str | None = None
    last_success: str | None = None
    version: int | None = None
    highest_version: int | None = None
    offline: bool = False
    restart_required: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    last_error: str | None = None
    last_error_type: str | None = None
    breaker: str = "closed"
    unavailable: list[str] = field(default_factory=list)
    factory_errors: dict[str, str] = field(default_factory=dict)


def read_status(cache_dir: Path) -> list[dict[str, Any]]:
    """Every status snapshot in ``cache_dir`` (what ``oneiric remote status`` prints).

    Each is the JSON document as written (``SyncStatus``'s fields); unreadable
    files are skipped.
    """
    found = []
    for path in sorted(cache_dir.glob("status-*.json")):
        try:
            doc = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return found


class StatusFile:
    """The status snapshot of one source, loaded once and kept in memory between syncs."""

    def __init__(self, source: RemoteSource) -> None:
        self.source = source
        self.current: SyncStatus | None = None

    def path(self, cache: Path) -> Path:
        return cache / f"status-{self.source.fingerprint}.json"

    def load(self, cache: Path) -> SyncStatus:
        """The status in memory; at first use, what survives a restart is read back."""
        if self.current is None:
            source = self.source
            status = SyncStatus(source.repository, source.url, source.fingerprint)
            try:
                doc = read_json(self.path(cache))
            except (OSError, ValueError):  # observability only: never fails a sync
                doc = None
            if isinstance(doc, dict):
                for name in ("last_success", "version", "factory_errors"):
                    if name in doc:
                        setattr(status, name, doc[name])
            self.current = status
        return self.current

    def save(self, cache: Path, status: SyncStatus) -> None:
        try:  # observed, rewritten every sync: atomic, not fsynced
            atomic_write(
                self.path(cache),
                json.dumps(asdict(status), sort_keys=True, indent=1).encode(),
                durable=False,
            )
        except OSError as exc:
            _log.warning("cannot write status", error=str(exc))

    def record_error(self, error: BaseException) -> None:
        """Store ``error`` as the last error (outside a sync; never raises)."""
        try:
            cache = self.source.resolved_cache_dir()
            status = self.load(cache)
            status.last_error = str(error)
            status.last_error_type = type(error).__name__
            self.save(cache, status)
        except Exception as exc:  # status is observability only
            _log.warning("cannot record sync failure", error=str(exc))
