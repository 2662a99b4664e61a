"""Module shadowing: a delivered top-level name must not take the place of other code.

An artifact's package is appended to ``sys.path``, so a name that exists
elsewhere (the stdlib, an installed distribution, another artifact) would make
``import name`` ambiguous - or, for a requirement of an installed distribution
that is missing, make that distribution import delivered code outside the
source's scope.  Each of these is a ``ModuleShadowingError``; nothing is renamed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import ModuleShadowingError
from ._requirements import import_key, required_names

if TYPE_CHECKING:
    from ._archive import ArchiveInfo

__all__ = ["check_shadowing", "origin_of"]


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
            why = required.get(import_key(name))
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
            where = origin_of(name)
            if where is not None and not where.startswith(vendor_root):
                raise ModuleShadowingError(
                    f"artifact {artifact_id!r} ships top-level {name!r}, which is already "
                    f"importable from {where}; rename the package or uninstall the other one"
                )


def origin_of(name: str) -> str | None:
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
