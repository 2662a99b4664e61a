"""Each storage error declares its category: one path from error to exit code (core's)."""

from __future__ import annotations

import pytest

from oneiric.adapters.storage import (
    InvalidPathError,
    InvalidRangeError,
    MissingExtraError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)
from oneiric.core import EXIT_CODES, exit_code_for


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (StorageError("x"), "unavailable"),
        (ObjectNotFoundError("x"), "not_found"),
        (PreconditionFailedError("x"), "refused"),
        (InvalidPathError("x"), "invalid"),
        (InvalidRangeError("x"), "invalid"),
        (StorageAuthError("x"), "refused"),
        (StorageUnavailableError("x"), "unavailable"),
        (MissingExtraError("gcs", "gcs"), "not_found"),
    ],
)
def test_storage_error_categories(error: StorageError, category: str) -> None:
    assert error.category == category
    assert exit_code_for(error) == EXIT_CODES[category]
