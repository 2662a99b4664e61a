"""On a fresh install ``local`` is the default storage; remote stores never win by default."""

from __future__ import annotations

from oneiric.core import Resolver, load_plugins, new_plugin_manager


def test_attack_fresh_install_default_winner_is_local() -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    load_plugins(resolver)
    assert resolver.resolve("adapter", "storage").provider == "local"
    rows = {
        row["provider"]: row["reason"]
        for row in resolver.explain("adapter", "storage").as_dict()["candidates"]
        if row["source"].startswith("entry_point:oneiric-adapters-storage")
    }
    for provider in ("memory", "s3", "azure", "gcs"):
        assert rows[provider].startswith("lost on priority") or "vetoed by" in rows[provider]


def test_remote_stores_declare_their_client_libraries() -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    load_plugins(resolver)
    found = {
        c.provider: c
        for c in resolver.candidates("adapter", "storage")
        if c.source.name == "oneiric-adapters-storage"
    }
    assert "requires" not in found["local"].metadata
    assert "requires" not in found["memory"].metadata
    for provider in ("s3", "azure", "gcs"):
        assert list(found[provider].metadata["requires"])
