"""Entry point ``oneiric`` -> ``storage``: registers the five storage providers.

Everything is a ``"module:attr"`` string: discovery imports this module and
nothing else (no obstore, no aiohttp, not even pydantic).

With nothing selected ``local`` wins: it declares priority 1, every other
provider keeps the entry-point default 0 (explain: "lost on priority 0 < 1").
Remote stores need configuration (a bucket, credentials) that a fresh install
lacks, so they never win by default; nothing here touches the network.  Their
client libraries are declared as ``metadata["requires"]``, so core's built-in
veto excludes them with an install hint when the extra is missing.
"""

from __future__ import annotations

from typing import Any

from oneiric.core import hookimpl

_PKG = "oneiric.adapters.storage"
_COMMON = frozenset({"range", "stream", "list", "create-only"})

#: The default provider's declared priority (the others keep the default 0).
DEFAULT_PRIORITY = {"local": 1}

#: provider -> (top-level modules its extra installs, extra name).
REQUIRES: dict[str, tuple[list[str], str]] = {
    "s3": (["obstore"], "s3"),
    "azure": (["obstore"], "azure"),
    "gcs": (["gcloud", "aiohttp"], "gcs"),
}

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
        metadata: dict[str, object] = {}
        if provider in REQUIRES:
            modules, extra_name = REQUIRES[provider]
            metadata = {
                "requires": modules,
                "install": f'pip install "oneiric-adapters-storage[{extra_name}]"',
            }
        registry.register(
            domain="adapter",
            key="storage",
            provider=provider,
            factory=factory,
            settings_model=settings_model,
            capabilities=_COMMON | extra,
            description=description,
            priority=DEFAULT_PRIORITY.get(provider),
            metadata=metadata,
        )
