"""Envelope bytes to an authentic manifest of one source: the one sequence every reader runs.

A sync, an offline cold start, ``oneiric remote bundle`` and a bundle load all
turn untrusted bytes into a manifest the same way - signatures over the
source's pinned keys, schema, repository, then time - so no path can check
less than another.  State checks (rollback floor, equivocation) need the state
file and stay with ``RemoteSync``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ._errors import WrongRepositoryError

if TYPE_CHECKING:
    from ._config import RemoteSource
    from ._models import Manifest
    from ._verify import ManifestVerifier, VerifiedPayload

__all__ = ["verify_manifest"]


def verify_manifest(
    data: bytes, url: str, *, source: RemoteSource, verifier: ManifestVerifier, now: datetime
) -> tuple[VerifiedPayload, Manifest]:
    """Verify ``data`` (from ``url``) for ``source``; raise a ``RemoteError`` or return both."""
    from ._models import check_time, parse_manifest

    verified = verifier.verify(data)
    manifest = parse_manifest(verified.data)
    if manifest.repository != source.repository:
        raise WrongRepositoryError(
            f"manifest from {url} is for repository {manifest.repository!r}, this source "
            f"expects {source.repository!r}; fix the URL or the configured repository"
        )
    check_time(
        manifest,
        now,
        max_lifetime_days=source.max_lifetime_days,
        future_skew_s=source.limits.future_skew_s,
    )
    return verified, manifest
