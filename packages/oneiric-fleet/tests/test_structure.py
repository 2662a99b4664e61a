"""oneiric.fleet's structure: imports form a DAG, modules stay small, ``__all__`` is true."""

from __future__ import annotations

import oneiric.fleet
from oneiric.testing import StructureChecks


class TestStructure(StructureChecks):
    package = oneiric.fleet
