"""The shape of oneiric-remote: no import cycle, small modules with one job, honest ``__all__``.

Read with ``ast``, not by importing: a cycle that only works because of import
order is still a cycle.  Module-level imports count (``TYPE_CHECKING`` blocks
and imports inside functions do not: they run after every module is loaded).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "oneiric" / "remote"
MAX_LINES = 500
#: modules allowed above MAX_LINES, with the reason they are one job
ONE_JOB_ALLOWED: dict[str, str] = {}
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))


def _module_level_imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports when it is loaded (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    visit(node.orelse)
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    found.add(node.module.split(".")[0])
                elif node.level == 1:
                    found.update(alias.name for alias in node.names)
                elif node.module and node.module.startswith("oneiric.remote."):
                    found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("oneiric.remote."):
                        found.add(alias.name.split(".")[2])

    visit(tree.body)
    return found & set(MODULES)


def _graph() -> dict[str, set[str]]:
    return {name: _module_level_imports(PACKAGE / f"{name}.py") for name in MODULES}


def test_module_import_graph_is_acyclic() -> None:
    graph = _graph()
    done: set[str] = set()
    stack: list[str] = []

    def walk(name: str) -> None:
        if name in stack:
            cycle = [*stack[stack.index(name):], name]
            pytest.fail(f"import cycle in oneiric.remote: {' -> '.join(cycle)}")
        if name in done:
            return
        stack.append(name)
        for target in sorted(graph[name]):
            walk(target)
        stack.pop()
        done.add(name)

    for name in MODULES:
        walk(name)


def test_cycle_detector_sees_a_cycle(tmp_path: Path) -> None:
    """The reader above finds relative imports (what a cycle here would be made of)."""
    sample = tmp_path / "m.py"
    sample.write_text(
        "from . import _veto\nfrom ._sync import x\nif TYPE_CHECKING:\n    from ._cli import y\n"
        "try:\n    from ._state import z\nexcept ImportError:\n    pass\n"
    )
    assert _module_level_imports(sample) == {"_veto", "_sync", "_state"}


@pytest.mark.parametrize("name", MODULES)
def test_module_is_small_or_one_job(name: str) -> None:
    lines = len((PACKAGE / f"{name}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES or name in ONE_JOB_ALLOWED, (
        f"oneiric.remote.{name} has {lines} lines; split it by job or allow-list it with a reason"
    )


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    if name == "_cli":
        pytest.importorskip("click")
    module = importlib.import_module(f"oneiric.remote.{name}" if name != "__init__"
                                     else "oneiric.remote")
    for exported in getattr(module, "__all__", ()):
        assert getattr(module, exported, None) is not None, f"{name}.__all__ names {exported}"
