"""Every name a module promises in ``__all__`` exists.

``from oneiric.core import *`` and the documentation both read ``__all__``;
a name listed there but missing (renamed, moved, or only defined under
``TYPE_CHECKING``) is an ``AttributeError`` that users meet first.  Lazy
module ``__getattr__`` names count: they must resolve.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_all() -> list[str]:
    """Every module under packages/*/src that assigns ``__all__``, as a dotted name."""
    names: list[str] = []
    for path in sorted(ROOT.glob("packages/*/src/oneiric/**/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declares = any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            for node in tree.body
        )
        if not declares:
            continue
        src = next(p for p in path.parents if p.name == "src")
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _modules_with_all()
#: Modules whose import needs an optional extra or a test-only dependency.
OPTIONAL = ("testing", "_redis", "_memcached", "_gcs", "_obstore")


def test_modules_were_found() -> None:
    assert "oneiric.core" in MODULES and len(MODULES) > 20


@pytest.mark.parametrize("module_name", MODULES)
def test_every_name_in_all_exists(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if module_name.rsplit(".", 1)[-1] in OPTIONAL:
            pytest.skip(f"{module_name} needs an optional dependency: {exc}")
        raise
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{module_name}.__all__ lists a name twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"
