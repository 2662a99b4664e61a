"""Fetchers contributed by plugins through ``oneiric_fetchers()`` reach ``RemoteSync``.

A plugin transport (s3, gs, oci, ...) moves the manifest's bytes; the caller
still enforces verification, limits and scheme policy. Before this was wired,
``plugin_fetchers()`` had no caller and a ``mem://`` source failed with
"no fetcher for scheme".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from oneiric.core import Resolver, hookimpl, new_plugin_manager
from oneiric.remote import RemoteSync, SignatureError

pytestmark = pytest.mark.anyio


class MemoryFetcher:
    """A real fetcher: serves bytes from a dict, in chunks, recording each URL asked."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.asked: list[str] = []

    async def stream(self, url: str, *, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
        self.asked.append(url)
        data = self.objects[url]
        for start in range(0, len(data), 7):
            yield data[start : start + 7]


class FetcherPlugin:
    def __init__(self, fetcher: MemoryFetcher) -> None:
        self.fetcher = fetcher

    @hookimpl
    def oneiric_fetchers(self) -> dict[str, Any]:
        return {"mem": self.fetcher, "https": self.fetcher}  # https: built-in, must be ignored


class BrokenPlugin:
    @hookimpl
    def oneiric_fetchers(self) -> dict[str, Any]:
        raise RuntimeError("fetcher plugin broken")


async def test_plugin_fetcher_serves_the_manifest(kit: Any, h: Any) -> None:
    fetcher = MemoryFetcher({"mem://bucket/m.json": kit.envelope(kit.payload())})
    hooks = new_plugin_manager()
    hooks.register(BrokenPlugin(), name="acme-broken:fetchers")
    hooks.register(FetcherPlugin(fetcher), name="acme-mem:fetchers")
    resolver = Resolver(hooks=hooks)
    result = await RemoteSync(resolver, kit.source("mem://bucket/m.json"), now=h.fixed_now).sync()
    assert result.registered == 1
    assert fetcher.asked == ["mem://bucket/m.json"]
    assert str(resolver.resolve("adapter", "cache").source) == "manifest:acme==1"


async def test_attack_plugin_fetcher_cannot_bypass_verification(kit: Any, h: Any) -> None:
    """Bytes from a plugin transport are verified like any other: a forged envelope fails."""
    forged = kit.envelope(kit.payload(), keys=[3])  # key 3 is not trusted
    fetcher = MemoryFetcher({"mem://bucket/m.json": forged})
    hooks = new_plugin_manager()
    hooks.register(FetcherPlugin(fetcher), name="acme-mem:fetchers")
    resolver = Resolver(hooks=hooks)
    with pytest.raises(SignatureError):
        await RemoteSync(resolver, kit.source("mem://bucket/m.json"), now=h.fixed_now).sync()
    assert resolver.candidates("adapter", "cache") == ()


async def test_load_last_good_registers_every_configured_source_offline(kit: Any) -> None:
    """The one function Host and the CLI use: cached last-good manifests, no network."""
    from datetime import UTC, datetime, timedelta

    from oneiric.core import ConfigError, load_settings
    from oneiric.remote import load_last_good

    issued = datetime.now(UTC) - timedelta(hours=1)  # checked against the real clock
    envelope = kit.envelope(kit.payload(issued=issued))
    fetcher = MemoryFetcher({"mem://bucket/m.json": envelope})
    hooks = new_plugin_manager()
    hooks.register(FetcherPlugin(fetcher), name="acme-mem:fetchers")
    await RemoteSync(Resolver(hooks=hooks), kit.source("mem://bucket/m.json")).sync()
    config = kit.settings("mem://bucket/m.json", 'factory_allowlist = ["json"]\n')
    settings = load_settings(config)
    fresh = Resolver(hooks=hooks)
    fetcher.asked.clear()
    assert await load_last_good(fresh, settings.remote, settings.config_dir) == {}
    assert fetcher.asked == []  # offline
    assert str(fresh.resolve("adapter", "cache").source) == "manifest:acme==1"
    with pytest.raises(ConfigError):
        await load_last_good(fresh, {"sources": {"s": {"url": 42}}}, None)
