"""Every error the cache family raises, in one hierarchy.

::

    OneiricError                      (oneiric.core)
    └── CacheError                    a cache operation failed; base of everything below
        ├── CacheUnavailableError     the backend cannot be reached, timed out, or the
        │   │                         cache is not initialized / already cleaned up
        │   └── CacheAuthenticationError  the server refused the credentials
        ├── CacheValueError           the value does not suit the operation: ``incr`` on a
        │                             non-integer, a value above the server's item limit,
        │                             a value that is not bytes (also a ``ValueError``)
        └── MissingExtraError         the provider's client library is not installed
                                      (also an ``ImportError``); names the extra to install

Why so few: callers of a cache decide one thing on an error, "serve without the
cache" (``CacheUnavailableError``) or "this is a bug in what I stored or asked"
(everything else).  Raw client exceptions (redis-py, aiomcache, ``OSError``) never
escape a provider; the original is chained as ``__cause__`` for debugging.

Every message is one line that says what was asked, what happened and what to do.

Each class declares its ``category`` (oneiric-core's one path from an error to
an exit code): ``CacheError`` and ``CacheUnavailableError`` are ``unavailable``
(retrying later may work), ``CacheAuthenticationError`` is ``refused`` (the
server said no to these credentials: retrying will not help, fixing them will),
``CacheValueError`` is ``invalid`` and ``MissingExtraError`` is ``not_found``
(like a missing module: install it).
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = [
    "CacheAuthenticationError",
    "CacheError",
    "CacheUnavailableError",
    "CacheValueError",
    "MissingExtraError",
]


class CacheError(OneiricError):
    """A cache operation failed."""

    category = "unavailable"


class CacheUnavailableError(CacheError):
    """The backend cannot serve: connection refused or lost, timeout, not initialized, closed.

    An application may treat this as a cache miss and carry on without the cache.
    """


class CacheAuthenticationError(CacheUnavailableError):
    """The server refused the configured credentials (wrong password, unknown ACL user)."""

    category = "refused"


class CacheValueError(CacheError, ValueError):
    """The value does not suit the operation (``incr`` on a non-integer, too large, not bytes)."""

    category = "invalid"


class MissingExtraError(CacheError, ImportError):
    """The provider's client library is not installed; the message names the extra."""

    category = "not_found"

    def __init__(self, provider: str, module: str, extra: str) -> None:
        self.provider = provider
        self.module = module
        self.extra = extra
        super().__init__(
            f"the {provider} cache provider needs the {module!r} client library, which is not "
            f'installed; install it with: pip install "oneiric-adapters-cache[{extra}]"'
        )
