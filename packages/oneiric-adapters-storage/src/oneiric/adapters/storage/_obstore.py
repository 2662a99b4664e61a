"""``s3`` and ``azure``: one provider over obstore, parameterized by a backend spec.

Why one class: the object_store semantics (create-only via conditional put,
ranges, paging) are the same for every cloud; only building the client and a
few words differ.  A ``Backend`` row holds those differences as data, so a fix
lands once for all of them.

obstore is imported when a provider is *built* (activation), never at plugin
discovery: a missing extra fails there, in one line naming the extra.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oneiric.core import get_logger

from ._errors import (
    MissingExtraError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)
from ._paths import validate_path, validate_prefix
from ._protocol import ExistsByHead, ObjectInfo
from ._ranges import check_range
from ._settings import AzureSettings, RemoteSettings, S3Settings

if TYPE_CHECKING:  # obstore itself is imported only when a provider is built
    from obstore.store import ClientConfig, RetryConfig

__all__ = ["AZURE", "S3", "Backend", "ObstoreStorage", "create_azure", "create_s3"]

_log = get_logger("oneiric.adapters.storage.obstore")


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def _client_options(settings: RemoteSettings) -> ClientConfig:
    return {
        "allow_http": settings.allow_http,
        "connect_timeout": f"{int(settings.connect_timeout_s * 1000)}ms",
        "timeout": f"{int(settings.request_timeout_s * 1000)}ms",
    }


def _retry(settings: RemoteSettings) -> RetryConfig:
    return {
        "max_retries": settings.retries,
        "retry_timeout": _dt.timedelta(seconds=settings.retry_timeout_s),
        "backoff": {
            "init_backoff": _dt.timedelta(milliseconds=100),
            "max_backoff": _dt.timedelta(seconds=2),
            "base": 2,
        },
    }


def _build_s3(settings: S3Settings) -> Any:
    from obstore.store import S3Store

    kwargs: dict[str, Any] = {
        "region": settings.region,
        "virtual_hosted_style_request": settings.virtual_hosted_style,
    }
    if settings.endpoint:
        kwargs["endpoint"] = settings.endpoint
    for name in ("access_key_id", "secret_access_key", "session_token"):
        if (value := _secret(getattr(settings, name))) is not None:
            kwargs[name] = value
    return S3Store(
        settings.bucket,
        prefix=settings.prefix or None,
        client_options=_client_options(settings),
        retry_config=_retry(settings),
        **kwargs,
    )


def _build_azure(settings: AzureSettings) -> Any:
    from obstore.store import AzureStore

    kwargs: dict[str, Any] = {"account_name": settings.account}
    if settings.endpoint:
        kwargs["endpoint"] = settings.endpoint
    if (key := _secret(settings.account_key)) is not None:
        kwargs["account_key"] = key
    if (sas := _secret(settings.sas_token)) is not None:
        kwargs["sas_key"] = sas
    return AzureStore(
        settings.container,
        prefix=settings.prefix or None,
        client_options=_client_options(settings),
        retry_config=_retry(settings),
        **kwargs,
    )


@dataclass(frozen=True)
class Backend:
    """What differs between obstore-backed providers: data, not subclasses."""

    provider: str
    extra: str
    bucket_word: str  # "bucket" / "container", for messages
    build: Callable[[Any], Any]
    bucket_of: Callable[[Any], str]


S3 = Backend("s3", "s3", "bucket", _build_s3, lambda s: s.bucket)
AZURE = Backend("azure", "azure", "container", _build_azure, lambda s: s.container)


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else value


class ObstoreStorage(ExistsByHead):
    """A ``Storage`` over an obstore store; errors mapped to the family's."""

    def __init__(self, backend: Backend, settings: RemoteSettings) -> None:
        self.backend = backend
        self.provider = backend.provider
        self.settings = settings
        self._store: Any = None
        try:  # at build time, so activation fails in one line naming the extra
            import obstore
            import obstore.exceptions
        except ImportError:
            raise MissingExtraError(self.provider, backend.extra) from None
        self._obs: Any = obstore
        self._exc: Any = obstore.exceptions

    # ---------------------------------------------------------- lifecycle

    def _where(self) -> str:
        endpoint = getattr(self.settings, "endpoint", None) or "default endpoint"
        return f"{self.backend.bucket_word} {self.backend.bucket_of(self.settings)!r} at {endpoint}"

    async def init(self) -> None:
        """Build the client and prove the bucket answers to these credentials."""
        try:
            self._store = self.backend.build(self.settings)
        except Exception as exc:  # obstore raises for bad config (BaseError, ValueError)
            raise StorageError(
                f"{self.provider} storage: invalid configuration: {str(exc).splitlines()[0]}"
            ) from None
        await self._probe()
        _log.debug("storage ready", provider=self.provider, where=self._where())

    async def _probe(self) -> None:
        # One list request: fails for a missing bucket, bad credentials or a dead
        # server, and (unlike HEAD) tells a missing bucket from a missing object.
        try:
            stream = self._obs.list(self._store, chunk_size=1)
            async for _ in stream:
                break
        except Exception as exc:
            error = self._map(exc, "")
            if isinstance(error, ObjectNotFoundError):
                raise StorageError(
                    f"{self.provider} storage: {self._where()} does not exist; create it first"
                ) from None
            raise error from None

    async def health(self) -> bool:
        """True when the bucket answers; raises ``StorageUnavailableError`` when it cannot."""
        self._require()
        await self._probe()
        return True

    async def cleanup(self) -> None:
        """obstore clients hold no resources that need closing; drop the reference."""
        self._store = None

    def _require(self) -> Any:
        if self._store is None:
            raise StorageError(f"{self.provider} storage: not initialized; call init() first")
        return self._store

    # ------------------------------------------------------- error mapping

    def _map(self, exc: BaseException, path: str) -> StorageError:
        """Translate an obstore (or transport) exception into the family's errors."""
        exc_mod = self._exc
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = f"{self.provider} storage: {path!r}" if path else f"{self.provider} storage"
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, FileNotFoundError):  # obstore's NotFoundError and bulk delete's
            return ObjectNotFoundError(f"{where} not found")
        if exc_mod is not None:
            if isinstance(exc, exc_mod.NotFoundError):
                return ObjectNotFoundError(f"{where} not found")
            if isinstance(exc, exc_mod.AlreadyExistsError | exc_mod.PreconditionError):
                return PreconditionFailedError(f"{where} already exists (create_only)")
            if isinstance(exc, exc_mod.PermissionDeniedError | exc_mod.UnauthenticatedError):
                return StorageAuthError(
                    f"{where}: the server refused the credentials for {self._where()}; "
                    "check the access key/secret or account key"
                )
        text = str(exc)
        if "status code: 401" in text or "status code: 403" in text:
            return StorageAuthError(
                f"{where}: the server refused the credentials for {self._where()}; "
                "check the access key/secret or account key"
            )
        if "status code: 4" in text and "status code: 408" not in text:
            if "status code: 404" in text:
                return ObjectNotFoundError(f"{where} not found")
            return StorageError(f"{where}: {first[:300]}")
        return StorageUnavailableError(
            f"{where}: server unavailable ({self._where()}): {_short(first)}"
        )

    # ---------------------------------------------------------- operations

    async def put(
        self, path: str, data: bytes, *, create_only: bool = False, content_type: str | None = None
    ) -> ObjectInfo:
        validate_path(path)
        store = self._require()
        blob = bytes(data)
        attributes = {"Content-Type": content_type} if content_type else None
        try:
            result = await self._obs.put_async(
                store,
                path,
                blob,
                mode="create" if create_only else "overwrite",
                attributes=attributes,
                use_multipart=False,
            )
        except Exception as exc:
            raise self._map(exc, path) from None
        return ObjectInfo(path=path, size=len(blob), etag=_etag(result["e_tag"]), modified=None)

    async def get(self, path: str) -> bytes:
        validate_path(path)
        store = self._require()
        try:
            result = await self._obs.get_async(store, path)
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise self._map(exc, path) from None

    async def get_range(self, path: str, start: int, end: int) -> bytes:
        validate_path(path)
        check_range(start, end)
        store = self._require()
        if start == end:
            await self.head(path)  # still report a missing object
            return b""
        try:
            return bytes(await self._obs.get_range_async(store, path, start=start, end=end))
        except Exception as exc:
            error = self._map(exc, path)
            if isinstance(error, ObjectNotFoundError):
                raise error from None
            # A range starting at or past the end: servers answer 416 and obstore
            # refuses short objects; the slice semantics say b"" for both.
            info = await self.head(path)
            if start >= info.size:
                return b""
            raise error from None

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        validate_path(path)
        store = self._require()
        try:
            result = await self._obs.get_async(store, path)
            async for chunk in result.stream(min_chunk_size=self.settings.chunk_size):
                yield bytes(chunk)
        except Exception as exc:
            raise self._map(exc, path) from None

    async def delete(self, path: str) -> None:
        """Idempotent: a missing object is not an error (Azure's 404 is swallowed)."""
        validate_path(path)
        store = self._require()
        try:
            await self._obs.delete_async(store, path)
        except Exception as exc:
            error = self._map(exc, path)
            if not isinstance(error, ObjectNotFoundError):
                raise error from None

    async def head(self, path: str) -> ObjectInfo:
        validate_path(path)
        store = self._require()
        try:
            meta = await self._obs.head_async(store, path)
        except Exception as exc:
            raise self._map(exc, path) from None
        return _info(meta)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        store = self._require()
        try:
            stream = self._obs.list(store, prefix=prefix.rstrip("/") or None, chunk_size=1000)
            async for batch in stream:
                for meta in batch:
                    yield _info(meta)
        except Exception as exc:
            raise self._map(exc, prefix) from None


def _info(meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        path=meta["path"],
        size=int(meta["size"]),
        etag=_etag(meta.get("e_tag")),
        modified=meta.get("last_modified"),
    )


def _short(text: str) -> str:
    """The useful tail of an object_store error ("error sending request", a status)."""
    for marker in ("Server returned", "HTTP error", "error sending request", "timed out"):
        index = text.find(marker)
        if index >= 0:
            return text[index : index + 160]
    return text[:160]


def create_s3(settings: S3Settings) -> ObstoreStorage:
    """Factory named by the ``s3`` candidate (imports obstore: activation, not discovery)."""
    return ObstoreStorage(S3, settings)


def create_azure(settings: AzureSettings) -> ObstoreStorage:
    """Factory named by the ``azure`` candidate (imports obstore: activation, not discovery)."""
    return ObstoreStorage(AZURE, settings)
