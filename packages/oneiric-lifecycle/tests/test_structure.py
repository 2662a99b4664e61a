"""The shape of the package: no import cycle among its modules, no module holding several jobs.

Read with ``ast`` (nothing is imported), so the test also covers imports that
only run under ``TYPE_CHECKING``: a cycle there is still two modules that
cannot be understood one without the other.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import oneiric.lifecycle

PACKAGE = "oneiric.lifecycle"
SOURCE = Path(oneiric.lifecycle.__file__).parent
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    return {path.stem: path for path in sorted(SOURCE.glob("*.py"))}


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements at module level, including those inside ``if``/``try`` blocks."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If):
            found += _module_level(node.body) + _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _module_level(block)
            for handler in node.handlers:
                found += _module_level(handler.body)
    return found


def _sibling_imports(path: Path, names: set[str]) -> set[str]:
    """The package modules ``path`` imports at module level (relative or absolute)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported: set[str] = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:
                targets = [alias.name for alias in node.names]
            elif node.level == 1 and node.module is not None:
                targets = [node.module.split(".")[0]]
            elif node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
                targets = [(node.module or "")[len(PACKAGE) + 1 :].split(".")[0]]
            else:
                continue
            imported.update(t for t in targets if t in names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    target = alias.name[len(PACKAGE) + 1 :].split(".")[0]
                    if target in names:
                        imported.add(target)
    imported.discard(path.stem)
    return imported


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules)
    return {name: _sibling_imports(path, names) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_structure_cycle_finder_sees_a_cycle() -> None:
    """The checker itself: a planted cycle (also through a third module) is reported."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_structure_sibling_imports_are_read_inside_type_checking_blocks(
    tmp_path: Path,
) -> None:
    module = tmp_path / "_x.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ._a import A\n"
        "from . import _b\n"
        "from oneiric.lifecycle._c import C\n"
        "if TYPE_CHECKING:\n"
        "    from ._d import D\n"
        "def f():\n"
        "    from ._e import E\n",
        encoding="utf-8",
    )
    assert _sibling_imports(module, {"_a", "_b", "_c", "_d", "_e"}) == {"_a", "_b", "_c", "_d"}


def test_structure_no_import_cycle_among_lifecycle_modules() -> None:
    graph = _graph()
    assert graph.get("_manager"), graph  # the parser sees imports
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_structure_module_size(name: str) -> None:
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}.py has {lines} lines; split it by job"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_structure_every_name_in_all_exists(name: str) -> None:
    module_name = PACKAGE if name == "__init__" else f"{PACKAGE}.{name}"
    module = importlib.import_module(module_name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, f"{module_name}.__all__ names what it lacks: {missing}"
