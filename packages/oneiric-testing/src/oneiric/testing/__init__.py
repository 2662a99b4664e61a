"""Shared test helpers for Oneiric packages.

Why a distribution: every package's tests need the same live-server policy
(skip locally, fail in CI) and the same eventual-state polling; copying a
conftest.py into each package would let them drift.  The structure checks
(``import_cycles``, ``oversized_modules``) are the same rule for every package.
"""

from __future__ import annotations

from .__about__ import __version__
from ._docs import OUTPUT_MARK, python_examples, run_python_example
from ._helpers import apoll_until, free_port, in_ci, poll_until, require_live
from ._plugins import install_plugin
from ._redis import PrivateRedis
from ._structure import (
    StructureChecks,
    import_cycles,
    missing_exports,
    module_imports,
    oversized_modules,
)
from ._wheels import fresh_venv, local_wheel

__all__ = [
    "OUTPUT_MARK",
    "PrivateRedis",
    "StructureChecks",
    "__version__",
    "apoll_until",
    "free_port",
    "fresh_venv",
    "import_cycles",
    "in_ci",
    "install_plugin",
    "local_wheel",
    "missing_exports",
    "module_imports",
    "oversized_modules",
    "poll_until",
    "python_examples",
    "require_live",
    "run_python_example",
]
