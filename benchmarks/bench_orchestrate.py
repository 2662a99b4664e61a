"""oneiric-runtime: cold start of ``oneiric orchestrate`` until ``/readyz`` answers 200.

Each sample starts a new process (``python -m oneiric.cli orchestrate --http
127.0.0.1:0``, a fresh settings dir activating one in-memory provider through
``--app``, a fresh state dir), reads the address it announces on stderr and
polls ``/readyz`` every 2 ms; the figure is process spawn to the first 200.
Then SIGTERM (the process must exit 0).

1. ``--profile serverless`` (no watcher, no periodic probes) - the figure
   issue #14 asks for;
2. the default profile, same run;
3. reference: ``python -c "import oneiric.core"`` spawn to exit (the
   interpreter and core import floor every CLI process pays).

Interleaved repeats, same run, ms per cold start.
Run: ``python benchmarks/bench_orchestrate.py [--json] [--quick]``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, median, parser, report

MS = 1e3
APP = '''
from oneiric.core import Candidate


class Cache:
    def health(self):
        return True


def register(resolver):
    resolver.register(Candidate("adapter", "cache", "bench", Cache))
'''


def _environment(root: Path) -> dict[str, str]:
    (root / "bench_orch_app.py").write_text(APP)
    settings = root / "settings"
    settings.mkdir()
    (settings / "oneiric.toml").write_text('[host]\nactivate = ["adapter.cache"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env.update({"ONEIRIC_CONFIG": str(settings), "ONEIRIC_APP": "bench_orch_app:register",
                "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [
                    os.environ.get("PYTHONPATH")])])})
    return env


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def cold_start(profile: str) -> float:
    """Seconds from spawn to the first ``/readyz`` 200 of a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = _environment(root)
        env["ONEIRIC_STATE_DIR"] = str(root / "state")
        log = (root / "err").open("w+")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "oneiric.cli", "orchestrate", "--http", "127.0.0.1:0",
             "--profile", profile], env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            url = None
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"orchestrate exited {proc.returncode}: {log.read()}")
                if url is None:
                    log.seek(0)
                    for line in log.read().splitlines():
                        if "listening on http://" in line:
                            url = line.split("listening on ", 1)[1].split()[0]
                if url is not None and _ready(url):
                    elapsed = time.perf_counter() - started
                    break
                time.sleep(0.002)
            proc.send_signal(signal.SIGTERM)
            if proc.wait(timeout=60) != 0:
                raise SystemExit(f"orchestrate exited {proc.returncode} on SIGTERM")
            return elapsed
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def import_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import oneiric.core"], check=True)
    return time.perf_counter() - started


def run(quick: bool) -> list[Result]:
    repeats = 3 if quick else 9
    samples: dict[str, list[float]] = {"serverless": [], "default": [], "floor": []}
    for _ in range(repeats):
        samples["serverless"].append(cold_start("serverless") * MS)
        samples["default"].append(cold_start("default") * MS)
        samples["floor"].append(import_floor() * MS)
    floor = median(samples["floor"])
    return [
        Result("orchestrate --profile serverless: spawn to /readyz 200",
               median(samples["serverless"]), "ms", reference=floor,
               reference_name="python -c 'import oneiric.core'",
               samples=samples["serverless"]),
        Result("orchestrate (default profile): spawn to /readyz 200",
               median(samples["default"]), "ms", reference=floor,
               reference_name="python -c 'import oneiric.core'", samples=samples["default"]),
    ]


def main() -> int:
    args = parser(__doc__).parse_args()
    return report("oneiric orchestrate cold start", run(args.quick), as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
