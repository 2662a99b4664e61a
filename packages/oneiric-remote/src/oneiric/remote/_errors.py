"""Every error oneiric-remote raises, in one hierarchy under ``RemoteError``.

::

    OneiricError (oneiric.core)
    └── RemoteError                     anything that stops a remote sync
        ├── FetchError                  a manifest or artifact could not be fetched (transport)
        │   ├── CircuitOpenError        the source's breaker is open after repeated failures
        │   ├── DownloadTooLargeError   more bytes than the limit (decoded bytes are counted)
        │   └── DeadlineExceeded        the overall download deadline passed (slow drip)
        ├── ManifestFormatError         envelope or payload is malformed, non-canonical or
        │                               breaks the schema
        ├── SignatureError              fewer than ``threshold`` trusted keys signed it
        ├── WrongRepositoryError        the manifest is for another repository (channel)
        ├── ExpiredManifestError        ``now >= expires``
        ├── FutureIssuedError           ``issued_at`` more than 5 minutes in the future
        ├── RollbackError               version not above the highest verified version
        ├── EquivocationError           same version, different bytes
        ├── StateError                  the state file is corrupt or cannot be written / locked
        ├── InsecureURLError            a URL or redirect with a scheme the policy forbids
        ├── ArtifactDigestError         an artifact's sha256 differs from the manifest's
        ├── ArtifactSizeError           an artifact's size differs from the manifest's
        ├── UnsafeArchiveError          an archive entry is unsafe (path, type, bomb, ...)
        │   └── ModuleShadowingError    a top-level name shadows stdlib / installed / another
        │                               artifact
        ├── FactoryNotAllowedError      a factory's package is neither delivered nor allowlisted
        └── ScopeError                  a component is outside ``allowed_keys``/``max_priority``,
                                        is in domain ``control``, or its metadata references
                                        something outside ``allowed_actions``

Every message is one line: what was asked, what exists, what to do.  ``category``
(core's error categories) decides what ``oneiric`` exits with when the error
reaches the CLI: ``invalid`` 4, ``unavailable`` 5, ``refused`` (by policy) 6,
``not_found`` 3 for a fetch answered 404.  Names from manifests and archives are
quoted in messages with ``oneiric.core.helpers.quote_name``.
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = [
    "ArtifactDigestError",
    "ArtifactSizeError",
    "CircuitOpenError",
    "DeadlineExceeded",
    "DownloadTooLargeError",
    "EquivocationError",
    "ExpiredManifestError",
    "FactoryNotAllowedError",
    "FetchError",
    "FutureIssuedError",
    "InsecureURLError",
    "ManifestFormatError",
    "ModuleShadowingError",
    "RemoteError",
    "RollbackError",
    "ScopeError",
    "SignatureError",
    "StateError",
    "UnsafeArchiveError",
    "WrongRepositoryError",
]


class RemoteError(OneiricError):
    """Base class: the sync stopped; registered components and ``sys.path`` are unchanged."""

    category = "invalid"


class FetchError(RemoteError):
    """Transport failure after retries and mirrors (connection, timeout, HTTP status).

    ``transient`` marks failures worth retrying (connect errors, timeouts, 429, 502,
    503, 504); ``retry_after`` is the server's Retry-After in seconds, if any.  A URL
    answered 404 is ``not_found`` (exit 3): the URL is wrong, the server is not down.
    """

    category = "unavailable"

    def __init__(
        self, message: str, *, transient: bool = False, retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.status = status
        if status == 404:
            self.category = "not_found"


class CircuitOpenError(FetchError):
    """The source failed several sync cycles in a row; no request is made until the cooldown."""


class DownloadTooLargeError(FetchError):
    """The response exceeded its byte limit; the download was aborted at limit + 1 bytes."""

    category = "invalid"


class DeadlineExceeded(FetchError):
    """The whole download took longer than its overall deadline."""


class ManifestFormatError(RemoteError):
    """The envelope or payload is malformed, not canonical, or breaks the schema."""


class SignatureError(RemoteError):
    """Fewer than ``threshold`` distinct trusted keys produced a valid signature."""


class WrongRepositoryError(RemoteError):
    """The signed manifest names another repository than the one configured."""


class ExpiredManifestError(RemoteError):
    """The manifest's ``expires`` is not in the future (freeze attack or stale mirror)."""


class FutureIssuedError(RemoteError):
    """The manifest's ``issued_at`` is more than the allowed skew in the future."""


class RollbackError(RemoteError):
    """The manifest's version is not above the highest version verified before."""


class EquivocationError(RemoteError):
    """Two different payloads were signed with the same version number."""


class StateError(RemoteError):
    """The state file is corrupt, unreadable or cannot be written; nothing is reset silently."""


class InsecureURLError(RemoteError):
    """A URL or redirect uses a scheme the policy forbids (only https for artifacts)."""

    category = "refused"


class ArtifactDigestError(RemoteError):
    """An artifact's sha256 does not match the signed manifest."""


class ArtifactSizeError(RemoteError):
    """An artifact is larger or smaller than the size the manifest declares."""


class UnsafeArchiveError(RemoteError):
    """An archive contains an entry that is rejected (never sanitized)."""


class ModuleShadowingError(UnsafeArchiveError):
    """A top-level name would shadow the stdlib, an installed module or another artifact."""


class FactoryNotAllowedError(RemoteError):
    """A factory's top-level package is neither in its artifact nor in ``factory_allowlist``."""

    category = "refused"


class ScopeError(RemoteError):
    """A component is outside the source's scope: ``allowed_keys``, ``max_priority``, the
    never-delivered domain ``control``, or metadata references outside ``allowed_actions``."""

    category = "refused"
