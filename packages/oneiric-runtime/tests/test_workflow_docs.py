"""Every ```python block of docs/workflows.md runs, and prints what the page says it prints.

The pattern of ``test_docs_examples.py`` (docs/events.md): each block is a
whole program run in a fresh interpreter in its own tmp working directory and
state dir; a block followed by ``<!-- output -->`` and a ```text block must
print exactly that text, so the documented plans, statuses, attempts and
error messages cannot drift from what the engine does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "workflows.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
_OUTPUT_MARK = "<!-- output -->"


def examples() -> list[tuple[int, str, str | None]]:
    """``(line, code, expected output or None)`` for every python block, in order."""
    text = DOC.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    found: list[tuple[int, str, str | None]] = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        expected = None
        if i + 1 < len(fences):
            following = fences[i + 1]
            if text[fence.end():following.start()].strip() == _OUTPUT_MARK:
                assert following.group(1) == "text", "an output block is ```text"
                expected = following.group(2)
        found.append((text.count("\n", 0, fence.start()) + 1, fence.group(2), expected))
    return found


EXAMPLES = examples()


def test_the_page_has_its_examples_outputs_and_sections() -> None:
    """Guards the extraction itself: a changed fence style must not make this file pass empty."""
    text = DOC.read_text(encoding="utf-8")
    assert len(EXAMPLES) >= 3
    assert all(expected for _line, _code, expected in EXAMPLES)
    assert text.count(_OUTPUT_MARK) == len(EXAMPLES)
    for heading in ("## Definitions", "## Templates", "## Semantics", "## Checkpoint stores",
                    "## CLI", "## Schedules"):
        assert f"\n{heading}\n" in text, heading


@pytest.mark.parametrize(("line", "code", "expected"), EXAMPLES,
                         ids=[f"workflows.md:{line}" for line, _c, _e in EXAMPLES])
def test_docs_example_runs_and_prints_its_output(
    tmp_path: Path, line: int, code: str, expected: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"docs/workflows.md:{line} failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if expected is not None:
        assert proc.stdout == expected, f"docs/workflows.md:{line} printed:\n{proc.stdout}"
