"""Persistent trust state: rollback floor, equivocation digest, last-good manifest, lock.

The state file is named from the trust fingerprint (repository, sorted keyids,
threshold), never from URLs: moving to a mirror keeps the floor, changing the
trust starts a new file whose floor carries over only when the new key set still
holds ``threshold`` of the old keys.  Writes are atomic and durable
(``oneiric.core.helpers.atomic_write``); a file that does not parse is a
``StateError``, never a silent reset, because a reset floor is exactly what a
rollback attacker wants.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import get_logger
from oneiric.core.helpers import async_exclusive_lock, atomic_write

from ._errors import EquivocationError, ManifestFormatError, RollbackError, StateError

if TYPE_CHECKING:
    from ._config import RemoteSource
    from ._models import Manifest

__all__ = ["State", "StateStore", "check_version", "last_good_text", "read_json"]

_log = get_logger("oneiric.remote.state")
FORMAT = 1
HISTORY = 3


def read_json(path: Path) -> Any:
    """Read a JSON file (None when missing; ``ValueError`` when it is not JSON)."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except RecursionError:
        raise ValueError(f"{path} nests too deeply to be JSON written by oneiric") from None


@dataclass
class State:
    """What one trust configuration remembers between runs and processes."""

    repository: str
    keyids: list[str]
    threshold: int
    highest_version: int = 0
    highest_digest: str | None = None
    active_version: int | None = None
    active_digest: str | None = None
    last_good: str | None = None  # the envelope (ASCII JSON) of the active version
    last_good_url: str | None = None
    #: active versions, newest last: {"version", "digest", "artifacts": [sha256, ...]}
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, **asdict(self)}
        return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_doc(cls, doc: Any, path: Path) -> State:
        try:
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("unknown format")
            body = {k: v for k, v in doc.items() if k != "format"}
            state = cls(**body)
            checks = [
                isinstance(state.repository, str),
                isinstance(state.keyids, list) and all(isinstance(k, str) for k in state.keyids),
                type(state.threshold) is int,
                type(state.highest_version) is int and state.highest_version >= 0,
                state.highest_digest is None or isinstance(state.highest_digest, str),
                state.active_version is None or type(state.active_version) is int,
                state.last_good is None or isinstance(state.last_good, str),
                isinstance(state.history, list)
                and all(
                    isinstance(h, dict)
                    and type(h.get("version")) is int
                    and isinstance(h.get("artifacts"), list)
                    for h in state.history
                ),
            ]
            if not all(checks):
                raise ValueError("field types")
        except (TypeError, ValueError) as exc:
            raise StateError(
                f"state file {path} is corrupt ({exc}); refusing to reset the rollback floor "
                "silently: restore it from backup, or delete it and set min_version"
            ) from None
        return state


def check_version(
    state: State, manifest: Manifest, digest: str, *, min_version: int | None
) -> bool:
    """True for 'same as active'; raises on rollback (or below ``min_version``), equivocation."""
    version = manifest.version
    floor = min_version
    if floor is not None and version < floor:
        raise RollbackError(
            f"manifest {manifest.repository} version {version} is below min_version {floor}; "
            "a mirror is replaying an old manifest"
        )
    if version < state.highest_version:
        raise RollbackError(
            f"manifest {manifest.repository} version {version} is older than version "
            f"{state.highest_version} verified before; a mirror is replaying an old manifest"
        )
    if version == state.highest_version:
        if digest != state.highest_digest:
            raise EquivocationError(
                f"manifest {manifest.repository} version {version} differs from the version "
                f"{version} verified before; two payloads were signed with one version - "
                "treat the signing keys as compromised"
            )
        return state.active_version == version and state.active_digest == digest
    return False


