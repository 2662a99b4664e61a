"""Artifacts on disk: content-addressed blobs, read-only vendor dirs, ``sys.path``, retention.

Layout under the cache dir (0700)::

    blobs/<sha256>       the verified archive, named by content (never by URL)
    vendor/<sha256>/     its importable files, read-only, appended to sys.path
    tmp/                 downloads and extractions in progress (emptied under the lock)

Everything is staged first (download to a temp file, check size and sha256,
rename; extract to a temp dir, rename) and only then committed, so a failure at
any point leaves the previous version serving untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneiric.core import get_logger

from ._archive import ArchiveInfo, extract, inspect, matches_blob
from ._config import Limits, RemoteSource
from ._errors import (
    ArtifactDigestError,
    ArtifactSizeError,
    FetchError,
    InsecureURLError,
    ModuleShadowingError,
    RemoteError,
    StateError,
)
from ._fetch import Downloader, scheme_of
from ._models import ArtifactSpec

__all__ = [
    "Installer",
    "Staged",
    "activate_paths",
    "check_artifact_url",
    "missing_requirements",
    "pick_error",
    "prune",
]

_log = get_logger("oneiric.remote.install")
CHUNK = 64 * 1024
#: vendor dirs this process put on sys.path, per repository
_active_paths: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Staged:
    """An artifact that is ready: verified blob, extracted read-only vendor dir."""

    artifact_id: str
    sha256: str
    vendor: Path
    info: ArchiveInfo


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


def pick_error(errors: Sequence[RemoteError]) -> RemoteError:
    """The error to report after every URL failed: a verification failure beats transport."""
    for error in errors:
        if not isinstance(error, FetchError):
            return error
    return errors[-1]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        #: sha256 of blobs downloaded by this installer (observability and tests)
        self.downloaded: list[str] = []

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
                    too_large=lambda n, url=url: ArtifactSizeError(
                        f"artifact {artifact_id!r} from {url} is larger than its declared "
                        f"{spec.size} bytes (aborted at {n}); the mirror is wrong or hostile"
                    ),
                )
                assert isinstance(sink, _FileSink)
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
                self.downloaded.append(spec.sha256)
                return blob
            except RemoteError as exc:
                _log.warning("artifact fetch failed", artifact=artifact_id, url=url, error=str(exc))
                errors.append(exc)
        raise pick_error(errors)

    @staticmethod
    def _blob_ok(blob: Path, spec: ArtifactSpec) -> bool:
        try:
            return (
                blob.is_file()
                and not blob.is_symlink()
                and blob.stat().st_size == spec.size
                and _sha256_file(blob) == spec.sha256
            )
        except OSError:
            return False

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


# ------------------------------------------------------------------ checks


def check_shadowing(staged: Iterable[tuple[str, ArchiveInfo]], cache_dir: Path) -> None:
    """Refuse top-level names that shadow stdlib, other installed code or another artifact.

    Also refused: a name some installed distribution declares as a requirement
    (any extra) - when it is not installed, that distribution's own code would
    import the artifact's package, outside the scope of the source that sent it.
    """
    owner: dict[str, str] = {}
    vendor_root = str((cache_dir / "vendor").resolve()) + os.sep
    required: dict[str, str] | None = None
    for artifact_id, info in staged:
        for name in sorted(info.top_level):
            if required is None:
                required = required_names()
            why = required.get(_import_key(name))
            if why is not None:
                raise ModuleShadowingError(
                    f"artifact {artifact_id!r} ships top-level {name!r}, which {why}; that "
                    "code would import it outside this source's scope - rename the package"
                )
            if name in owner and owner[name] != artifact_id:
                raise ModuleShadowingError(
                    f"artifacts {owner[name]!r} and {artifact_id!r} both ship top-level "
                    f"{name!r}; ship each package in one artifact"
                )
            owner[name] = artifact_id
            if name in sys.stdlib_module_names or name in sys.builtin_module_names:
                raise ModuleShadowingError(
                    f"artifact {artifact_id!r} ships top-level {name!r}, which shadows the "
                    "standard library; rename the package"
                )
            if not name.isidentifier():
                continue
            where = _origin_of(name)
            if where is not None and not where.startswith(vendor_root):
                raise ModuleShadowingError(
                    f"artifact {artifact_id!r} ships top-level {name!r}, which is already "
                    f"importable from {where}; rename the package or uninstall the other one"
                )


def _origin_of(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        spec = getattr(module, "__spec__", None)
    else:
        try:
            spec = importlib.machinery.PathFinder.find_spec(name)
            if spec is None:
                spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return str(Path(spec.origin).resolve())
    locations = list(spec.submodule_search_locations or [])
    return str(Path(locations[0]).resolve()) + os.sep if locations else (spec.origin or "?")


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*).*", re.DOTALL)
_SEPARATORS = re.compile(r"[-_.]+")


def _import_key(name: str) -> str:
    """Compare import and distribution names loosely: case and ``-_.`` runs ignored."""
    return _SEPARATORS.sub("_", name).lower()


def required_names() -> dict[str, str]:
    """Import-name keys of every requirement (all extras) of the installed distributions.

    A requirement names a distribution, not a module, so the usual spellings are
    covered: the name itself and the name without a ``python-`` prefix or a
    ``-python`` suffix (``python-dateutil``).  Maps key -> reason, for messages.
    """
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            requires = dist.requires or []
            owner = dist.metadata["Name"] or "?"
        except Exception:  # a broken installed dist must not stop the check
            continue
        for text in requires:
            match = _REQ_NAME.fullmatch(str(text))
            if match is None:
                continue
            key = _import_key(match.group(1))
            why = f"installed distribution {owner!r} declares as a requirement ({text.strip()})"
            for variant in (key, key.removeprefix("python_"), key.removesuffix("_python")):
                if variant:
                    found.setdefault(variant, why)
    return found


def missing_requirements(requirements: Iterable[str]) -> list[str]:
    """The Requires-Dist entries not satisfied by the installed distributions."""
    missing: list[str] = []
    for text in requirements:
        reason = _unsatisfied(text)
        if reason:
            missing.append(reason)
    return missing


def _unsatisfied(text: str) -> str | None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is nearly always present
        return _unsatisfied_simple(text)
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return f"{text} (unparseable requirement)"
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return str(req)
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{req} (found {version})"
    return None


def _unsatisfied_simple(text: str) -> str | None:
    head, _, marker = text.partition(";")
    if "extra" in marker:
        return None
    match = _REQ_NAME.fullmatch(head)
    if not match:
        return f"{text} (unparseable requirement)"
    try:
        importlib.metadata.version(match.group(1))
    except importlib.metadata.PackageNotFoundError:
        return head.strip()
    return None


def needs_restart(staged: Iterable[Staged], cache_dir: Path) -> bool:
    """True if a top-level package of the new version is imported from another vendor dir."""
    vendor_root = (cache_dir / "vendor").resolve()
    for item in staged:
        new_dir = item.vendor.resolve()
        for name in item.info.top_level:
            module = sys.modules.get(name)
            if module is None:
                continue
            where = _origin_of(name)
            if where is None:
                continue
            path = Path(where.rstrip(os.sep))
            if vendor_root in path.parents and new_dir not in (path, *path.parents):
                return True
    return False


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Loads vendored modules from their verified source, never from bytecode.

    ``SourceLoader.get_code`` reads and writes the ``__pycache__`` only when
    ``path_stats`` succeeds; refusing it makes every import compile the source,
    so a ``.pyc`` planted in a vendor dir is never run and nothing is written there.
    """

    def path_stats(self, path: str) -> Mapping[str, Any]:
        raise OSError("oneiric-remote: no bytecode cache for vendored code")


