"""Pydantic settings models, one per provider (``provider_settings.storage.<provider>``).

Unknown fields are errors (``extra="forbid"``): a misspelt ``endpiont`` must not
silently fall back to AWS.  Secrets are ``SecretStr`` so every Oneiric output
redacts them.  Timeouts and retries are explicit, small, frozen values: a dead
server must fail activation in seconds, not after a client's default three
minutes of retries.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ._paths import validate_prefix

__all__ = [
    "AzureSettings",
    "GCSSettings",
    "LocalSettings",
    "MemorySettings",
    "RemoteSettings",
    "S3Settings",
]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalSettings(_Base):
    """``root``: the directory this provider owns (created on ``init``)."""

    root: Path
    chunk_size: int = Field(1 << 20, gt=0, description="stream() chunk size in bytes")
    fsync: bool = Field(True, description="fsync file and directory on put (durability)")


class MemorySettings(_Base):
    """No settings: every instance is an independent, empty store."""

    chunk_size: int = Field(default=1 << 20, gt=0)


class RemoteSettings(_Base):
    """What every network provider shares: a key prefix and bounded timeouts/retries."""

    prefix: str = Field("", description="every path is stored under this prefix")
    connect_timeout_s: float = Field(5.0, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0, description="retries of transient failures per request")
    retry_timeout_s: float = Field(10.0, gt=0, description="give up retrying after this long")
    allow_http: bool = Field(False, description="allow plain http endpoints (emulators)")
    chunk_size: int = Field(1 << 20, gt=0, description="minimum stream() chunk size")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return validate_prefix(value).rstrip("/")


class S3Settings(RemoteSettings):
    """Amazon S3 or any S3-compatible server (SeaweedFS, MinIO, Ceph, R2)."""

    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = Field(None, description="e.g. http://127.0.0.1:8333; None = AWS")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    virtual_hosted_style: bool = False


class AzureSettings(RemoteSettings):
    """Azure Blob Storage or Azurite."""

    container: str
    account: str
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    endpoint: str | None = Field(
        None, description="e.g. http://127.0.0.1:10000/devstoreaccount1; None = Azure"
    )


class GCSSettings(RemoteSettings):
    """Google Cloud Storage (JSON API) or fake-gcs-server.

    With ``endpoint`` set (an emulator) requests are unauthenticated; otherwise
    ``service_file`` or the environment's application-default credentials are used.
    """

    bucket: str
    endpoint: str | None = Field(None, description="e.g. http://127.0.0.1:4443 (emulator)")
    service_file: Path | None = None
    page_size: int = Field(1000, gt=0, le=1000, description="objects per list page")
