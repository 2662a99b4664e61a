"""Manifest components as core ``Candidate`` values, with their provenance in metadata.

Each candidate carries ``Source("manifest", repository, version)`` and, in its
metadata, the manifest URL, its artifact and sha256, and an ``unavailable``
reason when the artifact's wheel requires something not installed (the
``oneiric.remote._veto`` hook turns that into a veto).  Any refusal by core is a
``ManifestFormatError`` naming the component.

``install_candidates`` is the one way a verified manifest's candidates enter a
resolver (a sync, an offline cold start, a bundle load): one batch, the
repository's vendor dirs swapped on ``sys.path``, and the version remembered
by the resolver so a later sync of the same bytes registers nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oneiric.core import Candidate, OneiricError, Resolver, Source
from oneiric.core.helpers import one_line

from ._activate import activate_paths
from ._errors import ManifestFormatError
from ._metadata import freeze
from ._requirements import missing_requirements

if TYPE_CHECKING:
    from ._archive import ArchiveInfo
    from ._models import Manifest

__all__ = ["build_candidates", "install_candidates", "registered_versions"]


def build_candidates(
    manifest: Manifest, url: str, infos: Mapping[str, ArchiveInfo]
) -> tuple[list[Candidate], list[str]]:
    """The manifest's components as candidates, and ``domain/key/provider: reason`` of those
    whose wheel requirements are missing (marked ``unavailable``: the veto refuses them)."""
    src = Source("manifest", manifest.repository, str(manifest.version), detail=url)
    unavailable_by_artifact = {
        aid: missing_requirements(info.requires_dist) for aid, info in infos.items()
    }
    candidates: list[Candidate] = []
    unavailable: list[str] = []
    for comp in manifest.components:
        metadata: dict[str, object] = dict(freeze(comp.metadata or {}))
        metadata["manifest_url"] = url
        if comp.artifact is not None:
            metadata["artifact"] = comp.artifact
            metadata["sha256"] = manifest.artifacts[comp.artifact].sha256
            missing = unavailable_by_artifact.get(comp.artifact) or []
            if missing:
                reason = f"requires {', '.join(missing)} which is not installed"
                metadata["unavailable"] = reason
                unavailable.append(f"{comp.domain}/{comp.key}/{comp.provider}: {reason}")
        try:
            candidate = Candidate(
                comp.domain,
                comp.key,
                comp.provider,
                comp.factory,
                priority=comp.priority,
                stack_level=comp.stack_level,
                capabilities=frozenset(comp.capabilities),
                source=src,
                description=comp.description,
                metadata=metadata,
            )
        except (OneiricError, ValueError, TypeError) as exc:
            text = one_line(exc)
            raise ManifestFormatError(
                f"manifest {manifest.repository} v{manifest.version} component "
                f"{comp.domain}/{comp.key}/{comp.provider} is not a valid candidate "
                f"({text}); fix the manifest and sign it again"
            ) from None
        candidates.append(candidate)
    return candidates, unavailable


def _new_registry() -> dict[str, tuple[int, str]]:
    return {}


def registered_versions(resolver: Resolver) -> dict[str, tuple[int, str]]:
    """What was installed into ``resolver``: repository -> (version, payload digest)."""
    return resolver.extension("oneiric.remote", _new_registry)


def install_candidates(
    resolver: Resolver,
    manifest: Manifest,
    digest: str,
    candidates: Sequence[Candidate],
    vendor_dirs: Sequence[Path],
) -> None:
    """Replace the repository's candidates in one batch and its vendor dirs on sys.path."""
    repository = manifest.repository
    with resolver.batch():
        resolver.unregister_source(("manifest", repository))
        for candidate in candidates:
            resolver.register(candidate)
        activate_paths(repository, vendor_dirs)
    registered_versions(resolver)[repository] = (manifest.version, digest)
