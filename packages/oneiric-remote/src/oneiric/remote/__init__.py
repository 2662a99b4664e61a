"""oneiric-remote: signed remote manifests that deliver candidates and the code behind them.

The public API is what this module exports.  Every name is loaded from its
private module on first access: discovery imports ``oneiric.remote._plugin``,
which runs this file, and must not pay for pydantic, ssl or httpx.  httpx and
PyNaCl load on the first fetch or verification.  See docs/remote.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oneiric.core.helpers import lazy_exports

from .__about__ import __version__

if TYPE_CHECKING:
    from ._bundleload import load_bundle
    from ._config import Limits, RemoteSource, SyncRetry, Timeouts
    from ._config import SyncRetry as RetryPolicy  # noqa: F401 (deprecated alias)
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
    from ._lastgood import load_last_good
    from ._sources import BUNDLE_ENV, configured_bundle
    from ._status import read_status
    from ._sync import RemoteSync, SyncResult
    from ._verify import (
        Ed25519Verifier,
        ManifestVerifier,
        TrustedKey,
        VerifiedPayload,
        keyid_of,
        sign_payload,
        verify_envelope,
    )

__all__ = [
    "BUNDLE_ENV",
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
    "RollbackError",
    "ScopeError",
    "SignatureError",
    "SyncRetry",
    "StateError",
    "SyncResult",
    "Timeouts",
    "TrustedKey",
    "UnsafeArchiveError",
    "VerifiedPayload",
    "WrongRepositoryError",
    "__version__",
    "configured_bundle",
    "keyid_of",
    "load_bundle",
    "load_last_good",
    "read_status",
    "sign_payload",
    "verify_envelope",
]

_LAZY: dict[str, str] = {
    'ArtifactDigestError': '_errors',
    'BUNDLE_ENV': '_sources',
    'ArtifactSizeError': '_errors',
    'CircuitOpenError': '_errors',
    'DeadlineExceeded': '_errors',
    'DownloadTooLargeError': '_errors',
    'Ed25519Verifier': '_verify',
    'EquivocationError': '_errors',
    'ExpiredManifestError': '_errors',
    'FactoryNotAllowedError': '_errors',
    'FetchError': '_errors',
    'Fetcher': '_fetch',
    'FutureIssuedError': '_errors',
    'InsecureURLError': '_errors',
    'Limits': '_config',
    'ManifestFormatError': '_errors',
    'ManifestVerifier': '_verify',
    'ModuleShadowingError': '_errors',
    'PAYLOAD_TYPE': '_envelope',
    'RemoteError': '_errors',
    'RemoteSource': '_config',
    'RemoteSync': '_sync',
    'SyncRetry': '_config',
    'RollbackError': '_errors',
    'ScopeError': '_errors',
    'SignatureError': '_errors',
    'StateError': '_errors',
    'SyncResult': '_sync',
    'Timeouts': '_config',
    'TrustedKey': '_verify',
    'UnsafeArchiveError': '_errors',
    'VerifiedPayload': '_verify',
    'WrongRepositoryError': '_errors',
    'configured_bundle': '_sources',
    'keyid_of': '_verify',
    'load_bundle': '_bundleload',
    'load_last_good': '_lastgood',
    'read_status': '_status',
    'sign_payload': '_verify',
    'verify_envelope': '_verify',
}


_lazy_getattr = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> object:
    """Lazy exports, plus the deprecated ``RetryPolicy`` alias of ``SyncRetry``.

    ``RetryPolicy`` now names core's policy for retrying user code (actions,
    event handlers, workflow nodes); the sync settings were renamed so one
    name means one thing.  The alias warns on every access and goes in 0.3.
    """
    if name == "RetryPolicy":
        import warnings

        warnings.warn(
            "oneiric.remote.RetryPolicy is deprecated: use oneiric.remote.SyncRetry "
            "(oneiric.core.RetryPolicy is the retry policy of actions and workflows)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _lazy_getattr("SyncRetry")
    return _lazy_getattr(name)
