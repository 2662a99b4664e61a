"""Staging artifacts on disk: content-addressed blobs and read-only vendor dirs.

Layout under the cache dir (0700)::

    blobs/<sha256>       the verified archive, named by content (never by URL)
    vendor/<sha256>/     its importable files, read-only, appended to sys.path
    tmp/                 downloads and extractions in progress (emptied under the lock)

Everything is staged first (download to a temp file, check size and sha256,
rename; extract to a temp dir, rename) and only then committed, so a failure at
any point leaves the previous version serving untouched.  Putting vendor dirs on
``sys.path`` is ``_activate``'s job, deleting old ones ``_retention``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from oneiric.core import get_logger

from ._archive import ArchiveInfo, extract, inspect, matches_blob
from ._config import Limits, RemoteSource
from ._errors import ArtifactDigestError, ArtifactSizeError, RemoteError, StateError
from ._fetch import Downloader, pick_error
from ._models import ArtifactSpec
from ._policy import check_artifact_url

__all__ = ["Installer", "Staged", "blob_matches", "remove_tree"]

_log = get_logger("oneiric.remote.install")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Staged:
    """An artifact that is ready: verified blob, extracted read-only vendor dir."""

    artifact_id: str
    sha256: str
    vendor: Path
    info: ArchiveInfo


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def blob_matches(blob: Path, spec: ArtifactSpec) -> bool:
    """True when ``blob`` is a regular file (no symlink) of the manifest's size and sha256."""
    try:
        return (
            blob.is_file()
            and not blob.is_symlink()
            and blob.stat().st_size == spec.size
            and _sha256_file(blob) == spec.sha256
        )
    except OSError:
        return False


def _make_writable(path: Path) -> None:
    for current, dirs, files in os.walk(path):
        os.chmod(current, 0o700)
        for name in files:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(current, name), 0o600)
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(current, name), 0o700)


