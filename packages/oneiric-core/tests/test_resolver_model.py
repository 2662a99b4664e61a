"""The resolver against a small naive reference, and under thread contention.

The reference re-derives every answer from the documented rules with no cache,
so any caching, invalidation or batching bug in the real resolver shows up as
a disagreement after some sequence of writes.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from oneiric.core import (
    DEFAULT_PRIORITIES,
    Candidate,
    NoEligibleProviderError,
    NotRegisteredError,
    Resolver,
    SelectionUnavailableError,
    Source,
    hookimpl,
    new_plugin_manager,
)

DOMAINS = ("adapter", "service")
KEYS = ("cache", "queue")
PROVIDERS = ("memory", "redis", "local")
ORIGINS = (("code", "app"), ("entry_point", "oneiric-a"), ("manifest", "acme"))
CAPS = ("ttl", "fast")
TENANTS = (None, "acme")
REQUIRES: tuple[tuple[str, ...], ...] = ((), ("ttl",), ("ttl", "fast"))


class Policy:
    def __init__(self) -> None:
        self.banned: set[str] = set()

    @hookimpl
    def oneiric_candidate_veto(self, candidate: Candidate, request: Any) -> str | None:
        return "banned" if candidate.provider in self.banned else None


class Reference:
    """The documented rules, implemented as plainly as possible."""

    def __init__(self) -> None:
        self.regs: dict[tuple[Any, ...], tuple[Candidate, int]] = {}
        self.seq = 0
        self.selections: dict[tuple[str | None, str], dict[str, str]] = {}
        self.banned: set[str] = set()

    def register(self, c: Candidate) -> None:
        self.seq += 1
        self.regs.pop(c.identity, None)
        self.regs[c.identity] = (c, self.seq)

    @staticmethod
    def prio(c: Candidate) -> int:
        if c.priority is not None:
            return c.priority
        return DEFAULT_PRIORITIES.get(c.source.kind, 0)

    def ordered(self, domain: str, key: str) -> list[tuple[Candidate, int]]:
        rows = [r for r in self.regs.values() if r[0].domain == domain and r[0].key == key]
        return sorted(rows, key=lambda r: (self.prio(r[0]), r[0].stack_level, r[1]), reverse=True)

    def resolve(
        self, domain: str, key: str, tenant: str | None, require: tuple[str, ...]
    ) -> tuple[str, Any]:
        rows = self.ordered(domain, key)
        if not rows:
            return ("error", NotRegisteredError)

        def excluded(c: Candidate) -> bool:
            return c.provider in self.banned or not set(require) <= c.capabilities

        selection = None
        if tenant is not None:
            selection = self.selections.get((tenant, domain), {}).get(key)
        if selection is None:
            selection = self.selections.get((None, domain), {}).get(key)
        eligible = [r for r in rows if not excluded(r[0])]
        if selection is not None:
            provider, _, origin = selection.partition("@")
            matches = [
                r
                for r in rows
                if r[0].provider == provider
                and (not origin or f"{r[0].source.kind}:{r[0].source.name}" == origin)
            ]
            usable = [r for r in matches if not excluded(r[0])]
            if not usable:
                return ("error", SelectionUnavailableError)
            winner = usable[0]
        elif eligible:
            winner = eligible[0]
        else:
            return ("error", NoEligibleProviderError)
        rest = [r for r in eligible if r is not winner] + [r for r in rows if excluded(r[0])]
        order = [(r[0].provider, r[0].source.origin) for r in [winner, *rest]]
        return ("ok", order)


candidates = st.builds(
    lambda d, k, p, o, prio, stack, caps: Candidate(
        d,
        k,
        p,
        "collections:OrderedDict",
        priority=prio,
        stack_level=stack,
        capabilities=caps,
        source=Source(*o),
    ),
    st.sampled_from(DOMAINS),
    st.sampled_from(KEYS),
    st.sampled_from(PROVIDERS),
    st.sampled_from(ORIGINS),
    st.sampled_from([None, 0, 5, 10]),
    st.sampled_from([0, 1]),
    st.frozensets(st.sampled_from(CAPS)),
)
selection_values = st.sampled_from(
    [*PROVIDERS, "redis@entry_point:oneiric-a", "memory@code:app", "ghost"]
)


class ResolverMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy = Policy()
        hooks = new_plugin_manager(builtins=False)
        hooks.register(self.policy, name="policy:veto")
        self.real = Resolver(stack_order="", hooks=hooks)
        self.ref = Reference()

    @rule(c=candidates)
    def register(self, c: Candidate) -> None:
        self.real.register(c)
        self.ref.register(c)

    @rule(cs=st.lists(candidates, min_size=1, max_size=4))
    def register_batch(self, cs: list[Candidate]) -> None:
        with self.real.batch():
            for c in cs:
                self.real.register(c)
        for c in cs:
            self.ref.register(c)

    @rule(cs=st.lists(candidates, min_size=1, max_size=4), drop=st.integers(0, 3))
    def mixed_batch(self, cs: list[Candidate], drop: int) -> None:
        """Registrations and a removal in one batch publish as one consistent state."""
        victim = cs[drop % len(cs)].identity
        with self.real.batch():
            for c in cs:
                self.real.register(c)
            self.real.unregister(*victim[:3], victim[3])
        for c in cs:
            self.ref.register(c)
        self.ref.regs.pop(victim, None)

    @rule(
        d=st.sampled_from(DOMAINS),
        k=st.sampled_from(KEYS),
        p=st.sampled_from(PROVIDERS),
        o=st.sampled_from(ORIGINS),
    )
    def unregister(self, d: str, k: str, p: str, o: tuple[str, str]) -> None:
        existed = (d, k, p, o) in self.ref.regs
        assert self.real.unregister(d, k, p, o) == existed
        self.ref.regs.pop((d, k, p, o), None)

    @rule(o=st.sampled_from(ORIGINS))
    def unregister_source(self, o: tuple[str, str]) -> None:
        doomed = [i for i in self.ref.regs if i[3] == o]
        assert self.real.unregister_source(o) == len(doomed)
        for i in doomed:
            del self.ref.regs[i]

    @rule(
        d=st.sampled_from(DOMAINS),
        tenant=st.sampled_from(TENANTS),
        sel=st.dictionaries(st.sampled_from(KEYS), selection_values, max_size=2),
    )
    def set_selections(self, d: str, tenant: str | None, sel: dict[str, str]) -> None:
        self.real.set_selections(d, sel, tenant=tenant)
        self.ref.selections[(tenant, d)] = dict(sel)

    @rule(banned=st.frozensets(st.sampled_from(PROVIDERS), max_size=2))
    def change_policy(self, banned: frozenset[str]) -> None:
        self.policy.banned = set(banned)
        self.ref.banned = set(banned)
        self.real.invalidate()

    @invariant()
    def agrees_with_reference(self) -> None:
        for d in DOMAINS:
            for k in KEYS:
                for tenant in TENANTS:
                    for require in REQUIRES:
                        expected = self.ref.resolve(d, k, tenant, require)
                        try:
                            ex = self.real.explain(d, k, tenant=tenant, require=require)
                            winner = self.real.resolve(d, k, tenant=tenant, require=require)
                        except (NotRegisteredError, SelectionUnavailableError) as exc:
                            assert expected[0] == "error", (d, k, tenant, require, exc)
                            assert type(exc) is expected[1], (type(exc), expected)
                            continue
                        if expected[0] == "error":
                            assert expected[1] is NoEligibleProviderError
                            assert ex.selected is None
                            continue
                        got = [
                            (r.candidate.provider, r.candidate.source.origin) for r in ex.ranking
                        ]
                        assert got == expected[1], (d, k, tenant, require)
                        assert (winner.provider, winner.source.origin) == expected[1][0]
                        assert ex.ranking[0].selected


ResolverMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestResolverAgainstReference = ResolverMachine.TestCase


def test_readers_never_see_an_older_state_than_already_seen() -> None:
    """Writers raise the winner's priority step by step; readers must see it monotonic."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        r = Resolver(stack_order="")
        r.register(Candidate("adapter", "cache", "v0", "collections:OrderedDict", priority=0))
        stop = threading.Event()
        violations: list[tuple[int, int]] = []
        reads = [0] * 4

        def reader(index: int) -> None:
            last = -1
            while not stop.is_set():
                seen = r.resolve("adapter", "cache").priority
                assert seen is not None
                if seen < last:
                    violations.append((last, seen))
                last = seen
                reads[index] += 1
                if index % 2:  # half the readers also explain, exercising fills
                    ranking = r.explain("adapter", "cache").ranking
                    if ranking[0].priority < last:
                        violations.append((last, ranking[0].priority))

        def writer() -> None:
            for version in range(1, 400):
                provider = f"v{version % 5}"  # replacements and new identities
                r.register(
                    Candidate(
                        "adapter", "cache", provider, "collections:OrderedDict", priority=version
                    )
                )
                if version % 50 == 0:
                    r.invalidate()
            stop.set()

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        w = threading.Thread(target=writer)
        w.start()
        w.join(timeout=120)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not w.is_alive()
        assert violations == []
        assert all(count > 0 for count in reads)
        assert r.resolve("adapter", "cache").priority == 399
    finally:
        sys.setswitchinterval(old)
