"""Finding plugin distributions: the entry points of a group, and the namespace check.

Discovery reads ``entry_points.txt`` of the installed distributions directly
(one ``scandir`` per ``sys.path`` directory, a substring test before parsing)
and caches the result per process, keyed by the path directories' mtimes,
which change whenever a distribution is installed or removed.  Before a scan
the import system's directory caches are invalidated (``invalidate_import_caches``)
so that a plugin module installed since the process started can be imported.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
from importlib import _bootstrap_external
from importlib.machinery import PathFinder

from ._errors import PluginError
from ._markers import PROJECT
from ._plugin_report import EntryPointInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["check_namespace", "discover_entry_points", "invalidate_import_caches"]

_NORMALIZE = re.compile(r"[-_.]+")


def _normalize(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


def check_namespace() -> None:
    """Fail in one line if the unrelated PyPI distribution ``oneiric`` shadows our namespace.

    That distribution ships a regular ``oneiric/__init__.py``.  A regular package
    anywhere on ``sys.path`` beats every namespace portion, so it is looked for on
    the path as well as in ``sys.modules``: a process that imported our namespace
    before the path changed would still break in the next process.
    """
    module = sys.modules.get("oneiric")
    found = getattr(module, "__file__", None) if module is not None else None
    if not found:
        for entry in sys.path:
            candidate = os.path.join(entry or os.getcwd(), "oneiric", "__init__.py")
            if os.path.isfile(candidate):
                found = candidate
                break
    if found:
        raise PluginError(
            f"an unrelated package named 'oneiric' is installed ({found}) and breaks "
            "the oneiric.* namespace; run 'pip uninstall oneiric' and reinstall oneiric-core"
        )


def invalidate_import_caches() -> None:
    """``importlib.invalidate_caches()`` without importing ``importlib.metadata``.

    What the scan needs invalidated is the import system's view of the path
    directories: each path-entry finder's cached listing (``FileFinder`` keeps
    one per directory, refreshed only when the directory's mtime changes, which
    two installs within one timestamp tick do not) and the namespace packages'
    computed ``__path__`` (a new ``oneiric/...`` portion).  On Python 3.13
    ``PathFinder.invalidate_caches`` also imports ``importlib.metadata`` to
    clear *its* caches (+~20 ms of imports, the cost of discovery there);
    a process that has not imported it has no such caches, so that step is
    taken only when it is already imported.  Other meta-path finders
    (editable installs...) are invalidated as ``importlib`` does.
    """
    if "importlib.metadata" in sys.modules:
        importlib.invalidate_caches()  # nothing left to import: the stdlib does it all
        return
    for finder in sys.meta_path:
        if finder is PathFinder:
            _invalidate_path_finders()
        else:
            invalidate = getattr(finder, "invalidate_caches", None)
            if invalidate is not None:
                invalidate()


def _invalidate_path_finders() -> None:
    """``PathFinder.invalidate_caches()`` of Python 3.11/3.12 (3.13's, less its last step)."""
    cache = sys.path_importer_cache
    for name, finder in list(cache.items()):
        # drop relative entries (the working directory may have changed), as importlib does
        if finder is None or not os.path.isabs(name):
            del cache[name]
        else:
            invalidate = getattr(finder, "invalidate_caches", None)
            if invalidate is not None:
                invalidate()
    namespace_path: Any = getattr(_bootstrap_external, "_NamespacePath", None)
    if namespace_path is not None and hasattr(namespace_path, "_epoch"):
        namespace_path._epoch += 1  # namespace packages recompute their __path__


_scan_cache: dict[str, tuple[tuple[tuple[str, int], ...], tuple[EntryPointInfo, ...]]] = {}
#: A directory modified this recently may be modified again within the same
#: file-system timestamp tick, leaving its mtime unchanged; such a fingerprint is
#: not trusted (the "racy timestamp" problem git solves the same way).
_RACY_NS = 2_000_000_000


def _path_fingerprint() -> tuple[tuple[str, int], ...] | None:
    """``(directory, mtime)`` per ``sys.path`` entry, or None if one is too fresh to trust."""
    parts = []
    now = time.time_ns()
    racy = False
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue
        racy = racy or now - mtime < _RACY_NS
        parts.append((path, mtime))
    return None if racy else tuple(parts)


def _read_header(path: str) -> tuple[str | None, str | None]:
    """Read ``Name`` and ``Version`` from a METADATA/PKG-INFO header."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name and version:
                    break
    except OSError:
        pass
    return name, version


def _parse_group(text: str, group: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            section = line[1:-1].strip()
            continue
        if section != group:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if "[" in value:  # "module:attr [extra]"
            value = value[: value.index("[")].strip()
        found.append((name.strip(), value))
    return found


def _scan(group: str) -> tuple[EntryPointInfo, ...]:
    header = f"[{group}]"
    seen: set[str] = set()
    result: list[EntryPointInfo] = []
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            it = os.scandir(path)
        except OSError:
            continue
        with it:
            names = sorted(
                e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))
            )
        for dirname in names:
            folder = os.path.join(path, dirname)
            stem = dirname.rsplit(".", 1)[0]
            norm = _normalize(stem.split("-", 1)[0])
            if norm in seen:
                continue  # first on sys.path wins, as in importlib.metadata
            seen.add(norm)
            try:
                with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if header not in text:
                continue
            eps = _parse_group(text, group)
            if not eps:
                continue
            meta = "METADATA" if dirname.endswith(".dist-info") else "PKG-INFO"
            name, version = _read_header(os.path.join(folder, meta))
            if not name:
                name = stem.split("-", 1)[0]
            if not version:
                version = stem.split("-", 1)[1] if "-" in stem else "0"
            result.extend(EntryPointInfo(name, version, ep, value) for ep, value in eps)
    result.sort(key=lambda e: (_normalize(e.distribution), e.name))
    return tuple(result)


def discover_entry_points(
    group: str = PROJECT, *, use_cache: bool = True
) -> tuple[EntryPointInfo, ...]:
    """The entry points of ``group`` of the installed distributions, in load order.

    Cached per process, keyed by the mtimes of the ``sys.path`` directories, so
    installing or removing a distribution is seen by the next call.
    """
    fingerprint = _path_fingerprint()
    if use_cache and fingerprint is not None:
        cached = _scan_cache.get(group)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
    # Something may have been installed since the import system listed these
    # directories: make sure the plugin modules found now can be imported.
    invalidate_import_caches()
    found = _scan(group)
    if fingerprint is not None:
        _scan_cache[group] = (fingerprint, found)
    else:
        _scan_cache.pop(group, None)
    return found
