"""A real plugin distribution on disk, for tests that need entry-point discovery.

Why real: ``load_plugins`` reads installed distributions' metadata, so a test
plugin must be a module plus a ``*.dist-info`` with ``entry_points.txt`` in a
directory on the path (``PYTHONPATH`` for a child process).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["install_plugin"]


def install_plugin(site: Path, dist: str, source: str) -> None:
    """Install a real distribution ``dist`` in ``site`` whose entry point ``main`` is ``source``.

    The module is named after the distribution (``-`` becomes ``_``).
    """
    module = dist.replace("-", "_")
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n\n")
    (info / "entry_points.txt").write_text(f"[oneiric]\nmain = {module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n")
