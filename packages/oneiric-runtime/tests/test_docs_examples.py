"""Every ```python block of docs/events.md runs, and prints what the page says it prints.

Each block is a whole program run in a fresh interpreter (its own tmp working
directory and state dir, no ``ONEIRIC_*`` settings from the caller).  A block
followed by ``<!-- output -->`` and a ```text block must print exactly that
text, so the documented outputs (route reasons, outcome statuses, dead-letter
ids) cannot drift from what the code does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.testing import OUTPUT_MARK, python_examples, run_python_example

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"

EXAMPLES = python_examples(DOC)


def test_the_page_has_its_examples_and_outputs() -> None:
    """Guards the extraction itself: a changed fence style must not make this file pass empty."""
    assert len(EXAMPLES) >= 5
    assert all(expected for _line, _code, expected in EXAMPLES)
    assert DOC.read_text(encoding="utf-8").count(OUTPUT_MARK) == len(EXAMPLES)
    assert "\n## Automations\n" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(("line", "code", "expected"), EXAMPLES,
                         ids=[f"events.md:{line}" for line, _c, _e in EXAMPLES])
def test_docs_example_runs_and_prints_its_output(
    tmp_path: Path, line: int, code: str, expected: str | None
) -> None:
    run_python_example(DOC, line, code, expected, tmp_path)
