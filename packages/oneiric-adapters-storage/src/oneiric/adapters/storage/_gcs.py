"""``gcs``: Google Cloud Storage through its JSON API (gcloud-aio-storage).

Why not obstore's GCS store: it writes through the XML API (``PUT
/bucket/object``), which fake-gcs-server — the only GCS server that runs here —
does not implement (it answers ``400 invalid uploadType``), so that path could
not be tested against a real server.  gcloud-aio-storage speaks the JSON API
that both GCS and fake-gcs-server implement, is natively asyncio and handles
GCS credentials (service account file or application-default credentials).

Uploads always use the multipart form (object metadata + bytes): it carries the
content type and is the form whose ``ifGenerationMatch=0`` precondition
(create-only) fake-gcs-server enforces as GCS does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

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
from ._settings import GCSSettings

__all__ = ["GCSStorage", "create"]

_log = get_logger("oneiric.adapters.storage.gcs")
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


class GCSStorage(ExistsByHead):
    """A ``Storage`` over one GCS bucket (optionally under a key prefix)."""

    provider = "gcs"

    def __init__(self, settings: GCSSettings) -> None:
        try:  # at build time, so activation fails in one line naming the extra
            import aiohttp
            from gcloud.aio.storage import Storage as _Client
        except ImportError:
            raise MissingExtraError("gcs", "gcs") from None
        self.settings = settings
        self._aiohttp: Any = aiohttp
        self._client_cls: Any = _Client
        self._session: Any = None
        self._client: Any = None
        self._base = f"{settings.prefix}/" if settings.prefix else ""

    # ---------------------------------------------------------- lifecycle

    def _where(self) -> str:
        return f"bucket {self.settings.bucket!r} at {self.settings.endpoint or 'GCS'}"

    async def init(self) -> None:
        """Open the HTTP session and prove the bucket answers."""
        settings = self.settings
        timeout = self._aiohttp.ClientTimeout(
            total=settings.request_timeout_s, connect=settings.connect_timeout_s
        )
        self._session = self._aiohttp.ClientSession(timeout=timeout)
        kwargs: dict[str, Any] = {"session": self._session}
        if settings.endpoint:
            kwargs["api_root"] = settings.endpoint.rstrip("/")  # emulator: no auth
        elif settings.service_file is not None:
            kwargs["service_file"] = str(settings.service_file)
        self._client = self._client_cls(**kwargs)
        await self._probe()
        _log.debug("storage ready", provider="gcs", where=self._where())

    async def _probe(self) -> None:
        try:
            await self._call(
                "", lambda c: c.list_objects(self.settings.bucket, params=self._params("", 1))
            )
        except ObjectNotFoundError:
            raise StorageError(
                f"gcs storage: {self._where()} does not exist; create it first"
            ) from None

    async def health(self) -> bool:
        """True when the bucket answers; raises ``StorageUnavailableError`` when it cannot."""
        self._require()
        await self._probe()
        return True

    async def cleanup(self) -> None:
        """Close the HTTP session (safe to call after a failed or no ``init``)."""
        session, self._session, self._client = self._session, None, None
        if session is not None:
            await session.close()

    def _require(self) -> Any:
        if self._client is None:
            raise StorageError("gcs storage: not initialized; call init() first")
        return self._client

    # ------------------------------------------------------- error mapping

    def _map(self, exc: BaseException, path: str) -> StorageError:
        aiohttp = self._aiohttp
        where = f"gcs storage: {path!r}" if path else "gcs storage"
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, aiohttp.ClientResponseError):
            status = exc.status
            if status == 404:
                return ObjectNotFoundError(f"{where} not found")
            if status == 412:
                return PreconditionFailedError(f"{where} already exists (create_only)")
            if status in (401, 403):
                return StorageAuthError(
                    f"{where}: the server refused the credentials for {self._where()}"
                )
            if status in _RETRYABLE:
                return StorageUnavailableError(
                    f"{where}: server unavailable ({self._where()}): HTTP {status}"
                )
            return StorageError(f"{where}: HTTP {status} {exc.message}"[:300])
        if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
            return StorageUnavailableError(
                f"{where}: server unavailable ({self._where()}): {type(exc).__name__}: {exc}"[:300]
            )
        return StorageError(f"{where}: {type(exc).__name__}: {exc}"[:300])

    async def _call(self, path: str, op: Any) -> Any:
        """Run ``op(client)`` with bounded retries of transient failures, errors mapped."""
        client = self._require()
        attempt = 0
        while True:
            try:
                return await op(client)
            except Exception as exc:
                error = self._map(exc, path)
                retry = isinstance(error, StorageUnavailableError)
                if not retry or attempt >= self.settings.retries:
                    raise error from None
            attempt += 1
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))

    def _name(self, path: str) -> str:
        return self._base + path

    def _params(self, prefix: str, page_size: int) -> dict[str, str]:
        return {"prefix": self._base + prefix, "maxResults": str(page_size)}

    def _info(self, item: dict[str, Any]) -> ObjectInfo:
        updated = item.get("updated")
        return ObjectInfo(
            path=item["name"][len(self._base) :],
            size=int(item.get("size", 0)),
            etag=item.get("etag"),
            modified=datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None,
        )

    # ---------------------------------------------------------- operations

    async def put(
        self, path: str, data: bytes, *, create_only: bool = False, content_type: str | None = None
    ) -> ObjectInfo:
        validate_path(path)
        blob = bytes(data)
        ctype = content_type or "application/octet-stream"
        params = {"ifGenerationMatch": "0"} if create_only else {}
        item = await self._call(
            path,
            lambda c: c.upload(
                self.settings.bucket,
                self._name(path),
                blob,
                content_type=ctype,
                parameters=dict(params),
                metadata={"contentType": ctype},
                timeout=int(self.settings.request_timeout_s),
            ),
        )
        return self._info(item)

    async def get(self, path: str) -> bytes:
        validate_path(path)
        data: bytes = await self._call(
            path, lambda c: c.download(self.settings.bucket, self._name(path))
        )
        return data

    async def get_range(self, path: str, start: int, end: int) -> bytes:
        validate_path(path)
        check_range(start, end)
        if start == end:
            await self.head(path)
            return b""
        headers = {"Range": f"bytes={start}-{end - 1}"}
        try:
            data: bytes = await self._call(
                path,
                lambda c: c.download(self.settings.bucket, self._name(path), headers=headers),
            )
        except StorageError as error:
            if isinstance(error, ObjectNotFoundError | StorageUnavailableError):
                raise
            info = await self.head(path)  # 416: the range starts at or past the end
            if start >= info.size:
                return b""
            raise
        return data

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        validate_path(path)
        reader = await self._call(
            path, lambda c: c.download_stream(self.settings.bucket, self._name(path))
        )
        try:
            while True:
                try:
                    chunk = await reader.read(self.settings.chunk_size)
                except Exception as exc:
                    raise self._map(exc, path) from None
                if not chunk:
                    return
                yield chunk
        finally:
            response = getattr(reader, "_response", None)
            release = getattr(response, "release", None)
            if release is not None:
                release()

    async def delete(self, path: str) -> None:
        """Idempotent: GCS's 404 for a missing object is swallowed."""
        validate_path(path)
        try:
            await self._call(path, lambda c: c.delete(self.settings.bucket, self._name(path)))
        except ObjectNotFoundError:
            pass

    async def head(self, path: str) -> ObjectInfo:
        validate_path(path)
        item = await self._call(
            path, lambda c: c.download_metadata(self.settings.bucket, self._name(path))
        )
        return self._info(item)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        prefix = validate_prefix(prefix)
        token: str | None = None
        while True:
            params = self._params(prefix, self.settings.page_size)
            if token:
                params["pageToken"] = token
            page = await self._call(
                prefix, lambda c, p=params: c.list_objects(self.settings.bucket, params=p)
            )
            for item in page.get("items", ()):
                yield self._info(item)
            token = page.get("nextPageToken")
            if not token:
                return


def create(settings: GCSSettings) -> GCSStorage:
    """Factory named by the ``gcs`` candidate (imports the client: activation, not discovery)."""
    return GCSStorage(settings)
