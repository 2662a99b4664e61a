"""The machine-owned selection overlay ``<state dir>/selections.json``.

Written by ``oneiric swap``, read by ``load_settings`` and the watcher; it
takes precedence over the user's files, which are never rewritten.  Shape:
``{"selections": {domain: {key: provider}}, "tenants": {domain: {tenant: {key:
provider}}}, "revision": n}``.  No pydantic here: a swap does not load it.

``revision`` (an additive key, stripped by ``read_overlay`` so its result keeps
its shape) counts writes: re-issuing the selection already in the file still
changes the file, so a running application's watcher sees the request and
retries a swap that failed before (its lifecycle reconciles selected keys
whose bound provider is not the winner).  It is also what the ``local``
control plane reports as its revision and checks a compare-and-set against
(``update_overlay(..., expect_revision=n)``, under the same lock).

The reserved domain ``control`` never comes from here: ``update_overlay``
refuses it and reading ignores it, so a hand-edited entry cannot change a
process's control plane (it is chosen in the settings files only).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._candidate import validate_name
from ._errors import ConfigError, OneiricError
from ._filelock import exclusive_lock
from ._fs import atomic_write
from ._precedence import parse_selection
from ._reserved import CONTROL_DOMAIN, refuse_control_domain
from ._safeload import load_json, read_text
from ._settings_checks import OVERLAY_FIX, check_overlay
from ._statedir import OVERLAY_FILE, make_private_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._resolver import Resolver

__all__ = [
    "Overlay",
    "OverlayWrite",
    "apply_overlay",
    "overlay_revision",
    "read_overlay",
    "update_overlay",
    "write_overlay",
]

#: ``{"selections": {...}, "tenants": {...}}`` as read from the file.  The inner
#: values are JSON of any shape until ``check_overlay`` has accepted them.
Overlay = dict[str, dict[str, Any]]

_WRITE_FIX = "set ONEIRIC_STATE_DIR to a writable directory"


@dataclass(frozen=True, slots=True)
class OverlayWrite:
    """What one ``update_overlay`` did: the file, its new revision, the value it replaced."""

    path: Path
    revision: int
    previous: str | None


def read_overlay(state_dir: str | os.PathLike[str]) -> Overlay:
    """Read ``<state dir>/selections.json`` (empty if absent); ConfigError if malformed."""
    return _read(Path(state_dir))[0]


def overlay_revision(state_dir: str | os.PathLike[str]) -> int:
    """The overlay's write count (0 when there is no file); ConfigError if malformed."""
    return _read(Path(state_dir))[1]


def _read(directory: Path) -> tuple[Overlay, int]:
    """The overlay's selections and tenants, and its write ``revision`` (0 if none)."""
    path = directory / OVERLAY_FILE
    try:
        text = read_text(
            path, "selection overlay", "check its permissions or set ONEIRIC_STATE_DIR"
        )
    except FileNotFoundError:
        return {"selections": {}, "tenants": {}}, 0
    data = load_json(text, path, "selection overlay", OVERLAY_FIX)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("selections", {}), dict)
        or not isinstance(data.get("tenants", {}), dict)
    ):
        raise ConfigError(
            f"{path}: selection overlay must be an object with 'selections' and 'tenants' "
            "mappings; fix or delete the file"
        )
    revision = data.pop("revision", 0)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        revision = 0  # a hand-edited value: the next write restarts the count
    data.setdefault("selections", {})
    data.setdefault("tenants", {})
    for scope in ("selections", "tenants"):
        data[scope].pop(CONTROL_DOMAIN, None)  # settings files only (module docstring)
    return data, revision


def write_overlay(
    state_dir: str | os.PathLike[str],
    domain: str,
    key: str,
    provider: str | None,
    *,
    tenant: str | None = None,
) -> Path:
    """Set (or with ``provider=None`` clear) one selection in the overlay, atomically.

    ``update_overlay`` without a compare-and-set, returning only the path.
    """
    return update_overlay(state_dir, domain, key, provider, tenant=tenant).path


