"""The shape of the core's source: no import cycle among its modules, no oversized module.

Both are read from the source with ``ast`` (nothing is imported), so the test
sees every module, including those ``import oneiric.core`` loads lazily.
Module-level imports are what Python runs at import time, so they must form a
DAG.  The stricter check counts every import - also those inside ``if
TYPE_CHECKING:`` (types only) and inside functions (deferred on purpose, to keep
``import oneiric.core`` cheap) -, because a deferred import that closes a cycle
only hides it: the ``_hooks`` -> ``_hookspecs`` -> ``_hooks`` cycle was one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import oneiric.core

PACKAGE = "oneiric.core"
SOURCE = Path(oneiric.core.__file__).parent
MAX_LINES = 500
#: Modules allowed above MAX_LINES, each with the reason it is still one job.
LONG_MODULES = {
    "_resolver": "one job (the resolver's state and its cache); the hot path is a closure over "
    "its dicts and fills/invalidation share them, splitting would add indirection to resolve()",
}


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(SOURCE.glob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements that run at import, ``if TYPE_CHECKING:`` bodies left out."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found.extend(_runtime_statements(node.body))
            found.extend(_runtime_statements(node.orelse))
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found.extend(_runtime_statements(block))
            for handler in node.handlers:
                found.extend(_runtime_statements(handler.body))
        else:
            found.append(node)
    return found


def _sibling_imports(
    name: str, tree: ast.Module, names: set[str], *, everywhere: bool = False
) -> set[str]:
    """The core modules ``name`` imports at module level (``everywhere``: anywhere)."""
    found: set[str] = set()
    nodes = list(ast.walk(tree)) if everywhere else _runtime_statements(tree.body)
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module is None:  # from . import _x
                    found.update(a.name for a in node.names if a.name in names)
                else:
                    found.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
                found.add(node.module[len(PACKAGE) + 1 :].split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1 :].split(".")[0])
    found.discard(name)
    return found & names


def _import_graph(*, everywhere: bool = False) -> dict[str, set[str]]:
    trees = _modules()
    names = set(trees)
    return {
        name: _sibling_imports(name, tree, names, everywhere=everywhere)
        for name, tree in trees.items()
    }


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_module_level_imports_of_the_core_form_a_dag() -> None:
    graph = _import_graph()
    assert graph["_settings"] >= {"_overlay", "_interpolate"}, graph["_settings"]  # parsed
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph) or [])


def test_no_import_cycle_even_through_deferred_or_type_checking_imports() -> None:
    graph = _import_graph(everywhere=True)
    assert "_hookspecs" in graph["_hooks"]  # a function-level import, seen
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph) or [])


def test_the_cycle_finder_reports_a_cycle() -> None:
    graph = {"_hooks": {"_hookspecs"}, "_hookspecs": {"_secrets"}, "_secrets": {"_hooks"}}
    assert _find_cycle(graph) == ["_hooks", "_hookspecs", "_secrets", "_hooks"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_do_not_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from ._a import x\n"
        "if TYPE_CHECKING:\n    from ._b import y\n"
        "def f():\n    from ._c import z\n"
    )
    assert _sibling_imports("m", tree, {"_a", "_b", "_c"}) == {"_a"}
    assert _sibling_imports("m", tree, {"_a", "_b", "_c"}, everywhere=True) == {"_a", "_b", "_c"}


def test_markers_are_a_leaf() -> None:
    """The hook markers import nothing of the package: hookspecs and secrets depend on them."""
    graph = _import_graph()
    assert graph["_markers"] == set()
    assert "_hooks" not in graph["_hookspecs"] | graph["_secrets"]


def test_no_module_above_the_line_limit_without_a_reason() -> None:
    sizes = {
        path.stem: len(path.read_text(encoding="utf-8").splitlines())
        for path in SOURCE.glob("*.py")
    }
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in LONG_MODULES}
    assert not too_long, f"split these by job (or justify in LONG_MODULES): {too_long}"
    stale = {name for name in LONG_MODULES if sizes.get(name, 0) <= MAX_LINES}
    assert not stale, f"no longer above {MAX_LINES} lines, drop from LONG_MODULES: {stale}"
