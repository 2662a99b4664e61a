"""oneiric-cli start-up and demo wall time, in a fresh venv with every package installed.

Why a fresh venv: what a user feels is the console script in a clean
environment, not an editable development install with test tools on the path.
Each figure is the median wall time of a new process, interleaved with
``python -c pass`` from the same venv as the same-run reference.

    python benchmarks/bench_cli.py                 # builds /tmp venv, installs ./packages/*
    python benchmarks/bench_cli.py --venv DIR      # reuse a venv that has them installed
    python benchmarks/bench_cli.py --quick --json

The timed processes run without ``PYTHONDONTWRITEBYTECODE`` (a user's shell
does not set it): pip compiles the installed packages' byte-code in a fresh
venv, and with ``--venv`` of an editable install the warm-up runs write what
is missing, so no figure includes compiling sources on every start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Result, interleaved, median, parser, report

#: The control commands' target: both figures, in the same run.
CONTROL_LIMIT_MS = 150.0
CONTROL_RATIO = 6.0

PACKAGES = ["oneiric-core", "oneiric-lifecycle", "oneiric-cli", "oneiric-adapters-cache",
            "oneiric-adapters-storage", "oneiric-remote"]


#: Control commands timed against the same reference (rounds run in a shuffled order).
CONTROL: dict[str, list[str]] = {
    "swap": ["swap", "--defer", "adapter", "cache", "memory"],  # order-free: may run paused
    "pause": ["pause", "adapter", "cache"],
    "resume": ["resume", "adapter", "cache"],
    "drain": ["drain", "adapter", "cache"],
    "status": ["status", "--json"],
}


class BothTargets(Result):
    """A control command's row: met only if <= 150 ms *and* <= 6x ``python -c pass``."""

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        return ratio is not None and ratio <= CONTROL_RATIO and self.value <= CONTROL_LIMIT_MS


def _load() -> str:
    """The 1-minute load average (the machine is shared: say how busy it was)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # not on this platform
        return "unknown"


def _bin(venv: Path, name: str) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / name)


def make_venv(target: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run(
        [_bin(target, "python"), "-m", "pip", "install", "--quiet",
         *[str(ROOT / "packages" / p) for p in PACKAGES]],
        check=True,
    )
    return target


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr[-1000:]}")
    return elapsed


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--venv", type=Path, default=None, help="use this venv instead of a new one")
    args = p.parse_args()
    repeats = 5 if args.quick else 15
    demo_repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-cli-") as tmp:
        work = Path(tmp)
        venv = args.venv or make_venv(work / "venv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
        env["ONEIRIC_STATE_DIR"] = str(work / "state")
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # what a user runs: byte-code is cached
        load_before = _load()
        python, oneiric = _bin(venv, "python"), _bin(venv, "oneiric")
        timed([oneiric, "--help"], work, env)  # warm the file cache and byte-code
        timed([oneiric, "list", "--json"], work, env)
        # the control plane after a first swap left a selection overlay in the state dir
        timed([oneiric, "swap", "adapter", "cache", "memory"], work, env)
        samples = interleaved(
            {
                "pass": lambda: timed([python, "-c", "pass"], work, env),
                "help": lambda: timed([oneiric, "--help"], work, env),
                "list": lambda: timed([oneiric, "list", "--json"], work, env),
                **{
                    name: (lambda argv=argv: timed([oneiric, *argv], work, env))
                    for name, argv in CONTROL.items()
                },
            },
            repeats,
        )
        demo = interleaved(
            {
                "pass": lambda: timed([python, "-c", "pass"], work, env),
                "demo": lambda: timed([oneiric, "demo", "--json"], work, env),
            },
            demo_repeats,
        )
        load = f"load average {load_before} before, {_load()} after"
    ref = median(samples["pass"]) * 1000
    note = f"median of {repeats} fresh processes, interleaved with python -c pass; {load}"
    results = [
        Result("oneiric --help", median(samples["help"]) * 1000, "ms", ref,
               "python -c pass, same venv", "<= 150 ms", ("value", 150.0), note,
               samples["help"]),
        Result("oneiric list --json", median(samples["list"]) * 1000, "ms", ref,
               "python -c pass, same venv", "<= 250 ms", ("value", 250.0),
               note + "; loads every installed plugin and lists adapter/cache and storage",
               samples["list"]),
        *(
            BothTargets(f"oneiric {' '.join(argv)}", median(samples[name]) * 1000, "ms", ref,
                        "python -c pass, same venv",
                        f"<= {CONTROL_LIMIT_MS:g} ms and <= {CONTROL_RATIO:g}x python -c pass",
                        ("ratio", CONTROL_RATIO),
                        note + "; a control command: plugins and the state dir, no settings "
                        "models", samples[name])
            for name, argv in CONTROL.items()
        ),
        Result("oneiric demo --json (wall)", median(demo["demo"]), "s",
               median(demo["pass"]), "python -c pass, same venv", "<= 10 s", ("value", 10.0),
               f"median of {demo_repeats}; all 7 steps incl. building, signing and syncing "
               "a wheel", demo["demo"]),
    ]
    return report("oneiric-cli", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
