"""Real wheels in fresh venvs: what a user's ``pip install`` gives, for install tests.

One home for "the package's wheel": the nox integration session builds every
wheel once into ``ONEIRIC_WHEELHOUSE``; a test run elsewhere builds the one
it needs.  Tests then install wheels into a new venv, never the dev tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["fresh_venv", "local_wheel"]


def local_wheel(source: Path, into: Path) -> Path:
    """The wheel of the project at ``source``: from ``ONEIRIC_WHEELHOUSE`` if built, else now."""
    import tomllib

    name = tomllib.loads((source / "pyproject.toml").read_text())["project"]["name"]
    stem = name.replace("-", "_")
    house = os.environ.get("ONEIRIC_WHEELHOUSE")
    if house:
        found = sorted(Path(house).glob(f"{stem}-*.whl"))
        if found:
            return found[-1]
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(into), str(source)],
        check=True,
    )
    return sorted(into.glob(f"{stem}-*.whl"))[-1]


def fresh_venv(path: Path, *requirements: str | os.PathLike[str], timeout: float = 900) -> Path:
    """Create a venv at ``path``, pip install ``requirements`` into it; return its python."""
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / ("Scripts" if os.name == "nt" else "bin") / "python"
    if requirements:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *map(str, requirements)],
            check=True,
            timeout=timeout,
        )
    return python