def update_overlay(
    state_dir: str | os.PathLike[str],
    domain: str,
    key: str,
    provider: str | None,
    *,
    tenant: str | None = None,
    expect_revision: int | None = None,
) -> OverlayWrite:
    """Set (or with ``provider=None`` clear) one selection in the overlay, atomically.

    Read, changed and written under an exclusive lock (``.selections.json.lock``
    beside it), so concurrent ``oneiric swap`` commands each keep their
    selection; written with ``atomic_write`` (temp file, fsync, rename, directory
    fsync), so a running application's watcher never reads half a file and a
    crash never loses an acknowledged write.  Every write increments the file's
    ``revision``, so writing the selection already there is still a change a
    watcher sees (a re-issued ``oneiric swap`` retries a failed swap).
    ``expect_revision``: write only if the file is still at that revision
    (checked under the lock), else a *refused* ``OneiricError`` (exit 6) and
    nothing is written.  Domain ``control`` is refused (exit 6).
    """
    directory = Path(state_dir)
    validate_name(domain, "domain")
    validate_name(key, "key")
    refuse_control_domain(domain, f"selecting {domain}/{key}")
    if provider is not None:
        validate_name(parse_selection(provider)[0], "provider")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ConfigError(f"invalid tenant {tenant!r}: expected a non-empty string")
    target = directory / OVERLAY_FILE
    try:
        make_private_dirs(directory)
        with exclusive_lock(directory / f".{OVERLAY_FILE}.lock"):
            # Read, change, replace - all under the lock, so no concurrent writer's
            # selection is lost (a rename alone makes writes atomic, not updates).
            # Inside, only OneiricError is raised: the OSError below is the lock's.
            data, revision = _read(directory)
            if expect_revision is not None and expect_revision != revision:
                raise OneiricError(
                    f"{target}: selection overlay is at revision {revision}, not the expected "
                    f"{expect_revision}; nothing was written; check 'oneiric status' and retry "
                    "with the current revision",
                    category="refused",
                )
            # The whole file is checked before it is changed: a domain entry that is
            # not an object would crash the update, and rewriting the file would
            # keep any other malformed entry.  Nothing is written on error.
            check_overlay(data, target)
            if tenant is None:
                scope = data["selections"].setdefault(domain, {})
            else:
                scope = data["tenants"].setdefault(domain, {}).setdefault(tenant, {})
            previous = scope.get(key)
            if provider is None:
                scope.pop(key, None)
            else:
                scope[key] = provider
            _write(target, {**data, "revision": revision + 1})
    except OSError as exc:
        raise ConfigError(
            f"{target}: cannot lock selection overlay: {exc.strerror or exc}; {_WRITE_FIX}"
        ) from None
    return OverlayWrite(target, revision + 1, previous if isinstance(previous, str) else None)


def _write(target: Path, data: dict[str, object]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{target}: cannot write selection overlay: {exc.strerror or exc}; {_WRITE_FIX}"
        ) from None


def apply_overlay(resolver: Resolver, state_dir: str | os.PathLike[str]) -> bool:
    """Set the overlay's selections (every scope) on ``resolver``; ``False`` if there is none.

    What ``load_settings(...).apply`` does when there are no settings files -
    the same overlay checks, one batch - without importing the settings
    models: a control command (``oneiric pause``, ``swap``, ``status``) run
    after an earlier ``swap`` needs the selections, not pydantic.  ``state_dir``
    must already be checked private (``state_dir(..., create=False)``).
    """
    directory = Path(state_dir)
    if not (directory / OVERLAY_FILE).exists():
        return False
    overlay = read_overlay(directory)
    check_overlay(overlay, directory / OVERLAY_FILE)
    with resolver.batch():
        for domain, selections in overlay["selections"].items():
            resolver.set_selections(domain, dict(selections))
        for domain, tenants in overlay["tenants"].items():
            for tenant, selections in tenants.items():
                resolver.set_selections(domain, dict(selections), tenant=tenant)
    return True
