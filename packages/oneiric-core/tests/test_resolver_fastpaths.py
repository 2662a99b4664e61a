"""The resolver's fast paths: tenant and ``require=`` caches, settled writes, veto scopes, listings.

Each cache is checked against the documented rules (docs/architecture.md §4):
explicit selection (a tenant's over the global one) > priority (operator stack
order > declared > default per source kind) > stack_level > registration order,
with vetoes and required capabilities excluding candidates.  The randomized
test derives every answer from those rules with no cache, so a write that
settles a wrong winner or a cache entry that outlives its write shows up as a
disagreement after the operation that caused it.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pluggy
import pytest

from oneiric.core import (
    Candidate,
    NoEligibleProviderError,
    NotRegisteredError,
    OneiricError,
    ResolutionRequest,
    Resolver,
    SelectionUnavailableError,
    Source,
    hookimpl,
    new_plugin_manager,
    veto_applies_to,
)

EP_A = Source("entry_point", "oneiric-a", "1.0")
EP_B = Source("entry_point", "oneiric-b", "2.0")
MANIFEST = Source("manifest", "acme-prod", "7")
MISSING = "no_such_module_xyz"

KeyRef = tuple[str, str]


def cand(provider: str, key: str = "cache", domain: str = "adapter", **kw: Any) -> Candidate:
    return Candidate(domain, key, provider, "collections:OrderedDict", **kw)


def private_hooks(*plugins: object) -> pluggy.PluginManager:
    pm = new_plugin_manager(builtins=False)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"policy-{i}:veto")
    return pm


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(stack_order="", hooks=private_hooks())


def provider_of(r: Resolver, domain: str = "adapter", key: str = "cache", **kw: Any) -> str:
    return r.resolve(domain, key, **kw).provider


class Policy:
    """Undecorated: asked about every candidate."""

    def __init__(self, *banned: str) -> None:
        self.banned = set(banned)
        self.asked: list[str] = []

    @hookimpl
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: ResolutionRequest
    ) -> str | None:
        self.asked.append(candidate.provider)
        return "banned by policy" if candidate.provider in self.banned else None


class ManifestPolicy:
    """Declares that it only concerns manifest candidates."""

    def __init__(self, *banned: str) -> None:
        self.banned = set(banned)
        self.asked: list[str] = []

    @hookimpl
    @veto_applies_to(source_kinds=["manifest"])
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: ResolutionRequest
    ) -> str | None:
        self.asked.append(candidate.provider)
        return "not in the manifest allow-list" if candidate.provider in self.banned else None


# ------------------------------------------------------------- tenant fast path


def test_tenant_gains_changes_and_loses_its_own_selection(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("local"))
    resolver.register(cand("redis", priority=50))
    assert provider_of(resolver, tenant="acme") == "redis"  # no own selection: global winner

    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    for _ in range(3):  # the fill, then cached reads
        assert provider_of(resolver, tenant="acme") == "memory"
        assert provider_of(resolver) == "redis"
        assert provider_of(resolver, tenant="globex") == "redis"
    assert resolver.explain("adapter", "cache", tenant="acme").selected == cand("memory")

    resolver.set_selections("adapter", {"cache": "local"}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "local"
    assert provider_of(resolver, tenant="acme") == "local"

    resolver.set_selections("adapter", {}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "redis"
    explanation = resolver.explain("adapter", "cache", tenant="acme")
    assert explanation.selected == cand("redis", priority=50)
    assert explanation.tenant == "acme"
    resolver.register(cand("newest", priority=60))
    assert provider_of(resolver, tenant="acme") == "newest"


def test_tenant_selection_does_not_leak_to_other_domains_or_keys(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", priority=50))
    resolver.register(cand("memory", key="queue"))
    resolver.register(cand("redis", key="queue", priority=50))
    resolver.register(cand("memory", domain="service"))
    resolver.register(cand("redis", domain="service", priority=50))
    resolver.set_selections("service", {"cache": "memory"}, tenant="acme")
    for _ in range(2):
        assert provider_of(resolver, "service", tenant="acme") == "memory"
        assert provider_of(resolver, "adapter", tenant="acme") == "redis"
        assert provider_of(resolver, "adapter", "queue", tenant="acme") == "redis"
        assert provider_of(resolver, "service", "cache", tenant="globex") == "redis"
    # the other domain's winner keeps following writes for the tenant
    resolver.register(cand("local", priority=70))
    assert provider_of(resolver, "adapter", tenant="acme") == "local"
    assert provider_of(resolver, "service", tenant="acme") == "memory"


def test_tenant_selection_keeps_winning_over_better_later_candidates(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", priority=50))
    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "memory"
    resolver.register(cand("best", priority=100))
    assert provider_of(resolver, tenant="acme") == "memory"
    assert provider_of(resolver) == "best"
    assert provider_of(resolver, tenant="globex") == "best"
    # a better candidate of the selected provider (another origin) wins the tenant's selection
    better = cand("memory", source=EP_A, priority=99)
    resolver.register(better)
    assert resolver.resolve("adapter", "cache", tenant="acme") == better
    # re-registering that candidate below the first one hands the selection back
    resolver.register(cand("memory", source=EP_A, priority=1))
    assert resolver.resolve("adapter", "cache", tenant="acme") == cand("memory")
    # re-registering the selected candidate itself: the tenant sees the new one
    replaced = cand("memory", priority=3, description="replaced")
    resolver.register(replaced)
    winner = resolver.resolve("adapter", "cache", tenant="acme")
    assert winner == replaced and winner.description == "replaced"


def test_tenant_selection_over_global_selection(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("local"))
    resolver.register(cand("redis", priority=50))
    resolver.set_selections("adapter", {"cache": "local"})
    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "memory"
    assert provider_of(resolver, tenant="globex") == "local"
    assert provider_of(resolver) == "local"
    resolver.set_selections("adapter", {})
    assert provider_of(resolver, tenant="acme") == "memory"
    assert provider_of(resolver, tenant="globex") == "redis"


def test_invalidate_refills_tenant_winners() -> None:
    policy = Policy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    r.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    assert provider_of(r, tenant="acme") == "memory"
    r.invalidate()
    assert provider_of(r, tenant="acme") == "memory"
    policy.banned.add("memory")
    r.invalidate()
    with pytest.raises(SelectionUnavailableError, match="memory") as info:
        r.resolve("adapter", "cache", tenant="acme")
    assert "vetoed by policy-0: banned by policy" in str(info.value)
    assert provider_of(r, tenant="globex") == "redis"
    policy.banned.clear()
    r.invalidate()
    assert provider_of(r, tenant="acme") == "memory"


def test_tenant_selected_provider_unregistered_raises(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", priority=50))
    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "memory"
    assert resolver.unregister("adapter", "cache", "memory", ("code", "app"))
    for _ in range(2):
        with pytest.raises(SelectionUnavailableError, match="'memory'") as info:
            resolver.resolve("adapter", "cache", tenant="acme")
        assert "redis" in str(info.value)  # names the registered providers
    with pytest.raises(SelectionUnavailableError):
        resolver.explain("adapter", "cache", tenant="acme")
    assert provider_of(resolver) == "redis"
    assert provider_of(resolver, tenant="globex") == "redis"
    resolver.register(cand("memory"))
    assert provider_of(resolver, tenant="acme") == "memory"


def test_tenant_selection_of_a_provider_registered_later(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.set_selections("adapter", {"cache": "ghost"}, tenant="acme")
    with pytest.raises(SelectionUnavailableError, match="ghost"):
        resolver.resolve("adapter", "cache", tenant="acme")
    resolver.register(cand("ghost", priority=-5))
    assert provider_of(resolver, tenant="acme") == "ghost"
    assert provider_of(resolver) == "memory"


def test_tenant_selects_a_key_registered_after_the_selection(resolver: Resolver) -> None:
    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    with pytest.raises(NotRegisteredError):
        resolver.resolve("adapter", "cache", tenant="acme")
    resolver.register(cand("redis", priority=50))  # a new key
    with pytest.raises(SelectionUnavailableError):
        resolver.resolve("adapter", "cache", tenant="acme")
    resolver.register(cand("memory"))
    assert provider_of(resolver, tenant="acme") == "memory"
    assert provider_of(resolver) == "redis"


def test_two_tenants_with_different_selections_of_one_key(resolver: Resolver) -> None:
    for provider in ("memory", "local", "redis"):
        resolver.register(cand(provider))
    resolver.set_selections("adapter", {"cache": "memory"}, tenant="acme")
    resolver.set_selections("adapter", {"cache": "local"}, tenant="globex")
    for _ in range(2):
        assert provider_of(resolver, tenant="acme") == "memory"
        assert provider_of(resolver, tenant="globex") == "local"
        assert provider_of(resolver, tenant="initech") == "redis"
        assert provider_of(resolver) == "redis"
    resolver.set_selections("adapter", {}, tenant="acme")
    assert provider_of(resolver, tenant="acme") == "redis"
    assert provider_of(resolver, tenant="globex") == "local"
    assert resolver.unregister("adapter", "cache", "local", ("code", "app"))
    with pytest.raises(SelectionUnavailableError):
        resolver.resolve("adapter", "cache", tenant="globex")
    assert provider_of(resolver, tenant="acme") == "redis"


# ---------------------------------------------------------- require= fast path


def require_forms(*names: str) -> list[Any]:
    forms: list[Any] = [tuple(names), list(names), frozenset(names)]
    if len(names) == 1:
        forms.append(names[0])
    return forms


@pytest.fixture
def capable() -> Resolver:
    r = Resolver(stack_order="", hooks=private_hooks())
    r.register(cand("plain", priority=50))
    r.register(cand("ttl1", priority=1, capabilities={"ttl"}))
    r.register(cand("both", priority=0, capabilities={"ttl", "fast"}))
    return r


@pytest.mark.parametrize(
    ("names", "expected"),
    [(("ttl",), "ttl1"), (("fast",), "both"), (("ttl", "fast"), "both"), (("fast", "ttl"), "both")],
)
def test_require_forms_agree(capable: Resolver, names: tuple[str, ...], expected: str) -> None:
    for _ in range(2):  # the first call fills, the second reads the remembered winner
        for form in require_forms(*names):
            assert provider_of(capable, require=form) == expected, form
            assert capable.explain("adapter", "cache", require=form).selected.provider == expected
    assert provider_of(capable) == "plain"


def test_bare_string_require_is_one_capability(capable: Resolver) -> None:
    capable.register(cand("letters", priority=99, capabilities={"t", "l"}))
    for _ in range(2):
        assert provider_of(capable, require="ttl") == "ttl1"
    with pytest.raises(NoEligibleProviderError, match="lacks capability tl"):
        capable.resolve("adapter", "cache", require="tl")


def test_require_answer_follows_writes(capable: Resolver) -> None:
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "ttl1"
    capable.register(cand("ttl2", priority=5, capabilities={"ttl"}))
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "ttl2", form
    capable.register(cand("fat", priority=90))  # better but incapable
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "ttl2", form
    assert provider_of(capable) == "fat"
    # a global selection applies to required lookups too
    capable.set_selections("adapter", {"cache": "ttl1"})
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "ttl1", form
    capable.set_selections("adapter", {"cache": "plain"})
    for form in require_forms("ttl"):
        with pytest.raises(SelectionUnavailableError, match="lacks capability ttl"):
            capable.resolve("adapter", "cache", require=form)
    capable.set_selections("adapter", {})
    assert provider_of(capable, require="ttl") == "ttl2"


def test_require_after_capable_candidates_are_unregistered(capable: Resolver) -> None:
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "ttl1"
    assert capable.unregister("adapter", "cache", "ttl1", ("code", "app"))
    for form in require_forms("ttl"):
        assert provider_of(capable, require=form) == "both"
    assert capable.unregister("adapter", "cache", "both", ("code", "app"))
    for _ in range(2):
        for form in require_forms("ttl"):
            with pytest.raises(NoEligibleProviderError, match="lacks capability ttl"):
                capable.resolve("adapter", "cache", require=form)
            assert capable.explain("adapter", "cache", require=form).selected is None
    assert provider_of(capable) == "plain"


def test_require_with_tenant_selection(capable: Resolver) -> None:
    capable.set_selections("adapter", {"cache": "both"}, tenant="acme")
    capable.set_selections("adapter", {"cache": "plain"}, tenant="globex")
    for _ in range(2):
        assert provider_of(capable, require="ttl", tenant="acme") == "both"
        assert provider_of(capable, require="ttl", tenant="initech") == "ttl1"
        assert provider_of(capable, require="ttl") == "ttl1"
        with pytest.raises(SelectionUnavailableError, match="lacks capability ttl"):
            capable.resolve("adapter", "cache", require=("ttl",), tenant="globex")


def test_require_winner_is_refilled_after_invalidate() -> None:
    policy = Policy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("ttl1", priority=1, capabilities={"ttl"}))
    r.register(cand("ttl2", priority=2, capabilities={"ttl"}))
    assert provider_of(r, require="ttl") == "ttl2"
    policy.banned.add("ttl2")
    r.invalidate()
    for form in require_forms("ttl"):
        assert provider_of(r, require=form) == "ttl1"


def test_more_requirements_than_remembered_still_answer_correctly(resolver: Resolver) -> None:
    caps = [f"c{i}" for i in range(20)]
    for i, cap in enumerate(caps):
        resolver.register(cand(f"p{i}", priority=i, capabilities={cap}))
    resolver.register(cand("all", priority=-1, capabilities=set(caps)))
    resolver.register(cand("top", priority=99))
    requirements = [(cap,) for cap in caps] + [
        (caps[i], caps[j]) for i in range(0, 20, 3) for j in range(1, 20, 4) if i != j
    ]
    assert len(requirements) > 16

    def expected(req: tuple[str, ...]) -> str:
        return f"p{int(req[0][1:])}" if len(req) == 1 else "all"

    for _round in range(3):
        for req in requirements:
            for form in (req, list(req), frozenset(req)):
                assert provider_of(resolver, require=form) == expected(req), form
            selected = resolver.explain("adapter", "cache", require=req).selected
            assert selected is not None and selected.provider == expected(req)
    assert provider_of(resolver) == "top"
    # a write to the key drops what was remembered, however many there were
    resolver.register(cand("p5b", priority=50, capabilities={"c5"}))
    assert provider_of(resolver, require=("c5",)) == "p5b"
    assert provider_of(resolver, require="c6") == "p6"
    with pytest.raises(NoEligibleProviderError):
        resolver.resolve("adapter", "cache", require=("c99",))


# -------------------------------------------------------------- settled writes


def test_new_candidates_better_or_worse_than_the_cached_winner(resolver: Resolver) -> None:
    resolver.register(cand("memory", priority=5, stack_level=1))
    assert provider_of(resolver) == "memory"  # a new key's only candidate
    resolver.register(cand("worse", priority=5))  # loses on stack_level
    assert provider_of(resolver) == "memory"
    resolver.register(cand("worse2", priority=4, stack_level=9))  # loses on priority
    assert provider_of(resolver) == "memory"
    resolver.register(cand("tie", priority=5, stack_level=1))  # ties: newest wins
    assert provider_of(resolver) == "tie"
    resolver.register(cand("higher", priority=6))
    assert provider_of(resolver) == "higher"
    resolver.register(cand("stacked", priority=6, stack_level=1))
    assert provider_of(resolver) == "stacked"
    ranking = resolver.explain("adapter", "cache").ranking
    assert [r.candidate.provider for r in ranking] == [
        "stacked", "higher", "tie", "memory", "worse", "worse2",
    ]  # fmt: skip


def test_default_priorities_on_settled_writes(resolver: Resolver) -> None:
    resolver.register(cand("ep", source=EP_A))
    assert provider_of(resolver) == "ep"
    resolver.register(cand("manifest", source=MANIFEST))  # default 5 > 0
    assert provider_of(resolver) == "manifest"
    resolver.register(cand("ep2", source=EP_B, stack_level=5))  # 0 < 5
    assert provider_of(resolver) == "manifest"
    resolver.register(cand("code"))  # default 10
    assert provider_of(resolver) == "code"
    resolver.register(cand("manifest2", source=MANIFEST, priority=10))  # declared ties, newer
    assert provider_of(resolver) == "manifest2"
    resolver.register(cand("code2", priority=9))
    assert provider_of(resolver) == "manifest2"


def test_reregistering_the_winner(resolver: Resolver) -> None:
    resolver.register(cand("memory", priority=5))
    resolver.register(cand("redis", priority=3, stack_level=2))
    resolver.register(cand("winner", priority=7))
    assert provider_of(resolver) == "winner"
    same = cand("winner", priority=7, description="equal priority")
    resolver.register(same)
    assert resolver.resolve("adapter", "cache").description == "equal priority"
    higher = cand("winner", priority=8, description="higher")
    resolver.register(higher)
    assert resolver.resolve("adapter", "cache").description == "higher"
    still = cand("winner", priority=6, description="lower but still best")
    resolver.register(still)
    assert resolver.resolve("adapter", "cache").description == "lower but still best"
    resolver.register(cand("winner", priority=2))  # lower than the others: rescan
    assert provider_of(resolver) == "memory"
    resolver.register(cand("winner", priority=5, stack_level=1))
    assert provider_of(resolver) == "winner"
    resolver.register(cand("winner", priority=5, stack_level=-1))  # lower stack_level: rescan
    assert provider_of(resolver) == "memory"
    resolver.register(cand("memory", priority=3))  # the runner-up drops
    assert provider_of(resolver) == "winner"
    resolver.register(cand("winner", priority=3, stack_level=-1))  # rescan: redis's stack
    assert provider_of(resolver) == "redis"


def test_reregistering_a_loser(resolver: Resolver) -> None:
    resolver.register(cand("memory", priority=1))
    resolver.register(cand("redis", priority=5))
    assert provider_of(resolver) == "redis"
    resolver.register(cand("memory", priority=0))  # a loser gets worse
    assert provider_of(resolver) == "redis"
    resolver.register(cand("memory", priority=5))  # ties, now the newest
    assert provider_of(resolver) == "memory"


def test_global_selection_is_not_overridden_by_settled_writes(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.set_selections("adapter", {"cache": "memory"})
    assert provider_of(resolver) == "memory"
    resolver.register(cand("redis", priority=99))
    assert provider_of(resolver) == "memory"
    resolver.register(cand("memory", priority=-10))  # the selected one gets worse
    assert provider_of(resolver) == "memory"
    resolver.set_selections("adapter", {"queue": "memory"})
    resolver.register(cand("redis", key="queue"))  # a new key another provider's
    with pytest.raises(SelectionUnavailableError):
        resolver.resolve("adapter", "queue")
    assert provider_of(resolver) == "redis"


def test_selection_with_origin_qualifier_on_settled_writes(resolver: Resolver) -> None:
    resolver.register(cand("redis", source=EP_A))
    resolver.register(cand("redis", source=EP_B, priority=50))
    resolver.set_selections("adapter", {"cache": "redis@entry_point:oneiric-a"})
    assert resolver.resolve("adapter", "cache").source == EP_A
    resolver.register(cand("redis", source=EP_B, priority=60))
    assert resolver.resolve("adapter", "cache").source == EP_A


def test_stack_order_on_settled_writes() -> None:
    r = Resolver(stack_order="oneiric-a:100,manifest:acme-prod:50", hooks=private_hooks())
    r.register(cand("ep", source=EP_A, priority=1))  # stack order 100 overrides declared 1
    assert provider_of(r) == "ep"
    r.register(cand("code", priority=99))
    assert provider_of(r) == "ep"
    r.register(cand("manifest", source=MANIFEST, priority=500))  # stack order: 50
    assert provider_of(r) == "ep"
    r.register(cand("ep", source=EP_A, priority=1000))  # re-registered: still 100
    assert provider_of(r) == "ep"
    r.register(cand("code", priority=100, stack_level=1))
    assert provider_of(r) == "code"
    r.register(cand("code", priority=100, stack_level=0))  # ties with ep, newest
    assert provider_of(r) == "code"
    r.register(cand("code", priority=20))  # drops: rescan
    assert provider_of(r) == "ep"
    assert r.unregister_source(("entry_point", "oneiric-a")) == 1
    assert provider_of(r) == "manifest"


@pytest.mark.parametrize("size", [3, 31, 32, 33, 80])
def test_rescans_of_small_and_large_keys(resolver: Resolver, size: int) -> None:
    """Whether a write rescans the key itself or leaves it to the next resolve, same answers."""
    for i in range(size):
        resolver.register(cand(f"p{i}", priority=i))
    top = f"p{size - 1}"
    assert provider_of(resolver) == top
    resolver.register(cand(top, priority=-1))  # the winner drops: rescan
    assert provider_of(resolver) == f"p{size - 2}"
    resolver.register(cand(top, priority=size))
    assert provider_of(resolver) == top
    resolver.set_selections("adapter", {"cache": "p1"})
    assert provider_of(resolver) == "p1"
    resolver.register(cand("p1", priority=-5))  # the selected one drops
    assert provider_of(resolver) == "p1"
    resolver.register(cand("p1", source=EP_A, priority=-4))  # a better p1
    assert resolver.resolve("adapter", "cache").source == EP_A
    resolver.register(cand("newcomer", priority=1000))
    assert resolver.resolve("adapter", "cache").source == EP_A
    resolver.set_selections("adapter", {"cache": "p1@code:app"})
    assert resolver.resolve("adapter", "cache") == cand("p1", priority=-5)
    resolver.set_selections("adapter", {})
    assert provider_of(resolver) == "newcomer"
    assert resolver.unregister("adapter", "cache", "newcomer", ("code", "app"))
    assert provider_of(resolver) == top
    assert resolver.explain("adapter", "cache").selected == cand(top, priority=size)


ORIGINS = (
    Source("code", "app"),
    Source("code", "tests"),
    Source("manifest", "acme"),
    Source("entry_point", "oneiric-a", "1.0"),
    Source("entry_point", "oneiric-b", "2.0"),
)
DOMAINS = ("adapter", "service")
KEYS = ("cache", "queue", "store")
PROVIDERS = ("memory", "redis", "local")
TENANTS = (None, "acme", "globex")
REQUIRES: tuple[tuple[str, ...], ...] = ((), ("ttl",))
SELECTION_VALUES = ("ghost", "redis@entry_point:oneiric-a", "memory@code:tests")
#: Many providers for one key: keys larger than a write rescans itself.
WIDE = (("adapter",), ("cache",), tuple(f"p{i}" for i in range(10)) + PROVIDERS)
DEFAULTS = {"code": 10, "manifest": 5, "entry_point": 0}  # the documented defaults


class BlockedVeto:
    """Declared: vetoes candidates whose metadata says ``blocked``."""

    @hookimpl
    @veto_applies_to(metadata_keys=["blocked"])
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: ResolutionRequest
    ) -> str | None:
        return "blocked" if candidate.metadata.get("blocked") else None


class Reference:
    """The rules of §4 written out plainly, with no cache."""

    def __init__(self, stack_order: dict[str, int], vetoes: bool) -> None:
        self.stack_order = stack_order
        self.vetoes = vetoes
        self.regs: dict[tuple[Any, ...], tuple[Candidate, int]] = {}
        self.seq = 0
        self.selections: dict[tuple[str | None, str], dict[str, str]] = {}

    def register(self, c: Candidate) -> None:
        self.seq += 1  # a replacement counts as a new registration
        self.regs.pop(c.identity, None)
        self.regs[c.identity] = (c, self.seq)

    def unregister(self, identity: tuple[Any, ...]) -> bool:
        return self.regs.pop(identity, None) is not None

    def priority(self, c: Candidate) -> int:
        for name in (f"{c.source.kind}:{c.source.name}", c.source.name):
            if name in self.stack_order:
                return self.stack_order[name]
        if c.priority is not None:
            return c.priority
        return DEFAULTS.get(c.source.kind, 0)

    def keys(self, domain: str) -> tuple[str, ...]:
        return tuple(sorted({i[1] for i in self.regs if i[0] == domain}))

    def resolve(
        self, domain: str, key: str, tenant: str | None, require: tuple[str, ...]
    ) -> Candidate | type[Exception]:
        rows = [r for r in self.regs.values() if r[0].domain == domain and r[0].key == key]
        if not rows:
            return NotRegisteredError
        rows.sort(key=lambda r: (self.priority(r[0]), r[0].stack_level, r[1]), reverse=True)

        def eligible(c: Candidate) -> bool:
            if self.vetoes and c.metadata.get("blocked"):
                return False
            return set(require) <= c.capabilities

        selection = self.selections.get((tenant, domain), {}).get(key) if tenant else None
        if selection is None:
            selection = self.selections.get((None, domain), {}).get(key)
        if selection is not None:
            provider, _, origin = selection.partition("@")
            usable = [
                c
                for c, _ in rows
                if c.provider == provider
                and (not origin or f"{c.source.kind}:{c.source.name}" == origin)
                and eligible(c)
            ]
            return usable[0] if usable else SelectionUnavailableError
        for c, _ in rows:
            if eligible(c):
                return c
        return NoEligibleProviderError


class Scenario:
    """One randomized run: the real resolver and the reference, driven by one seeded RNG."""

    def __init__(
        self,
        seed: int,
        stack_order: str,
        vetoes: bool,
        shape: tuple[tuple[str, ...], ...] = (DOMAINS, KEYS, PROVIDERS),
    ) -> None:
        self.rng = random.Random(seed)
        self.domains, self.keys, self.providers = shape
        # a wide key should grow: fewer removals
        self.removal = 0.05 if len(self.providers) > len(PROVIDERS) else 0.2
        parsed = {}
        for part in filter(None, stack_order.split(",")):
            name, _, prio = part.rpartition(":")
            parsed[name] = int(prio)
        hooks = private_hooks(BlockedVeto()) if vetoes else private_hooks()
        self.real = Resolver(stack_order=stack_order, hooks=hooks)
        self.ref = Reference(parsed, vetoes)
        self.vetoes = vetoes
        self.counter = 0
        self.log: list[str] = []
        if self.rng.random() < 0.5:  # registers with and without subscribers differ in code
            self.real.subscribe(lambda changes: None)

    def candidate(self) -> Candidate:
        rng = self.rng
        self.counter += 1
        metadata = {"blocked": True} if self.vetoes and rng.random() < 0.15 else None
        return Candidate(
            rng.choice(self.domains),
            rng.choice(self.keys),
            rng.choice(self.providers),
            "collections:OrderedDict",
            priority=rng.choice([None, None, 0, 5, 7, 10, 12]),
            stack_level=rng.choice([0, 0, 1, 2]),
            capabilities=rng.choice([(), (), ("ttl",), ("ttl", "fast")]),
            source=rng.choice(ORIGINS),
            description=f"r{self.counter}",
            metadata=metadata,
        )

    def existing(self) -> Candidate | None:
        if not self.ref.regs:
            return None
        return self.rng.choice(list(self.ref.regs.values()))[0]

    def write(self) -> None:
        """One register or unregister, applied to both sides."""
        rng = self.rng
        old = self.existing()
        roll = rng.random()
        if old is not None and roll < self.removal:  # unregister
            self.log.append(f"unregister {old!r}")
            assert self.real.unregister(*old.identity[:3], old.identity[3])
            assert self.ref.unregister(old.identity)
            return
        c = self.candidate()
        if old is not None and roll < self.removal + 0.2:  # replace an identity's fields
            c = Candidate(
                old.domain,
                old.key,
                old.provider,
                "collections:OrderedDict",
                priority=c.priority,
                stack_level=c.stack_level,
                capabilities=c.capabilities,
                source=old.source,
                description=c.description,
                metadata=c.metadata,
            )
        self.log.append(f"register {c!r} metadata={dict(c.metadata)}")
        self.real.register(c)
        self.ref.register(c)

    def step(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.70:
            self.write()
        elif roll < 0.82:
            domain = rng.choice(self.domains)
            tenant = rng.choice(TENANTS)
            selections = {
                k: rng.choice(self.providers + SELECTION_VALUES)
                for k in rng.sample(self.keys, rng.randint(0, min(2, len(self.keys))))
            }
            self.log.append(f"set_selections {domain} {selections} tenant={tenant}")
            self.real.set_selections(domain, selections, tenant=tenant)
            if selections:
                self.ref.selections[(tenant, domain)] = selections
            else:
                self.ref.selections.pop((tenant, domain), None)
        elif roll < 0.82 + self.removal / 4:
            origin = rng.choice(ORIGINS).origin
            doomed = [i for i in self.ref.regs if i[3] == origin]
            self.log.append(f"unregister_source {origin}")
            assert self.real.unregister_source(origin) == len(doomed)
            for identity in doomed:
                del self.ref.regs[identity]
        elif roll < 0.95:
            self.log.append("batch")
            with self.real.batch():
                for _ in range(rng.randint(2, 5)):
                    self.write()
        elif roll < 0.97:
            self.log.append("failed batch")
            regs, seq = dict(self.ref.regs), self.ref.seq
            with pytest.raises(RuntimeError), self.real.batch():
                self.write()
                self.write()
                raise RuntimeError("abandon the batch")
            self.ref.regs, self.ref.seq = regs, seq
        else:
            self.log.append("invalidate")
            self.real.invalidate()

    def check(self) -> None:
        rng = self.rng
        cases = [
            (d, k, t, q) for d in self.domains for k in self.keys for t in TENANTS for q in REQUIRES
        ]
        rng.shuffle(cases)
        listing_at = rng.randrange(len(cases) + 1)  # listings before, between or after reads
        for i, (domain, key, tenant, require) in enumerate(cases):
            if i == listing_at:
                self.check_listings()
            self.check_one(domain, key, tenant, require)
        if listing_at == len(cases):
            self.check_listings()

    def context(self, *what: object) -> str:
        return f"{what} after:\n  " + "\n  ".join(self.log[-8:])

    def check_one(
        self, domain: str, key: str, tenant: str | None, require: tuple[str, ...]
    ) -> None:
        expected = self.ref.resolve(domain, key, tenant, require)
        form: Any = require[0] if require and self.rng.random() < 0.5 else require
        kwargs: dict[str, Any] = {}
        if tenant is not None:
            kwargs["tenant"] = tenant
        if require or self.rng.random() < 0.5:
            kwargs["require"] = form
        where = self.context(domain, key, tenant, require)
        if isinstance(expected, Candidate):
            got = self.real.resolve(domain, key, **kwargs)
            assert got == expected, f"resolve: expected {expected!r}, got {got!r} {where}"
            selected = self.real.explain(domain, key, **kwargs).selected
            assert selected == expected, f"explain: expected {expected!r}, got {selected!r} {where}"
            return
        with pytest.raises(OneiricError) as info:
            got = self.real.resolve(domain, key, **kwargs)
            pytest.fail(f"resolve: expected {expected.__name__}, got {got!r} {where}")
        assert type(info.value) is expected, f"resolve raised {info.value!r} {where}"
        if expected is NoEligibleProviderError:
            explanation = self.real.explain(domain, key, **kwargs)
            assert explanation.selected is None, where
        else:
            with pytest.raises(OneiricError) as info:
                self.real.explain(domain, key, **kwargs)
            assert type(info.value) is expected, f"explain raised {info.value!r} {where}"

    def check_listings(self) -> None:
        for domain in self.domains:
            assert self.real.keys(domain) == self.ref.keys(domain), self.context("keys", domain)
        expected: dict[KeyRef, Candidate] = {}
        for domain in self.domains:
            for key in self.keys:
                winner = self.ref.resolve(domain, key, None, ())
                if isinstance(winner, Candidate):
                    expected[(domain, key)] = winner
        assert self.real.active() == expected, self.context("active")
        domain = self.rng.choice(self.domains)
        assert self.real.active(domain) == {
            ref: c for ref, c in expected.items() if ref[0] == domain
        }, self.context("active", domain)


@pytest.mark.parametrize(
    ("seed", "stack_order", "vetoes", "shape"),
    [
        (1, "", False, (DOMAINS, KEYS, PROVIDERS)),
        (2, "", True, (DOMAINS, KEYS, PROVIDERS)),
        (3, "oneiric-a:7,manifest:acme:12", False, (DOMAINS, KEYS, PROVIDERS)),
        (4, "oneiric-a:7,manifest:acme:12", True, (DOMAINS, KEYS, PROVIDERS)),
        (5, "code:tests:11,oneiric-b:10", True, (DOMAINS, KEYS, PROVIDERS)),
        (6, "", True, (DOMAINS, KEYS, PROVIDERS)),
        (7, "", False, WIDE),
        (8, "oneiric-a:7,manifest:acme:12", True, WIDE),
    ],
    ids=["plain", "vetoes", "stack", "stack-vetoes", "stack2-vetoes", "vetoes2", "wide", "wide2"],
)
def test_randomized_against_the_rules(
    seed: int, stack_order: str, vetoes: bool, shape: tuple[tuple[str, ...], ...]
) -> None:
    scenario = Scenario(seed, stack_order, vetoes, shape)
    sizes = []
    for _ in range(300):
        scenario.step()
        scenario.check()
        sizes.append(len(scenario.ref.regs))
    if shape is WIDE:  # the large-key paths were taken
        assert max(sizes) > 40


# ---------------------------------------------------------------------- vetoes


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"source_kinds": [], "metadata_keys": []},
        {"source_kinds": [""]},
        {"source_kinds": ""},
        {"metadata_keys": [""]},
        {"source_kinds": [1]},
        {"metadata_keys": ["requires", None]},
        {"source_kinds": ["manifest"], "metadata_keys": [b"requires"]},
    ],
)
def test_veto_applies_to_refuses_bad_declarations(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"veto_applies_to\("):
        veto_applies_to(**kwargs)


def test_veto_applies_to_returns_the_function() -> None:
    def veto(candidate: Candidate, request: ResolutionRequest) -> str | None:
        return None

    assert veto_applies_to(source_kinds="manifest")(veto) is veto
    assert veto_applies_to(metadata_keys=("requires",))(veto) is veto


def test_undecorated_veto_is_asked_about_every_candidate() -> None:
    policy = Policy("late", "alone")
    r = Resolver(stack_order="", hooks=new_plugin_manager())
    r.hooks.register(policy, name="policy-0:veto")
    r.register(cand("memory"))
    r.register(cand("redis", source=EP_A))
    r.register(cand("acme", source=MANIFEST))
    assert provider_of(r) == "memory"
    assert sorted(policy.asked) == ["acme", "memory", "redis"]
    # registered after the key was resolved: must not be settled as the winner
    r.register(cand("late", priority=100))
    for _ in range(2):
        assert provider_of(r) == "memory"
    assert r.explain("adapter", "cache").ranking[-1].reason == (
        "vetoed by policy-0: banned by policy"
    )
    r.register(cand("alone", key="queue"))  # a new key whose only candidate is vetoed
    with pytest.raises(NoEligibleProviderError, match="banned by policy"):
        r.resolve("adapter", "queue")
    assert "queue" in r.keys("adapter")
    assert ("adapter", "queue") not in r.active()


def test_veto_of_the_reregistered_winner_is_not_skipped() -> None:
    policy = Policy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    assert provider_of(r) == "redis"
    policy.banned.add("redis")  # a pure policy would change only with a new candidate...
    r.register(cand("redis", priority=60))  # ...but the rewrite is asked about anyway
    assert provider_of(r) == "memory"


def test_declared_veto_is_asked_only_about_its_source_kinds() -> None:
    policy = ManifestPolicy("acme")
    r = Resolver(stack_order="", hooks=new_plugin_manager())
    r.hooks.register(policy, name="policy-0:veto")
    r.register(cand("memory"))
    assert provider_of(r) == "memory"
    r.explain("adapter", "cache")
    assert policy.asked == []
    r.register(cand("acme", source=MANIFEST, priority=100))
    assert provider_of(r) == "memory"
    assert policy.asked == ["acme"]
    r.register(cand("redis", source=EP_A, priority=50))  # settled without asking
    assert provider_of(r) == "redis"
    r.register(cand("other", source=Source("manifest", "other"), priority=200))
    assert provider_of(r) == "other"
    ex = r.explain("adapter", "cache")
    assert ex.ranking[-1].reason == "vetoed by policy-0: not in the manifest allow-list"
    assert set(policy.asked) == {"acme", "other"}  # never a code or entry-point candidate


def test_declared_metadata_key_veto_is_asked_about_any_kind() -> None:
    class FlagPolicy:
        def __init__(self) -> None:
            self.asked: list[str] = []

        @hookimpl
        @veto_applies_to(metadata_keys=["flag"])
        def oneiric_candidate_veto(
            self, candidate: Candidate, request: ResolutionRequest
        ) -> str | None:
            self.asked.append(candidate.provider)
            return "flagged" if candidate.metadata.get("flag") else None

    policy = FlagPolicy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    assert provider_of(r) == "memory"
    r.register(cand("redis", priority=50, metadata={"flag": True}))
    assert provider_of(r) == "memory"
    r.register(cand("local", priority=40, metadata={"flag": False}))
    assert provider_of(r) == "local"
    assert set(policy.asked) == {"redis", "local"}


def test_veto_plugin_registered_after_first_resolve_takes_effect_on_invalidate() -> None:
    r = Resolver(stack_order="", hooks=new_plugin_manager())
    r.register(cand("memory"))
    r.register(cand("redis", priority=50, capabilities={"ttl"}))
    r.register(cand("acme", source=MANIFEST, priority=90))
    r.set_selections("adapter", {"cache": "redis"}, tenant="acme")
    assert provider_of(r) == "acme"
    assert provider_of(r, tenant="acme") == "redis"
    assert provider_of(r, require="ttl") == "redis"
    r.hooks.register(Policy("redis"), name="policy-0:veto")
    r.hooks.register(ManifestPolicy("acme"), name="policy-1:veto")
    r.invalidate()
    assert provider_of(r) == "memory"
    with pytest.raises(SelectionUnavailableError, match="banned by policy"):
        r.resolve("adapter", "cache", tenant="acme")
    with pytest.raises(NoEligibleProviderError):
        r.resolve("adapter", "cache", require="ttl")
    assert r.active() == {("adapter", "cache"): cand("memory")}


def test_builtin_requires_veto_on_candidates_registered_after_resolve() -> None:
    r = Resolver(stack_order="", hooks=new_plugin_manager())
    r.register(cand("memory"))
    assert provider_of(r) == "memory"
    r.register(cand("redis", priority=100, metadata={"requires": [MISSING]}))
    for _ in range(2):
        assert provider_of(r) == "memory"
    reason = r.explain("adapter", "cache").ranking[-1].reason
    assert reason == f"vetoed by oneiric-core: needs {MISSING}, which is not installed"
    r.register(cand("json", priority=90, metadata={"requires": ["json"]}))  # installed
    assert provider_of(r) == "json"
    # the winner itself re-registered with a missing requirement must not be settled
    r.register(cand("json", priority=95, metadata={"requires": ["json", MISSING]}))
    assert provider_of(r) == "memory"
    # a new key whose only candidate needs a missing module
    r.register(cand("redis", key="queue", metadata={"requires": MISSING}))
    with pytest.raises(NoEligibleProviderError, match=MISSING):
        r.resolve("adapter", "queue")
    assert r.active() == {("adapter", "cache"): cand("memory")}


def test_builtin_requires_veto_in_a_batch_and_for_selections() -> None:
    r = Resolver(stack_order="", hooks=new_plugin_manager())
    with r.batch():
        r.register(cand("memory"))
        r.register(cand("redis", priority=100, metadata={"requires": [MISSING]}))
    assert provider_of(r) == "memory"
    r.set_selections("adapter", {"cache": "redis"}, tenant="acme")
    with pytest.raises(SelectionUnavailableError, match=MISSING):
        r.resolve("adapter", "cache", tenant="acme")


# -------------------------------------------------------------------- listings


def test_keys_sorted_and_exact_through_writes(resolver: Resolver) -> None:
    rng = random.Random(7)
    present: set[str] = set()

    def check() -> None:
        assert resolver.keys("adapter") == tuple(sorted(present))
        assert resolver.keys("adapter") == tuple(sorted(present))  # the cached tuple

    names = [f"k{i:03d}" for i in range(64)]
    rng.shuffle(names)
    for name in names:
        resolver.register(cand("memory", key=name))
        present.add(name)
    resolver.register(cand("memory", key="other", domain="service"))
    check()  # first listing
    for name in ("a-first", "zz-last", "k031x"):  # single adds
        resolver.register(cand("memory", key=name))
        present.add(name)
        check()
    resolver.register(cand("redis", key="k010"))  # a second candidate: no new key
    check()
    assert resolver.unregister("adapter", "k010", "memory", ("code", "app"))
    check()  # a candidate of the key remains
    assert resolver.unregister("adapter", "k010", "redis", ("code", "app"))
    present.discard("k010")
    check()  # the last candidate of the key
    for name in ("a-first", "k000", "k063"):
        assert resolver.unregister("adapter", name, "memory", ("code", "app"))
        present.discard(name)
        check()
    # added and removed again between two listings; removed and added again
    resolver.register(cand("memory", key="k500"))
    assert resolver.unregister("adapter", "k500", "memory", ("code", "app"))
    assert resolver.unregister("adapter", "k020", "memory", ("code", "app"))
    resolver.register(cand("memory", key="k020"))
    check()
    # unregister_source of an origin owning some keys outright and sharing others
    for name in ("k001", "k002", "k003", "e-only"):
        resolver.register(cand("ep", key=name, source=EP_A))
    present.add("e-only")
    check()
    assert resolver.unregister_source(EP_A.origin) == 4
    present.discard("e-only")
    check()
    # a batch changing more than 1/16 of the keys: the re-sort path
    with resolver.batch():
        for i in range(20):
            resolver.register(cand("memory", key=f"b{i:02d}"))
            present.add(f"b{i:02d}")
        for name in ("k004", "k005"):
            resolver.unregister("adapter", name, "memory", ("code", "app"))
            present.discard(name)
    check()
    # then a patch again, and removals of many
    resolver.register(cand("memory", key="c-single"))
    present.add("c-single")
    check()
    assert resolver.unregister_source(("code", "app")) > 0
    present.clear()
    check()
    assert resolver.keys("service") == ()
    assert resolver.keys("nowhere") == ()
    resolver.register(cand("memory", key="again"))
    present.add("again")
    check()


def test_keys_of_one_domain_unaffected_by_another(resolver: Resolver) -> None:
    resolver.register(cand("memory", key="b"))
    resolver.register(cand("memory", key="a", domain="service"))
    assert resolver.keys("adapter") == ("b",)
    assert resolver.keys("service") == ("a",)
    resolver.register(cand("memory", key="a"))
    resolver.register(cand("memory", key="c", domain="service"))
    assert resolver.keys("adapter") == ("a", "b")
    assert resolver.keys("service") == ("a", "c")


def assert_active(r: Resolver, refs: list[KeyRef], expected: dict[KeyRef, str]) -> None:
    """``active()`` first (its own refresh), then against ``resolve`` of every key."""
    active = r.active()
    assert {ref: c.provider for ref, c in active.items()} == expected
    resolved: dict[KeyRef, Candidate] = {}
    for ref in refs:
        try:
            resolved[ref] = r.resolve(*ref)
        except OneiricError:
            pass
    assert active == resolved
    for domain in {d for d, _ in refs}:
        assert r.active(domain) == {ref: c for ref, c in resolved.items() if ref[0] == domain}


def test_active_matches_resolve_through_writes() -> None:
    policy = Policy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    refs = [(d, k) for d in ("adapter", "service", "queue") for k in ("cache", "db", "mail")]
    assert r.active() == {}
    r.register(cand("memory"))
    r.register(cand("greeter", key="db", domain="service"))
    expected = {("adapter", "cache"): "memory", ("service", "db"): "greeter"}
    assert_active(r, refs, expected)
    r.register(cand("redis", priority=50))
    expected[("adapter", "cache")] = "redis"
    assert_active(r, refs, expected)
    r.register(cand("worse", priority=1))
    assert_active(r, refs, expected)
    assert r.unregister("adapter", "cache", "redis", ("code", "app"))
    expected[("adapter", "cache")] = "memory"
    assert_active(r, refs, expected)
    r.set_selections("adapter", {"cache": "ghost"})
    del expected[("adapter", "cache")]
    assert_active(r, refs, expected)
    r.set_selections("adapter", {"cache": "worse"})
    expected[("adapter", "cache")] = "worse"
    assert_active(r, refs, expected)
    r.set_selections("adapter", {"cache": "memory"}, tenant="acme")  # tenants don't count
    assert_active(r, refs, expected)
    r.set_selections("adapter", {})
    expected[("adapter", "cache")] = "memory"
    assert_active(r, refs, expected)
    r.invalidate()
    assert_active(r, refs, expected)
    policy.banned.add("memory")
    r.invalidate()
    expected[("adapter", "cache")] = "worse"
    assert_active(r, refs, expected)
    policy.banned.add("worse")
    r.invalidate()
    del expected[("adapter", "cache")]  # every candidate vetoed
    assert_active(r, refs, expected)
    policy.banned.clear()
    r.invalidate()
    with r.batch():
        for d, k in refs:
            r.register(cand("batched", key=k, domain=d, priority=20))
        assert r.unregister("service", "db", "greeter", ("code", "app"))
    expected = dict.fromkeys(refs, "batched")
    assert_active(r, refs, expected)
    assert r.unregister("queue", "mail", "batched", ("code", "app"))  # the key's last
    del expected[("queue", "mail")]
    assert_active(r, refs, expected)
    assert r.unregister_source(("code", "app")) == 10  # 8 batched, memory, worse
    assert_active(r, refs, {})
    assert r.domains() == ()


def test_active_of_one_domain_is_refreshed_independently(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("greeter", key="db", domain="service"))
    assert resolver.active("service") == {("service", "db"): cand("greeter", "db", "service")}
    resolver.register(cand("redis", priority=50))
    resolver.register(cand("other", key="db", domain="service", priority=50))
    assert resolver.active("adapter") == {("adapter", "cache"): cand("redis", priority=50)}
    assert {ref: c.provider for ref, c in resolver.active().items()} == {
        ("adapter", "cache"): "redis",
        ("service", "db"): "other",
    }


def test_listings_exact_after_concurrent_writes_and_reads() -> None:
    """Smoke: one writer, two readers; afterwards the listings match the final state."""
    r = Resolver(stack_order="", hooks=private_hooks())
    ref = Reference({}, vetoes=False)
    domains = ("adapter", "service")
    keys = [f"k{i}" for i in range(12)]
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        rng = random.Random(11)

        def new(i: int) -> Candidate:
            return cand(
                rng.choice(["a", "b", "c"]),
                rng.choice(keys),
                rng.choice(domains),
                priority=rng.randint(0, 9),
                description=str(i),
            )

        try:
            for i in range(600):
                roll = rng.random()
                if ref.regs and roll < 0.3:
                    identity = rng.choice(sorted(ref.regs))
                    assert r.unregister(*identity[:3], identity[3])
                    ref.unregister(identity)
                elif roll < 0.35:
                    with r.batch():
                        for _ in range(5):
                            c = new(i)
                            r.register(c)
                            ref.register(c)
                elif roll < 0.38:
                    domain = rng.choice(domains)
                    selections = {rng.choice(keys): rng.choice(["a", "ghost"])}
                    r.set_selections(domain, selections)
                    ref.selections[(None, domain)] = selections
                else:
                    c = new(i)
                    r.register(c)
                    ref.register(c)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader(index: int) -> None:
        rng = random.Random(index)
        try:
            for _ in range(20_000):
                if done.is_set():
                    break
                domain = rng.choice(domains)
                try:
                    r.resolve(domain, rng.choice(keys))
                except OneiricError:
                    pass
                r.active(domain if index else None)
                listed = r.keys(domain)
                assert list(listed) == sorted(set(listed))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    # quiescent: exact
    expected: dict[KeyRef, Candidate] = {}
    for domain in domains:
        assert r.keys(domain) == ref.keys(domain)
        for key in keys:
            winner = ref.resolve(domain, key, None, ())
            if isinstance(winner, Candidate):
                expected[(domain, key)] = winner
    assert r.active() == expected
    for domain in domains:
        assert r.active(domain) == {k: c for k, c in expected.items() if k[0] == domain}


# ---------------------------------------------------------------- active() views


def test_an_active_view_does_not_change_after_later_writes(resolver: Resolver) -> None:
    for i in range(5):
        resolver.register(cand("memory", key=f"k{i}"))
    before = resolver.active()
    frozen = dict(before)
    resolver.register(cand("redis", key="k0", priority=50))
    resolver.unregister("adapter", "k1", "memory", ("code", "app"))
    resolver.register(cand("memory", key="k9"))
    after = resolver.active()
    assert dict(before) == frozen and len(before) == 5
    assert after[("adapter", "k0")].provider == "redis"
    assert ("adapter", "k1") not in after and ("adapter", "k9") in after
    assert len(after) == 5 == len(list(after))


def test_many_changes_fold_into_a_new_base(resolver: Resolver) -> None:
    """More changes than 1/16 of the index: the delta is folded (a new base), still exact."""
    for i in range(100):
        resolver.register(cand("memory", key=f"k{i}"))
    first = resolver.active("adapter")
    for i in range(90):
        resolver.register(cand("redis", key=f"k{i}", priority=50))
    for i in range(90, 95):
        resolver.unregister("adapter", f"k{i}", "memory", ("code", "app"))
    view = resolver.active("adapter")
    expected = {("adapter", f"k{i}"): resolver.resolve("adapter", f"k{i}") for i in range(90)}
    expected |= {("adapter", f"k{i}"): resolver.resolve("adapter", f"k{i}") for i in range(95, 100)}
    assert view == expected and len(view) == 95
    assert len(first) == 100 and all(c.provider == "memory" for c in first.values())


def test_active_view_is_a_read_only_mapping(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    view = resolver.active()
    assert view == {("adapter", "cache"): cand("memory")}
    assert view.get(("adapter", "nope")) is None and view.get("adapter") is None
    with pytest.raises(KeyError):
        view[("service", "cache")]
    with pytest.raises(TypeError):
        view[("adapter", "cache")] = cand("redis")  # type: ignore[index]
    assert "memory" in repr(view)
    assert dict(view) == {("adapter", "cache"): cand("memory")}


def test_invalidate_during_a_first_listing_keeps_no_stale_index(resolver: Resolver) -> None:
    """A veto policy change (invalidate) while the index is first built: the next call rebuilds."""
    for i in range(3):
        resolver.register(cand("memory", key=f"k{i}"))
    original = resolver.resolve
    calls = 0

    def resolve_and_invalidate(domain: str, key: str, *args: Any) -> Candidate:
        nonlocal calls
        calls += 1
        if calls == 1:
            resolver.invalidate()
        return original(domain, key, *args)

    resolver.resolve = resolve_and_invalidate  # type: ignore[method-assign]
    try:
        resolver.active("adapter")
    finally:
        resolver.resolve = original  # type: ignore[method-assign]
    resolver.register(cand("redis", key="k1", priority=50))
    assert resolver.active("adapter")[("adapter", "k1")].provider == "redis"
