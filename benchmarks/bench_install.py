"""oneiric-core as a user installs it: distributions pulled in and ``import oneiric.core`` time.

Builds (or reuses from ``.wheels/``) the oneiric-core wheel, installs it into a
fresh ``python -m venv`` with pip, then reports

* how many distributions the install brings (``pip list`` minus pip/setuptools;
  target <= 12), and
* the cumulative ``-X importtime`` of ``oneiric.core`` (median of fresh
  processes; target <= 50 ms), next to ``pluggy`` (a dependency it must import)
  measured interleaved in the same venv.

Separate from bench_core.py because it needs pip (an index or a wheelhouse)
and takes a while.  ``--wheel PATH`` uses a given wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Result, interleaved, median, parser, report, run_python

CORE = ROOT / "packages" / "oneiric-core"
NOT_COUNTED = {"pip", "setuptools"}


def core_wheel(tmp: Path, given: str | None) -> Path:
    """The wheel to install: ``--wheel``, else ``.wheels/``, else a fresh ``pip wheel`` build."""
    if given:
        return Path(given)
    built = sorted((ROOT / ".wheels").glob("oneiric_core-*.whl"))
    if built:
        return built[-1]
    out = tmp / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out)]
    try:
        subprocess.run([*cmd, "--no-build-isolation", str(CORE)], check=True)
    except subprocess.CalledProcessError:  # no hatchling here: let pip fetch it
        subprocess.run([*cmd, str(CORE)], check=True)
    (wheel,) = out.glob("oneiric_core-*.whl")
    return wheel


def make_venv(path: Path, wheel: Path) -> Path:
    """A fresh venv with only the wheel and its dependencies, byte-compiled like pip does."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    subprocess.run([str(python), "-m", "compileall", "-q", str(path / "lib")], check=False)
    return python


def installed(python: Path) -> list[str]:
    _, out, _ = run_python(["-m", "pip", "list", "--format", "json"], python=str(python))
    return sorted(d["name"] for d in json.loads(out) if d["name"].lower() not in NOT_COUNTED)


def cumulative_us(stderr: str, module: str) -> tuple[int, list[tuple[int, str]]]:
    """Cumulative µs of ``module`` and the (self µs, name) of every import under it."""
    rows: list[tuple[int, int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        rows.append((int(self_us), int(cum_us), name.rstrip()))
    # -X importtime prints children before their parent; the parent has less indentation
    for index, (_, cum, name) in enumerate(rows):
        if name.strip() == module:
            depth = len(name) - len(name.lstrip())
            children: list[tuple[int, str]] = []
            for s, _, n in reversed(rows[:index]):
                if len(n) - len(n.lstrip()) <= depth:
                    break
                children.append((s, n.strip()))
            return cum, children
    raise RuntimeError(f"{module} not in -X importtime output")


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--wheel", help="install this oneiric-core wheel instead of building one")
    args = p.parse_args()
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="oneiric-install-") as tmp:
        wheel = core_wheel(Path(tmp), args.wheel)
        python = make_venv(Path(tmp) / "venv", wheel)
        dists = installed(python)
        heaviest: dict[str, list[int]] = {}

        def importtime(module: str) -> float:
            _, _, err = run_python(["-X", "importtime", "-c", f"import {module}"],
                                   python=str(python))
            cum, children = cumulative_us(err, module)
            if module == "oneiric.core":
                for self_us, name in children:
                    heaviest.setdefault(name, []).append(self_us)
            return cum / 1000

        importtime("oneiric.core")  # warm the OS cache
        heaviest.clear()
        samples = interleaved(
            {"core": lambda: importtime("oneiric.core"), "pluggy": lambda: importtime("pluggy")},
            repeats,
        )
    top = sorted(((median(v), k) for k in heaviest for v in [heaviest[k]]), reverse=True)[:6]
    results = [
        Result(
            "distributions installed with oneiric-core",
            float(len(dists)),
            "",
            target="<= 12",
            check=("value", 12),
            note=f"{wheel.name} into a fresh venv: {', '.join(dists)} (pip/setuptools not counted)",
        ),
        Result(
            "import oneiric.core (cumulative -X importtime)",
            median(samples["core"]),
            "ms",
            median(samples["pluggy"]),
            "import pluggy, same venv",
            target="<= 50 ms",
            check=("value", 50.0),
            note=(
                f"median of {repeats} fresh processes; largest self times: "
                + ", ".join(f"{name} {us / 1000:.1f} ms" for us, name in top)
            ),
            samples=samples["core"],
        ),
    ]
    return report("oneiric-core install", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
