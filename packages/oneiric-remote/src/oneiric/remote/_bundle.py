"""``oneiric remote bundle``: each source's verified last-good, copied into one directory.

The serverless profile reads remote manifests from a read-only deployment
package; this writes what that package carries (layout: ``_bundleindex``).
Per source, under its cache dir's lock: the state file's last-good envelope
(never synced: an error saying to sync), each artifact blob it uses, copied
and hashed on the way, and its vendor dir extracted afresh from that copy with
the safe extractor.  Then every copied source goes through the very check the
loader runs (``check_bundled``: signatures with the settings' keys, expiry,
scope, blob hashes, vendor trees), so a bundle that was written also loads.

Atomic: everything is built in a temporary sibling of ``OUT`` and renamed into
place last.  An existing ``OUT`` is replaced only when it is an earlier bundle
(it has an ``index.json`` this version reads) or an empty directory, and only
as a whole; anything else (a file, a symlink, a directory with other content)
is refused.  On any error the temporary directory is removed: no partial
``OUT``, and an existing one untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from oneiric.core import ConfigError, OneiricError
from oneiric.core.helpers import atomic_write, error_category, format_timestamp, one_line, utc_now

from ._archive import extract, inspect
from ._authentic import verify_manifest
from ._bundleindex import (
    BLOBS,
    ENVELOPES,
    INDEX,
    VENDOR,
    BundledSource,
    BundleIndex,
    read_index,
)
from ._bundleload import check_bundled
from ._config import RemoteSource
from ._errors import ArtifactDigestError, RemoteError, StateError
from ._install import CHUNK, remove_tree
from ._state import State, StateStore
from ._verify import Ed25519Verifier

__all__ = ["write_bundle"]


def _refused(message: str) -> RemoteError:
    return RemoteError(message, category="refused")


def _check_target(out: Path) -> bool:
    """True when ``out`` exists and may be replaced; raise when it must not be touched."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise _refused(f"{out} exists and is not a directory; refusing to replace it - "
                       "choose another OUT or remove it")
    if not out.exists():
        if not out.parent.is_dir():
            raise RemoteError(f"the parent directory of {out} does not exist; create it first",
                              category="not_found")
        return False
    if not any(out.iterdir()):
        return True
    try:
        read_index(out)
    except ConfigError:
        raise _refused(f"{out} is a directory that is not a bundle; refusing to replace it - "
                       "choose another OUT or empty it") from None
    return True


def _named(name: str, exc: OneiricError) -> RemoteError:
    """``exc`` with the source's name and what to do; its category (exit code) kept."""
    return RemoteError(
        f"source {name!r}: the cached last-good fails verification: {one_line(exc)} "
        "(run 'oneiric remote sync' and bundle again)",
        category=error_category(exc),
    )


def _copy_hashed(src: Path, dest: Path) -> str:
    """Copy ``src`` to a new file ``dest`` (0644, fsynced); return the written bytes' sha256."""
    digest = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with open(src, "rb") as reader, os.fdopen(os.open(dest, flags, 0o644), "wb") as writer:
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


async def _copy_source(
    name: str, source: RemoteSource, work: Path, now: datetime
) -> BundledSource:
    """Copy one source's last-good envelope and artifacts into ``work`` (under the cache lock)."""
    cache = source.cache_path()
    store = StateStore.of(source, cache)
    never = RemoteError(
        f"source {name!r} was never synced (no last-good manifest in {cache}); run "
        f"'oneiric remote sync --source {name}' first", category="not_found",
    )
    if not store.exists():
        raise never
    async with store.lock(source.timeouts.lock):
        state = store.load()
        if state.last_good is None:
            raise never
        try:
            return _copy_last_good(source, state, cache, work, now)
        except RemoteError as exc:
            raise _named(name, exc) from None


