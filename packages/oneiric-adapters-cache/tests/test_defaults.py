"""On a fresh install the embedded provider is the default winner, and explain says why."""

from __future__ import annotations

from oneiric.core import Resolver, load_plugins, new_plugin_manager


def test_attack_fresh_install_default_winner_is_memory() -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    load_plugins(resolver)
    assert resolver.resolve("adapter", "cache").provider == "memory"
    rows = {
        row["provider"]: row
        for row in resolver.explain("adapter", "cache").as_dict()["candidates"]
        if row["source"].startswith("entry_point:oneiric-adapters-cache")
    }
    for provider in ("redis", "memcached"):
        reason = rows[provider]["reason"]
        # lost on priority when its library is installed, vetoed with an install hint when not
        assert reason.startswith("lost on priority") or (
            f"oneiric-adapters-cache[{provider}]" in reason
        ), reason


def test_client_libraries_are_declared_requirements() -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    load_plugins(resolver)
    found = {
        c.provider: c
        for c in resolver.candidates("adapter", "cache")
        if c.source.name == "oneiric-adapters-cache"
    }
    assert "requires" not in found["memory"].metadata
    assert list(found["redis"].metadata["requires"]) == ["redis"]
    assert list(found["memcached"].metadata["requires"]) == ["emcache"]
