"""Every error a storage provider raises, in one tree.

::

    StorageError (OneiricError)        anything a storage operation could not do
    ├── ObjectNotFoundError (LookupError)  get/get_range/stream/head of a missing object
    ├── PreconditionFailedError         put(create_only=True) on an existing object
    ├── InvalidPathError (ValueError)   a path or prefix the shared validator refuses
    ├── InvalidRangeError (ValueError)  get_range with start < 0 or end < start
    ├── StorageAuthError                the server refused the credentials (401/403)
    ├── StorageUnavailableError         server down, unreachable, timing out or failing (5xx)
    └── MissingExtraError (ImportError) the provider's client library is not installed

Why one tree: callers write ``except ObjectNotFoundError`` once and it holds for
every provider; raw client exceptions (obstore, aiohttp, OSError) never leak.
Every message is one line naming the provider, the path and what to do.

Each class declares its ``category`` (oneiric-core's one path from an error to
an exit code): ``not_found`` for a missing object and for a missing client
library (install it), ``refused`` when the store said no - an existing object
under ``create_only`` (the request was well formed; the store's state refuses
it, as HTTP 412 does) or denied credentials - ``invalid`` for a bad path or
range, ``unavailable`` for the server and for the base class.
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = [
    "InvalidPathError",
    "InvalidRangeError",
    "MissingExtraError",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "StorageAuthError",
    "StorageError",
    "StorageUnavailableError",
]


class StorageError(OneiricError):
    """A storage operation failed; the base of every error in this family."""

    category = "unavailable"


class ObjectNotFoundError(StorageError, LookupError):
    """The object does not exist (``get``, ``get_range``, ``stream``, ``head``)."""

    category = "not_found"


class PreconditionFailedError(StorageError):
    """``put(..., create_only=True)`` found an object already at that path."""

    category = "refused"


class InvalidPathError(StorageError, ValueError):
    """The path is absolute, contains ``..``/``.``/empty segments, a backslash or NUL."""

    category = "invalid"


class InvalidRangeError(StorageError, ValueError):
    """``get_range`` was given ``start < 0`` or ``end < start`` (``end`` is exclusive)."""

    category = "invalid"


class StorageAuthError(StorageError):
    """The server rejected the credentials or denied the operation."""

    category = "refused"


class StorageUnavailableError(StorageError):
    """The server could not be reached or failed; retrying later may succeed."""

    category = "unavailable"


class MissingExtraError(StorageError, ImportError):
    """The provider's client library is missing; the message names the extra to install."""

    category = "not_found"

    def __init__(self, provider: str, extra: str) -> None:
        self.provider = provider
        self.extra = extra
        super().__init__(
            f"storage provider {provider!r} needs the {extra!r} extra: "
            f"pip install 'oneiric-adapters-storage[{extra}]'"
        )
