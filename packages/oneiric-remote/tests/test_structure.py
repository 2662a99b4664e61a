"""oneiric.remote's structure: module-level imports form a DAG, modules small, __all__ true.

Through the one checker in ``oneiric.testing`` (an ``ast`` walk, so a cycle
that only works because of import order still counts).  ``_sync`` (710 lines)
and ``_install`` (593) were split by job.
"""

from __future__ import annotations

from pathlib import Path

import oneiric.remote as package
from oneiric.testing import import_cycles, missing_exports, module_imports, oversized_modules

SOURCE = Path(package.__file__).parent
REMOTE = package.__name__

#: Modules allowed above 500 lines, each with the reason it is still one job.
ALLOWED: dict[str, str] = {}


def test_no_import_cycle_among_remote_modules() -> None:
    graph = module_imports(SOURCE, REMOTE)
    assert f"{REMOTE}._state" in graph[f"{REMOTE}._sync"], graph  # the graph is really read
    assert import_cycles(SOURCE, REMOTE) == []


def test_no_module_over_500_lines_unless_allow_listed() -> None:
    assert oversized_modules(SOURCE, allowed=ALLOWED) == []


def test_every_name_in_all_exists() -> None:
    assert missing_exports(package) == {}
