"""Vendor dirs on ``sys.path``: activation per repository, and a source-only import hook.

A repository's vendor dirs are swapped on ``sys.path`` as a whole (appended,
never ``site.addsitedir``: no ``.pth`` file ever runs).  The dirs this process
activated get a ``sys.path_hooks`` entry whose finder loads ``.py`` sources only
and never reads or writes bytecode, so a ``.pyc`` planted in a vendor dir never
runs.  Which dirs are active is process state, like ``sys.path`` itself.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._shadowing import origin_of

if TYPE_CHECKING:
    from ._install import Staged

__all__ = ["activate_paths", "active_paths", "needs_restart"]

#: vendor dirs this process put on sys.path, per repository
_active_paths: dict[str, list[str]] = {}


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


def needs_restart(staged: Iterable[Staged], cache_dir: Path) -> bool:
    """True if a top-level package of the new version is imported from another vendor dir."""
    vendor_root = (cache_dir / "vendor").resolve()
    for item in staged:
        new_dir = item.vendor.resolve()
        for name in item.info.top_level:
            module = sys.modules.get(name)
            if module is None:
                continue
            where = origin_of(name)
            if where is None:
                continue
            path = Path(where.rstrip(os.sep))
            if vendor_root in path.parents and new_dir not in (path, *path.parents):
                return True
    return False
