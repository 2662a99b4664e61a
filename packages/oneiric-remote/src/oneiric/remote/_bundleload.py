"""Registering each configured source from a bundle, on a read-only filesystem.

A serverless function's deployment package cannot be written, so this path
never creates, modifies, locks or deletes a file - not in the bundle, not in a
cache or state dir (the last-good cache's load takes a lock and cleans temp
files: it writes).  Everything a sync would check is checked again, with the
trusted keys of *these* settings (never anything the bundle says): signatures,
threshold, schema, repository, expiry, ``min_version``, scope and factories,
each blob's size and sha256, each vendor dir against its blob file by file,
module shadowing.  Vendor dirs are imported in place through the source-only
path hook of ``_activate``, which reads no bytecode and writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import OneiricError, Resolver, get_logger
from oneiric.core.helpers import utc_now

from . import _veto
from ._archive import ArchiveInfo, inspect, matches_blob
from ._authentic import verify_manifest
from ._bundleindex import BLOBS, VENDOR, BundledSource, read_index
from ._candidates import build_candidates, install_candidates
from ._envelope import MAX_MANIFEST_BYTES
from ._errors import ArtifactDigestError, RollbackError, StateError
from ._install import blob_matches
from ._policy import check_factories, check_policy
from ._shadowing import check_shadowing
from ._sources import sources_from_settings
from ._verify import Ed25519Verifier

if TYPE_CHECKING:
    from ._config import RemoteSource
    from ._models import Manifest
    from ._verify import VerifiedPayload

__all__ = ["Checked", "check_bundled", "load_bundle"]

_log = get_logger("oneiric.remote.bundle")


@dataclass(frozen=True)
class Checked:
    """A bundled source that passed every check: ready to register."""

    verified: VerifiedPayload
    manifest: Manifest
    infos: Mapping[str, ArchiveInfo]
    vendor_dirs: tuple[Path, ...]


def _rebuild(root: Path) -> str:
    return f"the bundle {root} was modified or is incomplete - build it again"


def _read_envelope(root: Path, entry: BundledSource) -> bytes:
    path = root / entry.envelope
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise StateError(
            f"cannot read bundled envelope {path} ({exc.strerror or exc}); {_rebuild(root)}"
        ) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise StateError(f"bundled envelope {path} is above {MAX_MANIFEST_BYTES} bytes; "
                         f"{_rebuild(root)}")
    return data


def check_bundled(
    source: RemoteSource, entry: BundledSource, root: Path, *, now: datetime,
    vendor_home: Path | None = None,
) -> Checked:
    """Every check of a sync on one bundled source, reading only; raises a ``RemoteError``.

    ``vendor_home`` is the directory whose ``vendor/`` dirs may already provide the
    artifacts' names without it being shadowing (default ``root``: reloading this
    bundle); the writer passes the cache dir it copied from, as its sync did.
    """
    data = _read_envelope(root, entry)
    verifier = Ed25519Verifier(source.trusted_keys, source.threshold)  # the settings' keys
    verified, manifest = verify_manifest(
        data, entry.url, source=source, verifier=verifier, now=now
    )
    if verified.digest != entry.digest or manifest.version != entry.version:
        raise StateError(
            f"bundled envelope of {source.repository!r} is version {manifest.version}, the index "
            f"says {entry.version} (or another digest); {_rebuild(root)}"
        )
    if source.min_version is not None and manifest.version < source.min_version:
        raise RollbackError(
            f"bundled manifest {manifest.repository} version {manifest.version} is below "
            f"min_version {source.min_version}; build the bundle from a newer sync"
        )
    check_policy(source, manifest)
    used = sorted({c.artifact for c in manifest.components if c.artifact is not None})
    infos: dict[str, ArchiveInfo] = {}
    vendor_dirs: list[Path] = []
    for artifact_id in used:
        spec = manifest.artifacts[artifact_id]
        blob = root / BLOBS / spec.sha256
        if not blob_matches(blob, spec):
            raise ArtifactDigestError(
                f"bundled artifact {artifact_id!r} ({blob}) is missing or does not match the "
                f"manifest's size and sha256; {_rebuild(root)}"
            )
        info = inspect(blob, spec.kind, source.limits)
        vendor = root / VENDOR / spec.sha256
        if not vendor.is_dir() or not matches_blob(blob, vendor, info, source.limits):
            raise ArtifactDigestError(
                f"bundled vendor dir {vendor} of artifact {artifact_id!r} differs from its "
                f"verified archive; {_rebuild(root)}"
            )
        infos[artifact_id] = info
        vendor_dirs.append(vendor)
    check_shadowing(infos.items(), vendor_home or root)
    check_factories(source, manifest, infos)
    return Checked(verified, manifest, infos, tuple(vendor_dirs))


def load_bundle(
    resolver: Resolver,
    remote: Mapping[str, Any],
    bundle_dir: str | Path,
    config_dir: Path | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, OneiricError]:
    """Register each ``[remote]`` source from ``bundle_dir`` (written by ``oneiric remote bundle``).

    The same outcome as ``load_last_good`` - each source's candidates
    registered, its vendor dirs on ``sys.path`` - from a directory that is
    only read.  An invalid section, or a bundle dir without a readable index,
    raises ``ConfigError`` (one line, naming the path); a source that fails
    verification or is not in the bundle is skipped and returned with its
    error (name -> error).  Bundled sources the settings do not configure are
    ignored: without their trusted keys nothing of theirs can be verified.
    """
    root = Path(bundle_dir)
    sources = sources_from_settings(remote, config_dir)
    index = read_index(root)
    _veto.ensure_registered(resolver.hooks)
    moment = now or utc_now()
    failed: dict[str, OneiricError] = {}
    for name, source in sources.items():
        entry = index.sources.get(name)
        try:
            if entry is None:
                raise StateError(
                    f"source {name!r} is not in the bundle {root} (it has "
                    f"{', '.join(sorted(index.sources)) or 'none'}); bundle it with "
                    f"'oneiric remote bundle OUT'"
                )
            checked = check_bundled(source, entry, root, now=moment)
            candidates, unavailable = build_candidates(checked.manifest, entry.url, checked.infos)
            install_candidates(
                resolver, checked.manifest, checked.verified.digest, candidates,
                checked.vendor_dirs,
            )
        except OneiricError as exc:
            failed[name] = exc
            continue
        _log.info("remote source loaded from bundle", source=name,
                  repository=source.repository, version=checked.manifest.version,
                  components=len(candidates), unavailable=len(unavailable))
    ignored = sorted(set(index.sources) - set(sources))
    if ignored:
        _log.warning("bundled sources not in the settings ignored", sources=ignored)
    return failed
