"""Structure checks a package's own tests run: no import cycle, no oversized module.

Why here: every Oneiric package keeps the same two rules (ARCHITECTURE.md,
STYLE.md: small modules with one job, sibling imports forming a DAG), and one
checker keeps the packages from each growing its own ``ast`` walk.  Only
imports that run when a module is imported count: those at module level
(including inside a top-level ``try``/``if``), not ``if TYPE_CHECKING:`` blocks
and not the lazy imports inside functions.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

__all__ = [
    "StructureChecks",
    "import_cycles",
    "missing_exports",
    "module_imports",
    "oversized_modules",
]


def _modules(package_dir: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file below ``package_dir``."""
    found: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([package, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(body: Iterable[ast.stmt]) -> Iterable[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _runtime_imports(node.body)
            yield from _runtime_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _runtime_imports(block)
            for handler in node.handlers:
                yield from _runtime_imports(handler.body)


def module_imports(package_dir: Path, package: str) -> dict[str, set[str]]:
    """The module-level import graph among the modules of ``package`` (dotted names)."""
    modules = _modules(package_dir, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = here.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def import_cycles(package_dir: Path, package: str) -> list[list[str]]:
    """Every cycle of the module-level import graph (each as a closed path); ``[]`` is good."""
    graph = module_imports(package_dir, package)
    return _cycles(graph)


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def oversized_modules(
    package_dir: Path, *, limit: int = 500, allowed: Mapping[str, str] | None = None
) -> list[tuple[str, int]]:
    """``[(file relative to package_dir, lines)]`` above ``limit`` lines and not ``allowed``.

    ``allowed`` maps a relative file name to the reason it may be longer (one
    job that does not split well); a reason is required so the exception is
    argued where it is granted.
    """
    allowed = dict(allowed or {})
    for name, reason in allowed.items():
        if not reason.strip():
            raise ValueError(f"allow-listed module {name!r} needs a reason")
    found: list[tuple[str, int]] = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit and rel not in allowed:
            found.append((rel, lines))
    return found


def missing_exports(package: ModuleType) -> dict[str, list[str]]:
    """``{module: [names]}`` for each ``__all__`` entry its module of ``package`` lacks."""
    package_dir = Path(package.__file__ or "").parent
    missing: dict[str, list[str]] = {}
    for name in _modules(package_dir, package.__name__):
        if name.endswith(".__main__"):
            continue  # running it is its job; importing it would run the program
        module = importlib.import_module(name)
        lacking = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        if lacking:
            missing[name] = lacking
    return missing


class StructureChecks:
    """The three structure rules as tests: subclass it once per package.

    ::

        import oneiric.runtime
        from oneiric.testing import StructureChecks

        class TestStructure(StructureChecks):
            package = oneiric.runtime
            allowed = {}   # file name -> why a module above 500 lines is still one job

    (Not named ``Test...``: pytest collects only the subclass.)  A package with
    rules of its own keeps them as extra tests beside it.
    """

    package: ModuleType
    allowed: Mapping[str, str] = {}

    def _source(self) -> Path:
        return Path(self.package.__file__ or "").parent

    def test_no_import_cycle_among_package_modules(self) -> None:
        assert import_cycles(self._source(), self.package.__name__) == []

    def test_no_module_over_500_lines_unless_allow_listed(self) -> None:
        assert oversized_modules(self._source(), allowed=self.allowed) == []
        # an allow-listed module that shrank must leave the list
        source = self._source()
        assert all(
            len((source / name).read_text(encoding="utf-8").splitlines()) > 500
            for name in self.allowed
        )

    def test_every_name_in_all_exists(self) -> None:
        assert missing_exports(self.package) == {}
