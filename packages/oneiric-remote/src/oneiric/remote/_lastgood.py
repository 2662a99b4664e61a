"""Registering every configured source's last-good manifest, offline.

An application (``Host``) and the ``oneiric`` CLI both start by serving what
the last ``oneiric remote sync`` delivered, even when the repository is
unreachable; one function does it for both, so they agree on what a bad
section or a bad cache means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oneiric.core import OneiricError, Resolver

from ._sources import sources_from_settings
from ._sync import RemoteSync

__all__ = ["load_last_good"]


async def load_last_good(
    resolver: Resolver,
    remote: Mapping[str, Any],
    config_dir: Path | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
) -> dict[str, OneiricError]:
    """Register the cached last-good manifest of each source of a ``[remote]`` section.

    Signatures, expiry and cached artifact hashes are re-verified
    (``RemoteSync.load_last_good``); nothing is fetched.  An invalid section
    raises ``ConfigError``; a source whose cache fails verification is skipped
    and returned with its error (name -> error), like one never synced.
    ``state_dir`` locates the default cache (``<state_dir>/remote``) when the
    section sets no ``cache_dir``; ``None`` means ``state_dir()``.
    """
    failed: dict[str, OneiricError] = {}
    for name, source in sources_from_settings(remote, config_dir, state_dir=state_dir).items():
        try:
            await RemoteSync(resolver, source).load_last_good()
        except OneiricError as exc:
            failed[name] = exc
    return failed
