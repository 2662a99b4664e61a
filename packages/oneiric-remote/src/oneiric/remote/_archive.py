"""Safe archives: inspect every entry, reject (never sanitize), extract while counting.

An archive whose digest matched the signed manifest is authentic, not
necessarily harmless: a publisher's build could still be broken or compromised.
So paths, entry types, sizes and compression ratios are checked for every entry
before and during extraction, and anything odd rejects the whole archive -
"sanitizing" a path would install something the publisher never listed.
"""

from __future__ import annotations

import email
import hashlib
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ._config import Limits
from ._errors import ModuleShadowingError, UnsafeArchiveError

__all__ = ["ArchiveInfo", "extract", "inspect", "matches_blob"]

_DRIVE = re.compile(r"[A-Za-z]:.*", re.DOTALL)
_NATIVE = (".so", ".pyd", ".dll", ".dylib")
#: anything importlib.metadata (or pkg_resources) would read as an installed distribution
_METADATA = (".dist-info", ".egg-info", ".egg-link", ".egg")
_BYTECODE = (".pyc", ".pyo")
#: modules ``site`` imports at every interpreter start
_SITE_HOOKS = frozenset({"sitecustomize", "usercustomize"})
_MAX_SEGMENT_BYTES = 255
_MAX_PATH_BYTES = 1024
_PURE_TAGS = {"py3-none-any", "py2.py3-none-any", "py2-none-any"}  # universal = py2 + py3
CHUNK = 64 * 1024


@dataclass(frozen=True)
class ArchiveInfo:
    """What an archive delivers: importable top-level names and (wheels) requirements."""

    kind: str
    top_level: frozenset[str]
    requires_dist: tuple[str, ...]
    dist_info: str | None


def _fail(blob: Path, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"archive {blob.name[:16]} rejected: {why}; the publisher must rebuild it"
    )