def _vendor_root_of(path: str) -> str | None:
    for dirs in _active_paths.values():
        for root in dirs:
            if path == root or path.startswith(root + os.sep):
                return root
    return None


def _vendor_path_hook(path: str) -> importlib.machinery.FileFinder:
    """``sys.path_hooks`` entry: vendor dirs this process activated get a source-only finder.

    Only ``.py`` sources are loadable from them: no sourceless ``.pyc`` and no
    extension modules, whatever is on disk.
    """
    if _vendor_root_of(path) is None:
        raise ImportError("not an oneiric-remote vendor dir")
    return importlib.machinery.FileFinder(
        path, (_SourceOnlyLoader, importlib.machinery.SOURCE_SUFFIXES)
    )


def _forget_finders(roots: Iterable[str]) -> None:
    """Drop cached finders at or under ``roots`` so the next import asks the path hooks."""
    roots = list(roots)
    for key in list(sys.path_importer_cache):
        if any(key == r or key.startswith(r + os.sep) for r in roots):
            sys.path_importer_cache.pop(key, None)


def activate_paths(repository: str, dirs: Sequence[Path]) -> None:
    """Swap this repository's vendor dirs on ``sys.path`` (appended; never ``addsitedir``)."""
    if _vendor_path_hook not in sys.path_hooks:
        sys.path_hooks.insert(0, _vendor_path_hook)
    new = [str(d) for d in dirs]
    old = _active_paths.get(repository, [])
    for entry in old:
        if entry not in new:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
    _active_paths[repository] = new
    _forget_finders([*old, *new])
    for entry in new:
        if entry not in sys.path:
            sys.path.append(entry)
    importlib.invalidate_caches()


def active_paths() -> dict[str, list[str]]:
    """The vendor dirs this process has on sys.path, per repository (a copy)."""
    return {k: list(v) for k, v in _active_paths.items()}


def prune(cache_dir: Path, keep_versions: int = 3) -> list[str]:
    """Delete blobs and vendor dirs not used by the last ``keep_versions`` of any state file."""
    import json

    keep: set[str] = set()
    for state_file in cache_dir.glob("state-*.json"):
        try:
            doc: Any = json.loads(state_file.read_bytes())
            for entry in doc.get("history", [])[-keep_versions:]:
                keep.update(str(s) for s in entry.get("artifacts", []))
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):
            return []  # unreadable state: keep everything rather than guess
    for dirs in _active_paths.values():
        keep.update(Path(d).name for d in dirs)
    removed: list[str] = []
    for folder in (cache_dir / "blobs", cache_dir / "vendor"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name in keep or not re.fullmatch(r"[0-9a-f]{64}", entry.name):
                continue
            if entry.is_dir():
                remove_tree(entry)
            else:
                with contextlib.suppress(OSError):
                    os.chmod(entry, stat.S_IRUSR | stat.S_IWUSR)
                    entry.unlink()
            removed.append(entry.name)
    return removed
