"""``load_document``: TOML, YAML and JSON documents under the settings files' limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import load_document


@pytest.mark.parametrize(
    ("name", "text"),
    [("w.toml", 'id = "w"\nn = 1\n'), ("w.yaml", "id: w\nn: 1\n"), ("w.yml", "id: w\nn: 1\n"),
     ("w.json", '{"id": "w", "n": 1}')],
)
def test_each_format_reads_the_same_document(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert load_document(tmp_path / name) == {"id": "w", "n": 1}


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("w.txt", "x", "unknown workflow format '.txt'"),
        ("w.toml", "id = ", "invalid TOML"),
        ("w.json", "{", "invalid JSON"),
        ("w.json", "[" * 200 + "]" * 200, "nested"),
        ("w.yaml", "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(8)), "values"),
    ],
)
def test_bad_documents_fail_in_one_line(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_document(tmp_path / name, "workflow")
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert str(tmp_path / name) in str(info.value)


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_document(tmp_path / "gone.toml")
