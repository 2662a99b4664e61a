"""oneiric.actions's structure: imports form a DAG, modules stay small, ``__all__`` is true."""

from __future__ import annotations

import oneiric.actions
from oneiric.testing import StructureChecks


class TestStructure(StructureChecks):
    package = oneiric.actions
