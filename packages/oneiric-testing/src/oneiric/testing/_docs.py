"""Documentation examples that run: every ```python block of a page, and what it prints.

A block followed by ``<!-- output -->`` and a ```text block must print exactly
that text, so documented outputs cannot drift from what the code does.  Each
block is a whole program run in a fresh interpreter (its own working
directory and state dir, no ``ONEIRIC_*`` settings from the caller).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["OUTPUT_MARK", "python_examples", "run_python_example"]

OUTPUT_MARK = "<!-- output -->"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def python_examples(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, expected output or None)`` for every ```python block, in order."""
    text = page.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    found: list[tuple[int, str, str | None]] = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        expected = None
        if i + 1 < len(fences):
            following = fences[i + 1]
            if text[fence.end():following.start()].strip() == OUTPUT_MARK:
                assert following.group(1) == "text", "an output block is ```text"
                expected = following.group(2)
        found.append((text.count("\n", 0, fence.start()) + 1, fence.group(2), expected))
    return found


def run_python_example(page: Path, line: int, code: str, expected: str | None,
                       workdir: Path) -> None:
    """Run one example in ``workdir``; assert it succeeds and prints ``expected``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["ONEIRIC_STATE_DIR"] = str(workdir / "state")
    script = workdir / "example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    where = f"docs/{page.name}:{line}"
    assert proc.returncode == 0, f"{where} failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if expected is not None:
        assert proc.stdout == expected, f"{where} printed:\n{proc.stdout}"
