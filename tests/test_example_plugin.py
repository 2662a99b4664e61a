"""A third-party plugin distribution, built as a wheel and installed into a fresh venv.

This is what a plugin author ships: its own top-level module
(``oneiric_example_greeter``) and one ``oneiric`` entry point, installed beside
oneiric-core with pip and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "oneiric-example-greeter"

pytestmark = pytest.mark.slow


def _wheel(source: Path, outdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(outdir), str(source)],
        check=True,
    )
    name = source.name.replace("-", "_")
    (wheel,) = outdir.glob(f"{name}-*.whl")
    return wheel


def _core_wheel(tmp_path: Path) -> Path:
    house = os.environ.get("ONEIRIC_WHEELHOUSE")
    if house:
        found = sorted(Path(house).glob("oneiric_core-*.whl"))
        if found:
            return found[-1]
    return _wheel(ROOT / "packages" / "oneiric-core", tmp_path)


def test_example_plugin_wheel_resolves_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    core = _core_wheel(wheels)
    example = _wheel(EXAMPLE, wheels)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(core), str(example)],
        check=True,
    )
    script = textwrap.dedent(
        """
        import json
        from oneiric.core import Resolver, load_plugins, resolve_factory
        resolver = Resolver()
        report = load_plugins(resolver)
        winner = resolver.resolve("service", "greeter")
        explanation = resolver.explain("service", "greeter").as_dict()
        greeter = resolve_factory(winner)()
        print(json.dumps({
            "plugins": [[e.distribution, e.version, e.entry_point, e.candidates, e.error]
                        for e in report.entries],
            "winner": winner.provider,
            "source": str(winner.source),
            "greeting": greeter.greet("Ada"),
            "explain": explanation,
        }))
        """
    )
    out = subprocess.run(
        [str(python), "-c", script], check=True, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert out.stderr == ""  # a library never logs to the console unasked
    data = json.loads(out.stdout)
    assert data["plugins"] == [["oneiric-example-greeter", "1.2.3", "greeter", 3, None]]
    assert data["winner"] == "formal"
    assert data["source"] == "entry_point:oneiric-example-greeter==1.2.3"
    assert data["greeting"] == "Dear Ada, good day."
    reasons = {c["provider"]: c["reason"] for c in data["explain"]["candidates"]}
    assert reasons["legacy"] == "vetoed by oneiric-example-greeter: legacy greeters are retired"
    assert reasons["casual"] == "lost on priority 10 < 20"
