"""Guards for the monorepo layout that every package relies on.

One stray ``oneiric/__init__.py`` turns the namespace into a regular package
and breaks every other distribution's imports, so this is checked on the
source tree here and on the built wheels by ``nox -s build``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def test_there_are_packages() -> None:
    assert {p.name for p in PACKAGES} >= {"oneiric-core", "oneiric-testing"}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_namespace_levels_have_no_init(package: Path) -> None:
    for level in ("src/oneiric/__init__.py", "src/oneiric/adapters/__init__.py"):
        assert not (package / level).exists(), f"{package.name}: {level} breaks the namespace"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_package_shape(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/oneiric"]
    assert project["project"]["requires-python"] == ">=3.11"
    about = project["tool"]["hatch"]["version"]["path"]
    assert (package / about).is_file() and about.endswith("__about__.py")
    assert (package / "README.md").is_file()
    assert list((package / "src" / "oneiric").rglob("py.typed")), "ships py.typed"
    for dep in project["project"].get("dependencies", []):
        if dep.startswith("oneiric-"):
            assert "==" not in dep and re.search(r">=.*,<", dep), f"use a compatible range: {dep}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_test_folders_have_no_init(package: Path) -> None:
    assert not list((package / "tests").rglob("__init__.py"))


def test_top_level_tests_have_no_init() -> None:
    assert not list((ROOT / "tests").rglob("__init__.py"))