def _open(blob: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(blob)
    except Exception as exc:  # BadZipFile, OSError, ValueError, UnicodeError, struct.error...
        raise _fail(blob, f"not a valid zip ({type(exc).__name__}: {exc})") from None


def _check_name(blob: Path, name: str, is_dir: bool) -> tuple[str, ...]:
    if "\x00" in name:
        raise _fail(blob, f"entry {name!r} contains NUL")
    if "\\" in name:
        raise _fail(blob, f"entry {name!r} contains a backslash")
    if name.startswith("/"):
        raise _fail(blob, f"entry {name!r} is an absolute path")
    if _DRIVE.fullmatch(name):
        raise _fail(blob, f"entry {name!r} has a drive letter")
    body = name[:-1] if is_dir and name.endswith("/") else name
    parts = tuple(body.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise _fail(blob, f"entry {name!r} has an empty, '.' or '..' segment")
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
            raise _fail(blob, f"entry {name[:80]!r}... has a name segment above "
                              f"{_MAX_SEGMENT_BYTES} bytes")
    if len(body.encode("utf-8", "surrogatepass")) > _MAX_PATH_BYTES:
        raise _fail(blob, f"entry {name[:80]!r}... has a path above {_MAX_PATH_BYTES} bytes")
    return parts


def _entries(blob: Path, zf: zipfile.ZipFile, limits: Limits) -> Iterator[
    tuple[zipfile.ZipInfo, tuple[str, ...]]
]:
    infos = zf.infolist()
    if len(infos) > limits.archive_entries:
        raise _fail(blob, f"{len(infos)} entries, above the limit of {limits.archive_entries}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if info.orig_filename != name:  # zipfile truncated a NUL or rewrote a separator
            raise _fail(blob, f"entry {info.orig_filename!r} has a name zipfile had to rewrite")
        if not name:  # checked first: ZipInfo.is_dir() indexes name[-1]
            raise _fail(blob, "an entry has an empty name")
        is_dir = info.is_dir()
        parts = _check_name(blob, name, is_dir)
        key = "/".join(parts).casefold()
        if key in seen:
            raise _fail(blob, f"duplicate entry {name!r} (names are compared case-insensitively)")
        seen.add(key)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise _fail(blob, f"entry {name!r} is a symlink")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _fail(blob, f"entry {name!r} is not a regular file or directory")
        if kind == stat.S_IFDIR and not is_dir:
            raise _fail(blob, f"entry {name!r} is a directory without a trailing slash")
        if info.flag_bits & 0x1:
            raise _fail(blob, f"entry {name!r} is encrypted")
        if info.file_size > limits.archive_file_bytes:
            raise _fail(blob, f"entry {name!r} is {info.file_size} bytes, above the limit")
        total += info.file_size
        if total > limits.archive_total_bytes:
            raise _fail(blob, f"uncompressed total above {limits.archive_total_bytes} bytes")
        if info.file_size > limits.compression_ratio * max(info.compress_size, 1):
            raise _fail(blob, f"entry {name!r} has a compression ratio above "
                              f"{limits.compression_ratio}:1")
        yield info, parts


def _classify(blob: Path, name: str, parts: tuple[str, ...], is_dir: bool) -> None:
    """Refuse what would run or be discovered without an explicit import of a factory.

    Compared case-insensitively at every depth: a ``*.dist-info``/``*.egg-info``
    (entry points make ``load_plugins`` import and register anything, outside the
    source's scope), ``.pth`` files (``site`` executes them), bytecode (it would be
    run instead of the verified source) and native code.
    """
    low = [p.casefold() for p in parts]
    for part in low:
        if part.endswith(_METADATA) or part == "egg-info":
            raise _fail(blob, f"entry {name!r} is distribution metadata ({part}); delivered "
                              "code must never be discoverable as an installed distribution")
        if part.endswith(".pth"):
            raise _fail(blob, f"entry {name!r} is a .pth file, which site executes at start-up")
        if part == "__pycache__" or part.endswith(_BYTECODE):
            raise _fail(blob, f"entry {name!r} is bytecode; ship sources only (bytecode would "
                              "run instead of the verified source)")
        if part.endswith(_NATIVE):
            raise _fail(blob, f"entry {name!r} is native code; only pure Python")
    head = low[0]
    stem = head[:-3] if len(parts) == 1 and not is_dir and head.endswith(".py") else head
    if stem in _SITE_HOOKS:
        raise ModuleShadowingError(
            f"archive {blob.name[:16]} rejected: top-level {parts[0]!r} is a site hook "
            f"({stem}) that Python imports at every start; the publisher must rename it"
        )
    if head.endswith(".data") and (len(parts) > 1 or is_dir):
        raise _fail(blob, f"entry {name!r} is in a '*.data/' tree")


def _check_clashes(blob: Path, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> None:
    """A path that is a file in one entry and a directory in another cannot be extracted."""
    files: dict[str, str] = {}
    dirs: set[str] = set()
    for info, parts in entries:
        low = [p.casefold() for p in parts]
        for depth in range(1, len(low)):
            dirs.add("/".join(low[:depth]))
        key = "/".join(low)
        if info.is_dir():
            dirs.add(key)
        else:
            files[key] = info.filename
    for key, name in files.items():
        if key in dirs:
            raise _fail(blob, f"entry {name!r} is both a file and a directory in this archive")


def inspect(blob: Path, kind: str, limits: Limits) -> ArchiveInfo:
    """Check every entry's metadata and return what the archive delivers."""
    with _open(blob) as zf:
        entries = list(_entries(blob, zf, limits))
        _check_clashes(blob, entries)
        dist_info: str | None = None
        if kind == "wheel":
            own = {p[0] for i, p in entries if (len(p) > 1 or i.is_dir())
                   and p[0].casefold().endswith(".dist-info")}
            if len(own) != 1:
                raise _fail(blob, f"a wheel needs exactly one .dist-info dir, found {len(own)}")
            dist_info = next(iter(own))
        top: set[str] = set()
        for info, parts in entries:
            if dist_info is not None and parts[0] == dist_info:
                continue  # read from the blob below, never extracted
            _classify(blob, info.filename, parts, info.is_dir())
            head = parts[0]
            if len(parts) == 1 and not info.is_dir():
                if head.endswith(".py"):
                    top.add(head[:-3])
                continue
            top.add(head)
        requires: tuple[str, ...] = ()
        if dist_info is not None:
            wheel = _read_small(blob, zf, f"{dist_info}/WHEEL")
            meta = email.message_from_bytes(wheel)
            tags = {t.strip() for t in meta.get_all("Tag") or []}
            if not tags <= _PURE_TAGS or not tags & {"py3-none-any", "py2.py3-none-any"}:
                raise _fail(blob, f"wheel tags {sorted(tags)} are not pure (py3-none-any)")
            if (meta.get("Root-Is-Purelib") or "").strip().lower() != "true":
                raise _fail(blob, "wheel is not Root-Is-Purelib: true")
            metadata = email.message_from_bytes(_read_small(blob, zf, f"{dist_info}/METADATA"))
            requires = tuple(str(r).strip() for r in metadata.get_all("Requires-Dist") or [])
        return ArchiveInfo(kind, frozenset(top), requires, dist_info)


def _read_small(blob: Path, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _fail(blob, f"wheel lacks {name}") from None
    if info.file_size > 1024 * 1024:
        raise _fail(blob, f"{name} is implausibly large")
    try:
        return zf.read(info)
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, NotImplementedError...
        raise _fail(blob, f"cannot read {name} ({type(exc).__name__}: {exc})") from None


def _payload_entries(
    blob: Path, zf: zipfile.ZipFile, info: ArchiveInfo, limits: Limits
) -> Iterator[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    for entry, parts in _entries(blob, zf, limits):
        if info.dist_info is not None and parts[0] == info.dist_info:
            continue  # metadata stays out of sys.path: no entry points leak into discovery
        yield entry, parts


def _stream(blob: Path, zf: zipfile.ZipFile, entry: zipfile.ZipInfo, limits: Limits,
            budget: list[int]) -> Iterator[bytes]:
    """Decompress one entry, enforcing sizes and ratio on the bytes actually produced."""
    produced = 0
    cap = min(limits.archive_file_bytes, limits.compression_ratio * max(entry.compress_size, 1))
    try:
        with zf.open(entry) as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                produced += len(chunk)
                budget[0] -= len(chunk)
                if produced > cap or produced > entry.file_size or budget[0] < 0:
                    raise _fail(blob, f"entry {entry.filename!r} expands beyond its limits "
                                      "(size or compression ratio)")
                yield chunk
    except UnsafeArchiveError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, NotImplementedError...
        raise _fail(blob, f"entry {entry.filename!r} cannot be read "
                          f"({type(exc).__name__}: {exc})") from None


def extract(blob: Path, dest: Path, info: ArchiveInfo, limits: Limits) -> None:
    """Extract the importable part of ``blob`` into the empty directory ``dest``."""
    root = dest.resolve()
    budget = [limits.archive_total_bytes]
    with _open(blob) as zf:
        for entry, parts in _payload_entries(blob, zf, info, limits):
            try:
                _extract_one(blob, zf, entry, root, parts, limits, budget)
            except (OSError, ValueError) as exc:  # clash, name too long, disk full...
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise _fail(blob, f"entry {entry.filename[:120]!r} cannot be extracted "
                                  f"({type(exc).__name__}: {why})") from None


def _extract_one(blob: Path, zf: zipfile.ZipFile, entry: zipfile.ZipInfo, root: Path,
                 parts: tuple[str, ...], limits: Limits, budget: list[int]) -> None:
    target = root.joinpath(*parts)
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise _fail(blob, f"entry {entry.filename!r} resolves outside the destination")
    if entry.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        for chunk in _stream(blob, zf, entry, limits, budget):
            out.write(chunk)


def matches_blob(blob: Path, dest: Path, info: ArchiveInfo, limits: Limits) -> bool:
    """True when ``dest`` holds exactly the files of ``blob`` with identical content.

    Used at start-up: the blob is anchored in the signed manifest by its sha256,
    so comparing the extracted tree against it detects any change on disk.  Every
    file and directory counts - ``__pycache__`` and any unrecorded extra file too:
    a planted ``.pyc`` would otherwise run instead of the verified source.
    """
    expected: set[PurePosixPath] = set()
    expected_dirs: set[PurePosixPath] = {PurePosixPath(".")}
    budget = [limits.archive_total_bytes]
    if dest.is_symlink():
        return False
    try:
        with _open(blob) as zf:
            for entry, parts in _payload_entries(blob, zf, info, limits):
                rel = PurePosixPath(*parts)
                expected_dirs.update(rel.parents)
                if entry.is_dir():
                    expected_dirs.add(rel)
                    continue
                expected.add(rel)
                path = dest.joinpath(*parts)
                if path.is_symlink() or not path.is_file():
                    return False
                want = hashlib.sha256()
                for chunk in _stream(blob, zf, entry, limits, budget):
                    want.update(chunk)
                have = hashlib.sha256()
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(CHUNK), b""):
                        have.update(chunk)
                if want.digest() != have.digest():
                    return False
        for current, dirs, files in os.walk(dest):
            here = PurePosixPath(Path(current).relative_to(dest).as_posix())
            for name in dirs:
                if (dest / here / name).is_symlink() or here / name not in expected_dirs:
                    return False
            for name in files:
                if here / name not in expected:
                    return False
    except (UnsafeArchiveError, OSError, ValueError):
        return False
    return True
