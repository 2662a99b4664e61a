"""What CI and the README run.

Sessions
--------
tests(package)  each package built as a real wheel and installed *alone* (plus the
                local wheels of the oneiric siblings it declares), then its own tests
integration     every package + top-level tests/ (cross-package, examples, layout guard)
fuzz            the parsers of untrusted input fuzzed for 60 s each (fuzz/, Hypothesis)
build           every wheel built; none may ship oneiric/__init__.py or oneiric/adapters/__init__.py
lint            ruff
typecheck       mypy --strict on every package
demo            the demo on embedded defaults
benchmarks      the benchmarks, peers included (not part of the default run)

Every pytest run writes JUnit XML to .ci-reports/ so .ci/run can print one total.
"""

from __future__ import annotations

import re
import shutil
import tomllib
import zipfile
from pathlib import Path

import nox

nox.options.download_python = "never"
nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "build", "tests", "integration", "fuzz", "demo"]

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
WHEELS = ROOT / ".wheels"
REPORTS = ROOT / ".ci-reports"
FUZZ = ROOT / "fuzz"
FUZZ_SECONDS = "60"  # per parser (manifest, settings, overlay, archive)
EXAMPLES = ROOT / "examples"
PACKAGES = sorted(p.name for p in PACKAGES_DIR.iterdir() if (p / "pyproject.toml").is_file())
FORBIDDEN_IN_WHEEL = ("oneiric/__init__.py", "oneiric/adapters/__init__.py")
#: Installed by the benchmarks session for benchmarks/bench_peers.py (never by CI's run).
BENCHMARK_PEERS = ("stevedore", "dependency-injector", "svcs", "dishka", "lagom", "punq")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())


def _local_deps(package: str) -> list[str]:
    """The package and every oneiric sibling it depends on (transitively), in build order."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in _project(PACKAGES_DIR / name)["project"].get("dependencies", []):
            match = _NAME.match(dep)
            if match and match.group(1) in PACKAGES:
                visit(match.group(1))
        order.append(name)

    visit(package)
    return order


def _test_requirements(package_dir: Path) -> list[str]:
    """A package's [dependency-groups] test (or, for tests/, its requirements.txt)."""
    if not (package_dir / "pyproject.toml").is_file():
        lines = (package_dir / "requirements.txt").read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return list(_project(package_dir).get("dependency-groups", {}).get("test", []))


def _build_wheel(session: nox.Session, source: Path) -> Path:
    """Build one wheel into .wheels/ (replacing older builds of it) and return its path."""
    name = _project(source)["project"]["name"].replace("-", "_")
    WHEELS.mkdir(exist_ok=True)
    for old in WHEELS.glob(f"{name}-*.whl"):
        old.unlink()
    session.run(
        "python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(WHEELS), str(source),
    )
    (wheel,) = WHEELS.glob(f"{name}-*.whl")
    return wheel


def _pytest(
    session: nox.Session, report: str, *args: str, env: dict[str, str] | None = None
) -> None:
    REPORTS.mkdir(exist_ok=True)
    session.run(
        "python", "-m", "pytest", f"--junitxml={REPORTS / report}.xml",
        "-p", "no:cacheprovider", *args, *session.posargs, env=env or {},
    )


