"""oneiric-adapters-storage: the ``adapter/storage`` family.

One ``Storage`` protocol, its errors, and five providers (``local``,
``memory``, ``s3``, ``azure``, ``gcs``) registered through the ``oneiric``
entry point.  Client libraries (obstore, gcloud-aio-storage) are imported only
when a provider is built; this module imports neither.  The conformance suite
is the opt-in pytest plugin ``oneiric.adapters.storage.testing``.
"""

from __future__ import annotations

from .__about__ import __version__
from ._errors import (
    InvalidPathError,
    InvalidRangeError,
    MissingExtraError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)
from ._paths import validate_path, validate_prefix
from ._protocol import ObjectInfo, Storage

__all__ = [
    "InvalidPathError",
    "InvalidRangeError",
    "MissingExtraError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "Storage",
    "StorageAuthError",
    "StorageError",
    "StorageUnavailableError",
    "__version__",
    "validate_path",
    "validate_prefix",
]
