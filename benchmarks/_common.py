"""Helpers shared by the ``bench_*.py`` scripts.

The machine the benchmarks run on is small and shared, so every figure is a
median of several repeats, and every figure is reported next to a reference
measured in the same run (interleaved with it), as a ratio: ratios survive
noise and machine changes far better than absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One row of a benchmark table: a figure, its reference and the target it answers to."""

    name: str
    value: float
    unit: str
    reference: float | None = None
    reference_name: str = ""
    target: str = ""
    # "ratio <= 1.5", "value <= 5", "ratio <= 0.667" ...; None when only informative
    check: tuple[str, float] | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        if self.check is None:
            return None
        what, limit = self.check
        got = self.ratio if what == "ratio" else self.value
        return got is not None and got <= limit

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(value: float | None, unit: str = "") -> str:
    """Three significant digits, enough for noisy timings."""
    if value is None:
        return "-"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| figure | value | reference | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        ref = f"{fmt(r.reference, r.unit)} ({r.reference_name})" if r.reference_name else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(
            f"| {r.name} | {fmt(r.value, r.unit)} | {ref} | {ratio} | {r.target or '-'} | {met} |"
        )
    notes = [f"- {r.name}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats (smoke test; figures are noisier)"
    )
    return p


def report(title: str, results: Sequence[Result], *, as_json: bool) -> int:
    """Print the results; return the exit code (0: ran, whatever the targets say)."""
    if as_json:
        print(json.dumps({"benchmark": title, "machine": machine(),
                          "results": [r.as_dict() for r in results]}, indent=2))
    else:
        m = machine()
        print(f"### {title}\n")
        print(f"Python {m['python']} on {m['platform']}, {m['cpus']} CPUs\n")
        print(markdown_table(results))
        print()
    return 0


def ns_per_call(stmt: str, env: dict[str, Any], number: int) -> Callable[[], float]:
    """A sampler for ``interleaved``: ns per execution of ``stmt`` over ``number`` runs.

    ``timeit`` (its loop included, on both sides of a comparison); ``env`` are the
    statement's globals.
    """
    timer = timeit.Timer(stmt, globals=env)

    def sample() -> float:
        return timer.timeit(number) / number * 1e9

    return sample


def interleaved(
    funcs: dict[str, Callable[[], float]], repeats: int
) -> dict[str, list[float]]:
    """Call every function once per round, rotating the order, ``repeats`` rounds.

    Each function returns one sample; alternating them spreads the noise of a
    shared machine evenly over the measured figure and its reference.
    """
    names = list(funcs)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(funcs[name]())
    return samples


#: Run by an interpreter: copy the named packages (with their dist-info) from its own
#: installation into argv[1], skipping those it lacks, then byte-compile argv[1:].
_COPY_PACKAGES = """
import compileall, importlib, importlib.metadata, shutil, sys
from pathlib import Path
dest = Path(sys.argv[1])
for module, dist in {packages!r}:
    try:
        src = Path(importlib.import_module(module).__file__).parent
    except ImportError:
        continue
    shutil.copytree(src, dest.joinpath(*module.split(".")),
                    ignore=shutil.ignore_patterns("__pycache__"))
    info = getattr(importlib.metadata.distribution(dist), "_path", None)
    if info is not None and not (dest / Path(info).name).exists():
        shutil.copytree(info, dest / Path(info).name)
for path in sys.argv[1:]:
    if not compileall.compile_dir(path, quiet=1, workers=1):
        raise SystemExit(f"byte-compiling {{path}} failed")
"""


def copy_packages_script(packages: Sequence[tuple[str, str]]) -> str:
    """``python -c`` code copying ``(module, distribution)`` pairs into an isolated directory.

    The benchmarks of discovery run fresh ``python -S`` processes on such a
    copy so that no other installed plugin is seen.
    """
    return _COPY_PACKAGES.format(packages=tuple(packages))


def run_python(
    args: Sequence[str], *, env: dict[str, str] | None = None, python: str | None = None
) -> tuple[float, str, str]:
    """Run a fresh interpreter; return (wall seconds, stdout, stderr); raise on failure."""
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run(
        [python or sys.executable, *args], env=full_env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)[:200]} failed with {proc.returncode}:\n{proc.stderr[-2000:]}"
        )
    return elapsed, proc.stdout, proc.stderr


class RedisServer:
    """A throwaway redis-server on a free loopback port (persistence off)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"redis://127.0.0.1:{port}/0"

    @classmethod
    def start(cls, workdir: Path) -> RedisServer | None:
        binary = shutil.which("redis-server")
        if binary is None or find_spec("redis") is None:
            return None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=port)
        for _ in range(500):
            try:
                client.ping()
                return cls(process, port)
            except redis.ConnectionError:
                time.sleep(0.01)
        process.kill()
        return None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
