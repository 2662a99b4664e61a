"""What an authentic manifest may do from this source: URLs, scope, actions, factories.

Pure checks on a verified, schema-valid manifest, run before anything is
staged (``check_policy``) and once the artifacts are inspected
(``check_factories``): a signed manifest is authentic, and these rules keep
one compromised key from taking over every key, the control plane or code the
source does not ship.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from oneiric.core import DEFAULT_PRIORITIES

from ._errors import FactoryNotAllowedError, InsecureURLError, ScopeError
from ._fetch import scheme_of
from ._metadata import DISPATCHING_ACTIONS, admitted, references

if TYPE_CHECKING:
    from ._archive import ArchiveInfo
    from ._config import RemoteSource
    from ._models import ComponentSpec, Manifest

__all__ = ["check_artifact_url", "check_factories", "check_policy"]

_DEFAULT_PRIORITY = DEFAULT_PRIORITIES["manifest"]


def check_artifact_url(url: str, source: RemoteSource) -> None:
    """Artifact URLs must be https (``file:`` only for a local dev source that allows it)."""
    scheme = scheme_of(url)
    if scheme == "https":
        return
    if scheme == "file" and source.allow_local_artifacts and source.is_local:
        return
    raise InsecureURLError(
        f"artifact URL {url!r} is not https; a manifest may only point at https URLs "
        "(file: only with allow_local_artifacts for a local source)"
    )


def check_policy(source: RemoteSource, manifest: Manifest) -> None:
    """URL policy, scope and the allowlist for artifact-less factories (pure checks)."""
    for comp in manifest.components:
        if comp.domain == "control":
            raise ScopeError(
                f"manifest {manifest.repository} v{manifest.version} delivers "
                f"control/{comp.key}/{comp.provider}: domain control can never be delivered "
                "(the control plane comes from local settings only); remove it from the "
                "manifest"
            )
    used = {c.artifact for c in manifest.components if c.artifact is not None}
    for artifact_id in sorted(used):
        for url in manifest.artifacts[artifact_id].urls:
            check_artifact_url(url, source)
    for comp in manifest.components:
        where = f"{comp.domain}/{comp.key}/{comp.provider}"
        if not source.in_scope(comp.domain, comp.key):
            raise ScopeError(
                f"manifest {manifest.repository} v{manifest.version} delivers {where}, "
                f"outside this source's allowed_keys ({', '.join(source.allowed_keys or ())})"
                "; widen allowed_keys or fix the manifest"
            )
        priority = comp.priority if comp.priority is not None else _DEFAULT_PRIORITY
        if source.max_priority is not None and priority > source.max_priority:
            raise ScopeError(
                f"manifest {manifest.repository} v{manifest.version} gives {where} priority "
                f"{priority}, above this source's max_priority {source.max_priority}; "
                "lower it in the manifest or raise max_priority"
            )
        if comp.metadata is not None:
            _check_references(source, manifest, comp, where)
        if comp.artifact is None and not source.factory_allowed(comp.module):
            raise FactoryNotAllowedError(
                f"{where} factory {comp.factory!r}: package {comp.module.split('.')[0]!r} "
                "is not shipped by an artifact and not in factory_allowlist "
                f"({', '.join(source.factory_allowlist) or 'empty'}); add it or ship it"
            )


def _check_references(
    source: RemoteSource, manifest: Manifest, comp: ComponentSpec, where: str
) -> None:
    """Every action, topic and workflow the metadata names must be in ``allowed_actions``."""
    allowed = source.allowed_actions
    for ref in references(comp.domain, comp.metadata):
        if not admitted(allowed, ref):
            kit = " (a dispatching kit: only an exact pattern admits it)" if (
                ref.kind == "action" and ref.name in DISPATCHING_ACTIONS) else ""
            raise ScopeError(
                f"manifest {manifest.repository} v{manifest.version} delivers {where} whose "
                f"metadata.{ref.where} references {ref.kind} {ref.name!r}{kit}, outside "
                f"this source's allowed_actions ({', '.join(allowed) or 'none'}); add "
                f"'{ref}' to allowed_actions or fix the manifest"
            )


def check_factories(
    source: RemoteSource, manifest: Manifest, infos: Mapping[str, ArchiveInfo]
) -> None:
    """Every factory of an artifact's component imports from that artifact or the allowlist."""
    for comp in manifest.components:
        if comp.artifact is None:
            continue
        top = comp.module.split(".")[0]
        if top in infos[comp.artifact].top_level or source.factory_allowed(comp.module):
            continue
        raise FactoryNotAllowedError(
            f"{comp.domain}/{comp.key}/{comp.provider} factory {comp.factory!r}: package "
            f"{top!r} is not shipped by its artifact {comp.artifact!r} (ships "
            f"{', '.join(sorted(infos[comp.artifact].top_level)) or 'nothing'}) and not in "
            "factory_allowlist; fix the manifest"
        )