def _split_requirements(requirements: list[str]) -> tuple[list[str], list[str]]:
    """Split into (local oneiric packages and their local deps, requirements for pip)."""
    local: list[str] = []
    remote: list[str] = []
    for req in requirements:
        match = _NAME.match(req)
        name = match.group(1) if match else ""
        if name in PACKAGES:
            local.extend(n for n in _local_deps(name) if n not in local)
        else:
            remote.append(req)
    return local, remote


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package, installed alone from its wheel, against its own tests.

    Only the package, the oneiric siblings it declares and its test group are
    installed, so a test importing an undeclared sibling fails here.
    """
    session.install("hatchling>=1.21")
    local, remote = _split_requirements(_test_requirements(PACKAGES_DIR / package))
    names = [n for n in [*_local_deps(package), *local] if n]
    names = list(dict.fromkeys(names))
    wheels = [_build_wheel(session, PACKAGES_DIR / name) for name in names]
    session.install(*map(str, wheels), *remote)
    _pytest(session, f"tests-{package}", str(PACKAGES_DIR / package / "tests"))


@nox.session
def integration(session: nox.Session) -> None:
    """Every package together plus the top-level cross-package tests."""
    session.install("hatchling>=1.21")
    wheels = [_build_wheel(session, PACKAGES_DIR / name) for name in PACKAGES]
    requirements = [r for name in PACKAGES for r in _test_requirements(PACKAGES_DIR / name)]
    requirements += _test_requirements(ROOT / "tests")
    _, remote = _split_requirements(requirements)
    session.install(*map(str, wheels), *sorted(set(remote)))
    _pytest(session, "integration", str(ROOT / "tests"), env={"ONEIRIC_WHEELHOUSE": str(WHEELS)})


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz the parsers that read untrusted input, FUZZ_SECONDS per parser.

    Every wheel is installed (as in ``integration``) so the installed code is
    what gets fuzzed; a failure lists each distinct exception with its
    shrunk input.
    """
    session.install("hatchling>=1.21")
    wheels = [_build_wheel(session, PACKAGES_DIR / name) for name in PACKAGES]
    session.install(*map(str, wheels), *_test_requirements(FUZZ))
    _pytest(session, "fuzz", str(FUZZ), env={"ONEIRIC_FUZZ_SECONDS": FUZZ_SECONDS})


@nox.session
def build(session: nox.Session) -> None:
    """Build every wheel and refuse any that would break the namespace."""
    session.install("hatchling>=1.21")
    bad: list[str] = []
    for name in PACKAGES:
        wheel = _build_wheel(session, PACKAGES_DIR / name)
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
        bad.extend(f"{wheel.name}: {path}" for path in FORBIDDEN_IN_WHEEL if path in names)
        if not any(n.startswith("oneiric/") for n in names):
            bad.append(f"{wheel.name}: ships nothing under oneiric/")
        session.log(f"{wheel.name}: {len(names)} files")
    if bad:
        session.error("namespace-breaking wheels: " + "; ".join(bad))


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run(
        "ruff", "check", "packages", "tests", "benchmarks", "examples", "fuzz", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package (each on its own: they share the oneiric namespace)."""
    session.install("mypy>=1.10", "types-PyYAML")
    order = list(dict.fromkeys(dep for name in PACKAGES for dep in _local_deps(name)))
    for name in order:  # siblings first: pip finds them installed, not on an index
        extras = _project(PACKAGES_DIR / name)["project"].get("optional-dependencies", {})
        suffix = f"[{','.join(sorted(extras))}]" if extras else ""
        session.install("-e", f"{PACKAGES_DIR / name}{suffix}")
    for name in PACKAGES:
        session.run("mypy", "--strict", str(PACKAGES_DIR / name / "src"))


@nox.session
def demo(session: nox.Session) -> None:
    """The demo on embedded defaults: every package built as a wheel, then ``oneiric demo``.

    Also runs the core-only walk-through (examples/demo.py) with the example
    third-party plugin installed from its wheel.
    """
    session.install("hatchling>=1.21")
    wheels = [_build_wheel(session, PACKAGES_DIR / name) for name in PACKAGES]
    plugins = [
        _build_wheel(session, path)
        for path in sorted(EXAMPLES.iterdir())
        if (path / "pyproject.toml").is_file()
    ]
    session.install(*map(str, wheels + plugins))
    session.run("oneiric", "demo", *session.posargs)
    session.run("python", str(EXAMPLES / "demo.py"))


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run the benchmarks and print the table for docs/performance.md.

    The peers of bench_peers.py (DI containers, plugin loaders) are installed
    here only: they are compared with, never depended on.
    """
    session.install("hatchling>=1.21")
    wheels = [_build_wheel(session, PACKAGES_DIR / name) for name in PACKAGES]
    session.install(*map(str, wheels), "pluggy", *BENCHMARK_PEERS)
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)


@nox.session(venv_backend="none")
def clean(session: nox.Session) -> None:
    """Remove build and report artefacts."""
    for path in (WHEELS, REPORTS):
        shutil.rmtree(path, ignore_errors=True)
