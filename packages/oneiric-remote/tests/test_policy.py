"""Cases 20, 26, 27: references, factory policy and scope - all before anything is committed."""

from __future__ import annotations

from typing import Any

import pytest

from oneiric.remote import (
    FactoryNotAllowedError,
    ManifestFormatError,
    RemoteSync,
    ScopeError,
)

pytestmark = pytest.mark.anyio


def _comp(**kw: Any) -> dict[str, Any]:
    base = {"domain": "adapter", "key": "cache", "provider": "p1", "factory": "json:loads"}
    base.update(kw)
    return base


async def _run(kit, resolver, h, payload, **source):
    path = kit.write(kit.envelope(payload))
    return await RemoteSync(resolver, kit.source(str(path), **source), now=h.fixed_now).sync()


@pytest.mark.parametrize(
    "payload_change",
    [
        {"components": [_comp(artifact="missing")]},
        {"artifacts": {"a": {"urls": ["https://x.example/a.whl"], "size": 1, "kind": "wheel"}}},
        {"artifacts": {"a": {"urls": ["https://x.example/a.whl"], "sha256": "0" * 64,
                             "kind": "wheel"}}},
        {"components": [_comp(), _comp()]},
        {"components": [_comp(domain="Bad")]},
    ],
    ids=["missing-artifact", "no-sha256", "no-size", "duplicate", "bad-domain"],
)
async def test_case20_references(kit, resolver, h, unchanged, payload_change) -> None:
    payload = kit.payload()
    payload.update(payload_change)
    with pytest.raises(ManifestFormatError):
        await _run(kit, resolver, h, payload)
    unchanged()


@pytest.mark.parametrize("factory", ["os:system", "builtins:eval", "acmeevil.x:y"])
async def test_case26_factory_not_allowed(kit, resolver, h, unchanged, factory) -> None:
    with pytest.raises(FactoryNotAllowedError):
        await _run(kit, resolver, h, kit.payload(components=[_comp(factory=factory)]),
                   factory_allowlist=("acme",))
    unchanged()


async def test_case26_allowlist_at_dotted_boundaries(kit, resolver, h) -> None:
    result = await _run(kit, resolver, h, kit.payload(components=[_comp(factory="acme.x:y")]),
                        factory_allowlist=("acme",))
    assert result.registered == 1


@pytest.mark.parametrize("factory", ["a:b:c", "mod:", ":X", "mod:__class__", "_private:x",
                                     "mod:attr.__globals__", "1mod:x", "mod: x"])
async def test_case26_malformed_factory(kit, resolver, h, unchanged, factory) -> None:
    with pytest.raises(ManifestFormatError):
        await _run(kit, resolver, h, kit.payload(components=[_comp(factory=factory)]))
    unchanged()


@pytest.mark.parametrize(
    ("component", "source"),
    [
        (_comp(key="storage"), {"allowed_keys": ["adapter.cache"]}),
        (_comp(domain="service", key="cache"), {"allowed_keys": ["adapter.*"]}),
        (_comp(priority=51), {"max_priority": 50}),
        (_comp(), {"max_priority": 4}),  # the default manifest priority (5) counts
    ],
    ids=["key", "domain", "priority", "default-priority"],
)
async def test_case27_scope(kit, resolver, h, unchanged, component, source) -> None:
    payload = kit.payload(components=[_comp(provider="ok"), component | {"provider": "bad"}])
    with pytest.raises(ScopeError):
        await _run(kit, resolver, h, payload, **source)
    unchanged()


async def test_case27_in_scope(kit, resolver, h) -> None:
    payload = kit.payload(components=[_comp(priority=50), _comp(key="storage", provider="s")])
    result = await _run(kit, resolver, h, payload, allowed_keys=["adapter.*"], max_priority=50)
    assert result.registered == 2
