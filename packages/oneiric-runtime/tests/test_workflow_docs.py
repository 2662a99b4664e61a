"""Every ```python block of docs/workflows.md runs, and prints what the page says it prints.

Through ``oneiric.testing.run_python_example`` (as docs/events.md): each block is a
whole program run in a fresh interpreter in its own tmp working directory and
state dir; a block followed by ``<!-- output -->`` and a ```text block must
print exactly that text, so the documented plans, statuses, attempts and
error messages cannot drift from what the engine does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.testing import OUTPUT_MARK, python_examples, run_python_example

DOC = Path(__file__).resolve().parents[3] / "docs" / "workflows.md"

EXAMPLES = python_examples(DOC)


def test_the_page_has_its_examples_outputs_and_sections() -> None:
    """Guards the extraction itself: a changed fence style must not make this file pass empty."""
    text = DOC.read_text(encoding="utf-8")
    assert len(EXAMPLES) >= 3
    assert all(expected for _line, _code, expected in EXAMPLES)
    assert text.count(OUTPUT_MARK) == len(EXAMPLES)
    for heading in ("## Definitions", "## Templates", "## Semantics", "## Checkpoint stores",
                    "## CLI", "## Schedules"):
        assert f"\n{heading}\n" in text, heading


@pytest.mark.parametrize(("line", "code", "expected"), EXAMPLES,
                         ids=[f"workflows.md:{line}" for line, _c, _e in EXAMPLES])
def test_docs_example_runs_and_prints_its_output(
    tmp_path: Path, line: int, code: str, expected: str | None
) -> None:
    run_python_example(DOC, line, code, expected, tmp_path)
