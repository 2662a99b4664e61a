"""Each cache error declares its category: one path from error to exit code (core's)."""

from __future__ import annotations

import pytest

from oneiric.adapters.cache import (
    CacheAuthenticationError,
    CacheError,
    CacheUnavailableError,
    CacheValueError,
    MissingExtraError,
)
from oneiric.core import EXIT_CODES, exit_code_for


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (CacheError("x"), "unavailable"),
        (CacheUnavailableError("x"), "unavailable"),
        (CacheAuthenticationError("x"), "refused"),
        (CacheValueError("x"), "invalid"),
        (MissingExtraError("redis", "redis", "redis"), "not_found"),
    ],
)
def test_cache_error_categories(error: CacheError, category: str) -> None:
    assert error.category == category
    assert exit_code_for(error) == EXIT_CODES[category]
