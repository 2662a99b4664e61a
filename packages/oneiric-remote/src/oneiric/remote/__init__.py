"""oneiric-remote: signed remote manifests that deliver candidates and the code behind them.

The public API is what this module exports.  ``RemoteSync`` (and with it
pydantic) loads on first use; httpx and PyNaCl load on the first fetch or
verification, so ``import oneiric.remote`` stays cheap.  See docs/remote.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from ._config import Limits, RemoteSource, RetryPolicy, Timeouts
from ._envelope import PAYLOAD_TYPE
from ._errors import (
    ArtifactDigestError,
    ArtifactSizeError,
    CircuitOpenError,
    DeadlineExceeded,
    DownloadTooLargeError,
    EquivocationError,
    ExpiredManifestError,
    FactoryNotAllowedError,
    FetchError,
    FutureIssuedError,
    InsecureURLError,
    ManifestFormatError,
    ModuleShadowingError,
    RemoteError,
    RollbackError,
    ScopeError,
    SignatureError,
    StateError,
    UnsafeArchiveError,
    WrongRepositoryError,
)
from ._fetch import Fetcher
from ._verify import (
    Ed25519Verifier,
    ManifestVerifier,
    TrustedKey,
    VerifiedPayload,
    keyid_of,
    sign_payload,
    verify_envelope,
)

if TYPE_CHECKING:
    from ._sync import RemoteSync, SyncResult, read_status

__all__ = [
    "PAYLOAD_TYPE",
    "ArtifactDigestError",
    "ArtifactSizeError",
    "CircuitOpenError",
    "DeadlineExceeded",
    "DownloadTooLargeError",
    "Ed25519Verifier",
    "EquivocationError",
    "ExpiredManifestError",
    "FactoryNotAllowedError",
    "FetchError",
    "Fetcher",
    "FutureIssuedError",
    "InsecureURLError",
    "Limits",
    "ManifestFormatError",
    "ManifestVerifier",
    "ModuleShadowingError",
    "RemoteError",
    "RemoteSource",
    "RemoteSync",
    "RetryPolicy",
    "RollbackError",
    "ScopeError",
    "SignatureError",
    "StateError",
    "SyncResult",
    "Timeouts",
    "TrustedKey",
    "UnsafeArchiveError",
    "VerifiedPayload",
    "WrongRepositoryError",
    "__version__",
    "keyid_of",
    "read_status",
    "sign_payload",
    "verify_envelope",
]

_LAZY = {"RemoteSync", "SyncResult", "read_status"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _sync

        return getattr(_sync, name)
    raise AttributeError(f"module 'oneiric.remote' has no attribute {name!r}")
