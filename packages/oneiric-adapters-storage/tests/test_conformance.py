"""Every first-party provider passes the conformance suite (live ones against real servers)."""

from __future__ import annotations

from oneiric.adapters.storage.testing import StorageConformance

pytest_plugins = ["oneiric.adapters.storage.testing"]


class TestConformance(StorageConformance):
    """Parametrized over local, memory, s3, azure and gcs by conftest's ``provider``."""
