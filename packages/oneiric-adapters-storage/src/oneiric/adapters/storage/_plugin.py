"""Entry point ``oneiric`` -> ``storage``: registers the five storage providers.

Everything is a ``"module:attr"`` string: discovery imports this module and
nothing else (no obstore, no aiohttp, not even pydantic).
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

_PKG = "oneiric.adapters.storage"
_COMMON = frozenset({"range", "stream", "list", "create-only"})

#: provider -> (factory, settings model, extra capabilities, description)
PROVIDERS: dict[str, tuple[str, str, frozenset[str], str]] = {
    "local": (
        f"{_PKG}._local:create",
        f"{_PKG}._settings:LocalSettings",
        frozenset({"durable", "atomic-write"}),
        "files under a directory this provider owns; atomic, fsynced writes",
    ),
    "memory": (
        f"{_PKG}._memory:create",
        f"{_PKG}._settings:MemorySettings",
        frozenset(),
        "process-local dict; for tests and single-process apps (not durable)",
    ),
    "s3": (
        f"{_PKG}._obstore:create_s3",
        f"{_PKG}._settings:S3Settings",
        frozenset({"durable", "remote"}),
        "Amazon S3 or an S3-compatible server via obstore (extra: s3)",
    ),
    "azure": (
        f"{_PKG}._obstore:create_azure",
        f"{_PKG}._settings:AzureSettings",
        frozenset({"durable", "remote"}),
        "Azure Blob Storage or Azurite via obstore (extra: azure)",
    ),
    "gcs": (
        f"{_PKG}._gcs:create",
        f"{_PKG}._settings:GCSSettings",
        frozenset({"durable", "remote"}),
        "Google Cloud Storage JSON API via gcloud-aio-storage (extra: gcs)",
    ),
}


@hookimpl
def oneiric_register(registry: Any) -> None:
    for provider, (factory, settings_model, extra, description) in PROVIDERS.items():
        registry.register(
            domain="adapter",
            key="storage",
            provider=provider,
            factory=factory,
            settings_model=settings_model,
            capabilities=_COMMON | extra,
            description=description,
        )
