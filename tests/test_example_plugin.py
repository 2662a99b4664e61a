"""A third-party plugin distribution, built as a wheel and installed into a fresh venv.

This is what a plugin author ships: its own top-level module
(``oneiric_example_greeter``) and one ``oneiric`` entry point, installed beside
oneiric-core with pip and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from oneiric.testing import fresh_venv, local_wheel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "oneiric-example-greeter"

pytestmark = pytest.mark.slow


def test_example_plugin_wheel_resolves_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    core = local_wheel(ROOT / "packages" / "oneiric-core", wheels)
    example = local_wheel(EXAMPLE, wheels)
    python = fresh_venv(tmp_path / "venv", core, example)
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
