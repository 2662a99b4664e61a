"""Live-server settings and per-provider storage factories for this package's tests.

Servers come from ``.ci/services/storage.sh start`` (its exports name them);
without them the live tests skip locally and fail under CI=true.  Every test
gets a fresh key prefix in the shared bucket/container.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from oneiric.adapters.storage._gcs import GCSStorage
from oneiric.adapters.storage._local import LocalStorage
from oneiric.adapters.storage._memory import MemoryStorage
from oneiric.adapters.storage._obstore import create_azure, create_s3
from oneiric.adapters.storage._settings import (
    AzureSettings,
    GCSSettings,
    LocalSettings,
    S3Settings,
)
from oneiric.adapters.storage.testing import unique_prefix
from oneiric.testing import free_port, require_live

LIVE = ("s3", "azure", "gcs")
_ENV = {
    "s3": ("ONEIRIC_TEST_S3_ENDPOINT", "ONEIRIC_TEST_S3_ACCESS_KEY", "ONEIRIC_TEST_S3_SECRET_KEY"),
    "azure": ("ONEIRIC_TEST_AZURITE_ENDPOINT", "ONEIRIC_TEST_AZURITE_KEY"),
    "gcs": ("ONEIRIC_TEST_GCS_ENDPOINT",),
}


def live_env(provider: str) -> dict[str, str]:
    """The server's env vars, or skip (locally) / fail (CI) when they are missing."""
    names = _ENV[provider]
    require_live(all(os.environ.get(n) for n in names), f"{provider} server ({names[0]})")
    return {n: os.environ[n] for n in os.environ if n.startswith("ONEIRIC_TEST_")}


def s3_settings(env: dict[str, str], **overrides: Any) -> S3Settings:
    fields: dict[str, Any] = {
        "bucket": env.get("ONEIRIC_TEST_S3_BUCKET", "oneiric-test"),
        "endpoint": env["ONEIRIC_TEST_S3_ENDPOINT"],
        "region": env.get("ONEIRIC_TEST_S3_REGION", "us-east-1"),
        "access_key_id": env["ONEIRIC_TEST_S3_ACCESS_KEY"],
        "secret_access_key": env["ONEIRIC_TEST_S3_SECRET_KEY"],
        "allow_http": True,
        "prefix": unique_prefix(),
    }
    return S3Settings(**{**fields, **overrides})


def azure_settings(env: dict[str, str], **overrides: Any) -> AzureSettings:
    fields: dict[str, Any] = {
        "container": env.get("ONEIRIC_TEST_AZURITE_CONTAINER", "oneiric-test"),
        "account": env.get("ONEIRIC_TEST_AZURITE_ACCOUNT", "devstoreaccount1"),
        "account_key": env["ONEIRIC_TEST_AZURITE_KEY"],
        "endpoint": env["ONEIRIC_TEST_AZURITE_ENDPOINT"],
        "allow_http": True,
        "prefix": unique_prefix(),
    }
    return AzureSettings(**{**fields, **overrides})


def gcs_settings(env: dict[str, str], **overrides: Any) -> GCSSettings:
    fields: dict[str, Any] = {
        "bucket": env.get("ONEIRIC_TEST_GCS_BUCKET", "oneiric-test"),
        "endpoint": env["ONEIRIC_TEST_GCS_ENDPOINT"],
        "allow_http": True,
        "prefix": unique_prefix(),
    }
    return GCSSettings(**{**fields, **overrides})


def build(provider: str, settings: Any) -> Any:
    return {"s3": create_s3, "azure": create_azure, "gcs": GCSStorage}[provider](settings)


SETTINGS = {"s3": s3_settings, "azure": azure_settings, "gcs": gcs_settings}

#: Azurite pages List Blobs at 5,000 (obstore cannot ask for less): list past it.
LIST_COUNT = {"azure": 5001}

PROVIDERS = [
    "local",
    "memory",
    *(pytest.param(p, marks=pytest.mark.live, id=p) for p in LIVE),
]


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_factory(provider: str, tmp_path: Path) -> Callable[[], Awaitable[Any]]:
    if provider == "local":
        settings = LocalSettings(root=tmp_path / "root")

        async def make_local() -> Any:
            storage = LocalStorage(settings)
            await storage.init()
            return storage

        return make_local
    if provider == "memory":
        shared: dict[str, Any] = {}

        async def make_memory() -> Any:
            return MemoryStorage(objects=shared)

        return make_memory
    env = live_env(provider)
    remote = SETTINGS[provider](env)

    async def make_remote() -> Any:
        storage = build(provider, remote)
        await storage.init()
        return storage

    return make_remote


@pytest.fixture
def storage_unavailable_factory(provider: str) -> Callable[[], Awaitable[Any]] | None:
    if provider not in LIVE:
        return None
    env = live_env(provider)
    dead = f"http://127.0.0.1:{free_port()}"
    endpoint = dead + ("/devstoreaccount1" if provider == "azure" else "")
    settings = SETTINGS[provider](env, endpoint=endpoint, retries=1, retry_timeout_s=2.0)

    async def make() -> Any:
        return build(provider, settings)

    return make


@pytest.fixture
def storage_list_count(provider: str) -> int:
    return LIST_COUNT.get(provider, 1001)


@pytest.fixture
def live_settings() -> Callable[..., Any]:
    """``live_settings(provider, env=None, **overrides)``: settings for a live server."""

    def make(provider: str, env: dict[str, str] | None = None, **overrides: Any) -> Any:
        return SETTINGS[provider](live_env(provider) if env is None else env, **overrides)

    return make


@pytest.fixture
def build_storage() -> Callable[[str, Any], Any]:
    """``build_storage(provider, settings)``: an uninitialized provider instance."""
    return build
