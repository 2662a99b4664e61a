"""Run every ``bench_*.py`` next to this file, each in its own interpreter, and print its table.

Each script runs as a subprocess so that one benchmark's imports, caches and
garbage do not distort the next.  New ``bench_<name>.py`` files are picked up
automatically.  Exit status is non-zero if any script fails (a missed target
is reported in the tables, it is not a failure).

    python benchmarks/run.py                   # everything
    python benchmarks/run.py --only core       # bench_core.py only (comma list or repeat)
    python benchmarks/run.py --skip install    # everything but bench_install.py
    python benchmarks/run.py --only core -- --quick   # arguments after -- go to every script
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    """``{name: path}`` of every ``bench_<name>.py``, sorted by name."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def _names(values: list[str]) -> set[str]:
    return {n.strip().removeprefix("bench_").removesuffix(".py") for v in values
            for n in v.split(",") if n.strip()}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", default=[], help="run only these (e.g. core)")
    p.add_argument("--skip", action="append", default=[], help="skip these (e.g. install)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)

    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    only, skip = _names(args.only), _names(args.skip)
    unknown = (only | skip) - set(found)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
              f"available: {', '.join(found)}", file=sys.stderr)
        return 2
    selected = {n: path for n, path in found.items()
                if (not only or n in only) and n not in skip}
    if not selected:
        print("no benchmark selected", file=sys.stderr)
        return 2

    summary: list[tuple[str, int, float]] = []
    for name, path in selected.items():
        print(f"\n## {name} ({path.name})\n", flush=True)
        start = time.perf_counter()
        # stdout/stderr are inherited: tables stream as they are printed
        code = subprocess.call([sys.executable, str(path), *extra], cwd=HERE.parent)
        summary.append((name, code, time.perf_counter() - start))

    print("\n## summary\n")
    for name, code, elapsed in summary:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"- {name}: {status} in {elapsed:.0f} s")
    return 1 if any(code for _, code, _ in summary) else 0


if __name__ == "__main__":
    raise SystemExit(main())
