"""The remote veto declares that it concerns manifest candidates only (``veto_applies_to``).

A counting hook wrapper sees every call the resolver makes to a veto implementation,
so the test checks who is asked without reaching into the resolver.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from oneiric.core import Candidate, Resolver, Source, hookimpl, new_plugin_manager
from oneiric.remote import _veto

MANIFEST = Source("manifest", "acme-prod", "7")


class Asked:
    def __init__(self) -> None:
        self.providers: list[str] = []

    @hookimpl(wrapper=True)
    def oneiric_candidate_veto(self, candidate: Candidate, request: Any) -> Generator[None]:
        self.providers.append(candidate.provider)
        return (yield)


def cand(provider: str, **kw: Any) -> Candidate:
    return Candidate("adapter", "cache", provider, "json:loads", **kw)


def test_remote_veto_is_asked_about_manifest_candidates_only() -> None:
    hooks = new_plugin_manager()
    _veto.ensure_registered(hooks)
    _veto.ensure_registered(hooks)  # idempotent
    asked = Asked()
    hooks.register(asked, name="asked:wrapper")
    r = Resolver(stack_order="", hooks=hooks)
    r.register(cand("memory", metadata={"unavailable": "ignored outside manifests"}))
    r.register(cand("redis", source=Source("entry_point", "oneiric-a"), priority=50))
    assert r.resolve("adapter", "cache").provider == "redis"
    r.explain("adapter", "cache")
    assert asked.providers == []
    # registered after the key was resolved: must be asked, and its veto must hold
    r.register(
        cand("acme", source=MANIFEST, priority=100, metadata={"unavailable": "requires foo"})
    )
    assert r.resolve("adapter", "cache").provider == "redis"
    assert set(asked.providers) == {"acme"}
    ranking = r.explain("adapter", "cache").ranking
    assert ranking[-1].reason == "vetoed by oneiric-remote: requires foo"
    r.register(cand("ok", source=MANIFEST, priority=90))
    assert r.resolve("adapter", "cache").provider == "ok"
    assert set(asked.providers) == {"acme", "ok"}