def remove_tree(path: Path) -> None:
    """Delete a (possibly read-only) directory tree; a symlink or file is only unlinked."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        with contextlib.suppress(OSError):
            path.unlink()
        return
    if not path.exists():
        return
    _make_writable(path)
    shutil.rmtree(path, ignore_errors=True)


def _make_readonly(path: Path) -> None:
    for current, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.chmod(os.path.join(current, name), 0o444)
        os.chmod(current, 0o555)


class _FileSink:
    """Writes a download to a temp file while hashing it."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="download-", suffix=".part")
        self.path = Path(name)
        self.handle = os.fdopen(fd, "wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class Installer:
    """Stages artifacts of one cache dir; the caller holds the cache dir's lock."""

    def __init__(
        self,
        cache_dir: Path,
        source: RemoteSource,
        downloader: Downloader,
        verified: dict[str, ArchiveInfo] | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        #: vendor dirs verified against their blob since this sync object started
        self.verified = verified if verified is not None else {}
        self.source = source
        self.limits: Limits = source.limits
        self.downloader = downloader
        self.blobs = cache_dir / "blobs"
        self.vendor = cache_dir / "vendor"
        self.tmp = cache_dir / "tmp"
        for path in (self.blobs, self.vendor, self.tmp):
            try:
                path.mkdir(mode=0o700, exist_ok=True)
                if path.is_symlink() or not path.is_dir():
                    raise NotADirectoryError(20, "not a directory")
            except OSError as exc:
                raise StateError(
                    f"cache dir entry {path} is unusable ({exc.strerror or exc}); the cache dir "
                    "was tampered with - remove that entry and resync"
                ) from None

    def clean_tmp(self) -> None:
        """Remove leftovers of a crashed sync (safe: we hold the lock)."""
        try:
            leftovers = list(self.tmp.iterdir())
        except OSError as exc:
            raise StateError(f"cannot list {self.tmp}: {exc.strerror or exc}") from None
        for entry in leftovers:
            if entry.is_dir() and not entry.is_symlink():
                remove_tree(entry)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()

    # ------------------------------------------------------------- blobs

    async def ensure_blob(self, artifact_id: str, spec: ArtifactSpec) -> Path:
        """A blob whose sha256 matches ``spec``: from the cache (re-hashed) or downloaded."""
        blob = self.blobs / spec.sha256
        if blob.exists() or blob.is_symlink():
            if self._blob_ok(blob, spec):
                return blob
            _log.warning("cached blob modified on disk; re-fetching", sha256=spec.sha256)
            remove_tree(blob)
            if blob.exists() or blob.is_symlink():
                raise StateError(
                    f"cannot remove the modified cached blob {blob}; fix the cache dir's "
                    "permissions or delete it"
                )
        errors: list[RemoteError] = []
        for url in spec.urls:
            try:
                check_artifact_url(url, self.source)
                sink = await self.downloader.download(
                    url,
                    limit=spec.size,
                    deadline=self.source.timeouts.artifact_deadline,
                    sink=lambda: _FileSink(self.tmp),
                    too_large=ArtifactSizeError,
                    what=f"artifact {artifact_id!r} (declared size)",
                )
                try:
                    if sink.size != spec.size:
                        raise ArtifactSizeError(
                            f"artifact {artifact_id!r} from {url} is {sink.size} bytes, the "
                            f"manifest declares {spec.size}; the mirror is wrong or hostile"
                        )
                    got = sink.digest.hexdigest()
                    if got != spec.sha256:
                        raise ArtifactDigestError(
                            f"artifact {artifact_id!r} from {url} has sha256 {got[:16]}..., the "
                            f"manifest declares {spec.sha256[:16]}...; trying other mirrors"
                        )
                    try:
                        os.chmod(sink.path, 0o400)
                        os.replace(sink.path, blob)
                    except OSError as exc:
                        raise StateError(
                            f"cannot store artifact {artifact_id!r} as {blob}: "
                            f"{exc.strerror or exc}; check the cache dir"
                        ) from None
                except BaseException:
                    sink.discard()
                    raise
                return blob
            except RemoteError as exc:
                _log.warning("artifact fetch failed", artifact=artifact_id, url=url, error=str(exc))
                errors.append(exc)
        raise pick_error(errors)

    @staticmethod
    def _blob_ok(blob: Path, spec: ArtifactSpec) -> bool:
        return blob_matches(blob, spec)

    # ----------------------------------------------------------- vendor

    async def prepare(self, artifact_id: str, spec: ArtifactSpec) -> ArchiveInfo:
        """Make sure a verified blob (or an already verified vendor dir) exists; inspect it."""
        known = self.verified.get(spec.sha256)
        if known is not None and (self.vendor / spec.sha256).is_dir():
            return known
        blob = await self.ensure_blob(artifact_id, spec)
        info = self.cached_vendor(spec)
        return info if info is not None else inspect(blob, spec.kind, self.limits)

    def cached_vendor(self, spec: ArtifactSpec) -> ArchiveInfo | None:
        """Info of an existing vendor dir that still matches its verified blob, else None.

        Called after ``ensure_blob``: a modified vendor dir is removed so it is re-extracted.
        """
        known = self.verified.get(spec.sha256)
        vendor = self.vendor / spec.sha256
        real_dir = vendor.is_dir() and not vendor.is_symlink()
        if known is not None and real_dir:
            return known
        if not real_dir:
            if vendor.exists() or vendor.is_symlink():
                _log.warning("vendor entry is not a directory; re-extracting", sha256=spec.sha256)
                remove_tree(vendor)
            return None
        blob = self.blobs / spec.sha256
        info = inspect(blob, spec.kind, self.limits)
        if matches_blob(blob, vendor, info, self.limits):
            self.verified[spec.sha256] = info
            return info
        _log.warning("vendor dir modified on disk; re-extracting", sha256=spec.sha256)
        remove_tree(vendor)
        return None

    def extract(self, spec: ArtifactSpec, info: ArchiveInfo) -> Path:
        """Extract the blob to a temp dir, then rename it to ``vendor/<sha256>`` read-only."""
        vendor = self.vendor / spec.sha256
        if vendor.is_dir() and not vendor.is_symlink():
            return vendor
        remove_tree(vendor)  # a stray file or symlink in its place
        try:
            work = Path(tempfile.mkdtemp(dir=self.tmp, prefix="extract-"))
        except OSError as exc:
            raise StateError(f"cannot create a temp dir in {self.tmp}: {exc.strerror or exc}")
        try:
            extract(self.blobs / spec.sha256, work, info, self.limits)
            try:
                _make_readonly(work)
                os.chmod(work, 0o755)
                os.replace(work, vendor)
                os.chmod(vendor, 0o555)
            except OSError as exc:
                raise StateError(
                    f"cannot install {vendor}: {exc.strerror or exc}; check the cache dir"
                ) from None
        except BaseException:
            remove_tree(work)
            raise
        self.verified[spec.sha256] = info
        return vendor


