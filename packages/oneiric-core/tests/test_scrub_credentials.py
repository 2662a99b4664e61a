"""scrub_credentials: credentials nobody registered, removed from error text."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("auth failed: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9"),
        ("connect redis://app:s3cr3tpw@cache:6379/0 refused", "s3cr3tpw"),
        ("bad login password=hunter22 for ada", "hunter22"),
        ("config api_key: 'ak_live_123456'", "ak_live_123456"),
        ('{"db_password": "pg-Secret"}', "pg-Secret"),
    ],
)
def test_scrub_credentials_removes_unregistered_credentials(text: str, gone: str) -> None:
    from oneiric.core.helpers import scrub_credentials

    scrubbed = scrub_credentials(text)
    assert gone not in scrubbed and "**********" in scrubbed


def test_scrub_credentials_leaves_ordinary_text_alone() -> None:
    from oneiric.core.helpers import scrub_credentials

    text = "handler orders-mailer failed: ConnectionError: timed out after 3 attempts"
    assert scrub_credentials(text) == text