def _copy_last_good(
    source: RemoteSource, state: State, cache: Path, work: Path, now: datetime
) -> BundledSource:
    """Verify the state's last-good envelope, copy it and its blobs, extract the vendor dirs."""
    assert state.last_good is not None
    data = state.last_good.encode("ascii", errors="replace")  # non-ASCII fails verification
    url = state.last_good_url or source.url
    verifier = Ed25519Verifier(source.trusted_keys, source.threshold)
    verified, manifest = verify_manifest(data, url, source=source, verifier=verifier, now=now)
    if verified.digest != state.active_digest or manifest.version != state.active_version:
        raise StateError(
            f"the last-good envelope does not match the active version {state.active_version}"
            "; the cache dir was tampered with"
        )
    envelope = f"{ENVELOPES}/{hashlib.sha256(data).hexdigest()}.json"
    atomic_write(work / envelope, data, mode=0o644)
    used = sorted({c.artifact for c in manifest.components if c.artifact is not None})
    for artifact_id in used:
        spec = manifest.artifacts[artifact_id]
        blob = work / BLOBS / spec.sha256
        if blob.exists():
            continue  # another source ships the same archive
        try:
            got = _copy_hashed(cache / "blobs" / spec.sha256, blob)
        except FileNotFoundError:
            got = "missing"
        if got != spec.sha256:
            raise ArtifactDigestError(
                f"cached artifact {artifact_id!r} is {got[:16]}..., the manifest declares "
                f"{spec.sha256[:16]}..."
            )
        vendor = work / VENDOR / spec.sha256
        vendor.mkdir()
        extract(blob, vendor, inspect(blob, spec.kind, source.limits), source.limits)
    return BundledSource(
        source.repository, manifest.version, verified.digest, url, envelope,
        tuple(manifest.artifacts[a].sha256 for a in used),
        tuple(sorted({k.keyid for k in source.trusted_keys})), source.threshold,
    )


def _file_hashes(root: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for current, _dirs, files in os.walk(root):
        for file in files:
            path = Path(current, file)
            rel = path.relative_to(root).as_posix()
            if rel == INDEX:
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
            hashes[rel] = digest.hexdigest()
    return hashes


def _swap_into_place(work: Path, out: Path, replace: bool) -> None:
    """Rename ``work`` to ``out``; an existing bundle is moved aside first, then removed."""
    if not replace:
        os.replace(work, out)
        return
    old = out.parent / f".{out.name}.{os.urandom(6).hex()}.old"
    os.replace(out, old)
    try:
        os.replace(work, out)
    except BaseException:
        os.replace(old, out)
        raise
    remove_tree(old)


async def write_bundle(
    sources: Mapping[str, RemoteSource], out: Path, *, now: datetime | None = None
) -> BundleIndex:
    """Write the bundle of ``sources`` to ``out`` (see the module docstring); return its index."""
    moment = now or utc_now()
    replace = _check_target(out)
    try:
        work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise StateError(f"cannot create a temporary directory next to {out}: "
                         f"{exc.strerror or exc}") from None
    try:
        for sub in (ENVELOPES, BLOBS, VENDOR):
            (work / sub).mkdir()
        entries: dict[str, BundledSource] = {}
        for name, source in sources.items():
            entries[name] = await _copy_source(name, source, work, moment)
            try:  # what was written is what the loader will check: check exactly that
                check_bundled(source, entries[name], work, now=moment,
                              vendor_home=source.cache_path())
            except RemoteError as exc:
                raise _named(name, exc) from None
        index = BundleIndex(format_timestamp(moment), entries, _file_hashes(work))
        atomic_write(work / INDEX, index.to_bytes(), mode=0o644)
        os.chmod(work, 0o755)
        _swap_into_place(work, out, replace)
    except OSError as exc:
        with contextlib.suppress(OSError):
            remove_tree(work)
        raise StateError(f"cannot write the bundle {out}: {exc.strerror or exc}; check the "
                         "directory's permissions and free space (nothing was written)") from None
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(work)
        raise
    return index