def last_good_text(data: bytes) -> str:
    """The envelope as ASCII text for the state file.

    A mirror may add junk signatures with non-ASCII keyids to a genuine envelope
    (unknown keyids are ignored, so it still verifies): such an envelope is kept
    re-encoded with JSON escapes, which parses to the same signatures and the same
    payload bytes, so the offline re-verification sees exactly what was verified.
    """
    if data.isascii():
        return data.decode("ascii")
    from ._envelope import encode_envelope, parse_envelope

    try:
        envelope = parse_envelope(data)
    except ManifestFormatError as exc:  # a custom verifier's format: keep nothing half-right
        raise StateError(
            f"the verified envelope cannot be stored as last-good ({exc}); use an ASCII "
            "envelope"
        ) from None
    signatures = [{"keyid": s.keyid, "sig": s.sig} for s in envelope.signatures]
    return encode_envelope(envelope.payload_type, envelope.payload, signatures).decode("ascii")


class StateStore:
    """The state file of one trust fingerprint inside a cache dir, and the cache dir's lock."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        fingerprint: str,
        repository: str,
        keyids: list[str],
        threshold: int,
    ) -> None:
        self.cache_dir = cache_dir
        self.path = cache_dir / f"state-{fingerprint}.json"
        self.repository = repository
        self.keyids = sorted(set(keyids))
        self.threshold = threshold

    @classmethod
    def of(cls, source: RemoteSource, cache_dir: Path) -> StateStore:
        """The state file of ``source``'s trust fingerprint in ``cache_dir``."""
        return cls(cache_dir, fingerprint=source.fingerprint, repository=source.repository,
                   keyids=[k.keyid for k in source.trusted_keys], threshold=source.threshold)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> State:
        """The stored state, or a fresh one whose floor may carry over from a rotation."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self._fresh()
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc.strerror or exc}")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            doc = None
        state = State.from_doc(doc, self.path)
        if state.repository != self.repository or state.threshold != self.threshold:
            raise StateError(
                f"state file {self.path} belongs to {state.repository!r} threshold "
                f"{state.threshold}, not {self.repository!r}; the cache dir was tampered with"
            )
        return state

    def save(self, state: State) -> None:
        try:
            atomic_write(self.path, state.to_bytes())
        except OSError as exc:
            raise StateError(
                f"cannot write state file {self.path}: {exc.strerror or exc}; "
                "check the cache dir's permissions and free space"
            ) from None

    def _fresh(self) -> State:
        """A new state; the floor carries over from a previous trust set when it overlaps."""
        state = State(self.repository, list(self.keyids), self.threshold)
        mine = set(self.keyids)
        for other in sorted(self.cache_dir.glob("state-*.json")):
            if other == self.path:
                continue
            try:
                old = State.from_doc(json.loads(other.read_bytes()), other)
            except (StateError, ValueError, OSError, RecursionError) as exc:
                _log.warning("ignoring unreadable state file", path=str(other), error=str(exc))
                continue
            if old.repository != self.repository:
                continue
            kept = len(mine & set(old.keyids))
            if kept >= old.threshold and old.highest_version > state.highest_version:
                state.highest_version = old.highest_version
                state.highest_digest = old.highest_digest
                state.last_good = old.last_good
                state.last_good_url = old.last_good_url
                state.active_version = old.active_version
                state.active_digest = old.active_digest
                state.history = list(old.history)
                _log.info(
                    "rollback floor carried over from previous trust set",
                    repository=self.repository,
                    floor=old.highest_version,
                    kept_keys=kept,
                )
        return state

    @contextlib.asynccontextmanager
    async def lock(self, timeout: float) -> AsyncIterator[None]:
        """Exclusive lock on ``cache_dir/lock``, polled, given up after ``timeout`` seconds.

        ``oneiric.core.helpers.async_exclusive_lock``: the event loop keeps
        running while another process syncs, and a sync gives up with a
        ``StateError`` when that process holds the lock too long.
        """
        path = self.cache_dir / "lock"
        async with contextlib.AsyncExitStack() as held:
            try:  # only taking the lock is converted: errors of the body pass through
                await held.enter_async_context(async_exclusive_lock(path, timeout=timeout))
            except TimeoutError:
                raise StateError(
                    f"timed out after {timeout:g} s waiting for {path}; another "
                    "process is syncing - retry, or check for a hung process"
                ) from None
            except OSError as exc:
                raise StateError(
                    f"cannot open lock file {path}: {exc.strerror or exc}; the cache dir entry "
                    "'lock' must be a regular file - remove it and resync"
                ) from None
            yield
