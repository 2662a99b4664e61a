"""``uuid4_text``: canonical, version 4, RFC 4122 variant, different every time."""

from __future__ import annotations

import uuid

from oneiric.core.helpers import uuid4_text


def test_uuid4_text_is_a_canonical_version_4_uuid() -> None:
    seen = {uuid4_text() for _ in range(2000)}
    assert len(seen) == 2000
    for text in list(seen)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_instance_id_is_the_variable_else_host_and_pid(monkeypatch) -> None:
    import os

    from oneiric.core.helpers import instance_id

    monkeypatch.setenv("ONEIRIC_INSTANCE_ID", "web-7")
    assert instance_id() == "web-7"
    monkeypatch.setenv("ONEIRIC_INSTANCE_ID", "  ")
    assert instance_id() == f"{os.uname().nodename}:{os.getpid()}"
    monkeypatch.delenv("ONEIRIC_INSTANCE_ID")
    assert instance_id().endswith(f":{os.getpid()}")
    assert instance_id({"ONEIRIC_INSTANCE_ID": " web-1 "}) == "web-1"  # an explicit mapping
