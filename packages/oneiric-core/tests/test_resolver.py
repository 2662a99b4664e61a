"""Resolver behaviour: precedence, explanations, errors, caching and notifications."""

from __future__ import annotations

import json
import logging
from typing import Any

import pluggy
import pytest

from oneiric.core import (
    DEFAULT_PRIORITIES,
    Candidate,
    ConfigError,
    InvalidCandidateError,
    NoEligibleProviderError,
    NotRegisteredError,
    OneiricError,
    ResolutionRequest,
    Resolver,
    SelectionUnavailableError,
    Source,
    hookimpl,
    new_plugin_manager,
)

EP_A = Source("entry_point", "oneiric-a", "1.0")
EP_B = Source("entry_point", "oneiric-b", "2.0")
MANIFEST = Source("manifest", "acme-prod", "7", detail="https://example.invalid/m.json")


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


# ------------------------------------------------------------------ precedence


def test_priority_beats_stack_level_and_registration(resolver: Resolver) -> None:
    resolver.register(cand("low", priority=1, stack_level=9))
    resolver.register(cand("high", priority=5))
    resolver.register(cand("newest", priority=1))
    assert resolver.resolve("adapter", "cache").provider == "high"
    ex = resolver.explain("adapter", "cache")
    assert [r.candidate.provider for r in ex.ranking] == ["high", "low", "newest"]
    reasons = {r.candidate.provider: r.reason for r in ex.ranking}
    assert reasons == {
        "high": "won on priority 5 > 1",
        "low": "lost on priority 1 < 5",
        "newest": "lost on priority 1 < 5",
    }


def test_stack_level_breaks_equal_priority(resolver: Resolver) -> None:
    resolver.register(cand("a", priority=3, stack_level=2))
    resolver.register(cand("b", priority=3, stack_level=1))
    ex = resolver.explain("adapter", "cache")
    assert ex.selected is not None and ex.selected.provider == "a"
    assert ex.ranking[0].reason == "won on stack_level 2 > 1"
    assert ex.ranking[1].reason == "lost on stack_level 1 < 2"


def test_registration_order_most_recent_wins_and_is_explained(resolver: Resolver) -> None:
    resolver.register(cand("first"))
    resolver.register(cand("second"))
    ex = resolver.explain("adapter", "cache")
    assert ex.ranking[0].candidate.provider == "second"
    assert ex.ranking[0].reason == "tie broken by registration order"
    assert ex.ranking[1].reason.startswith("lost on registration order")
    assert "registration order" in ex.why


def test_reregistration_counts_as_new_registration(resolver: Resolver) -> None:
    resolver.register(cand("first"))
    resolver.register(cand("second"))
    resolver.register(cand("first", description="replaced"))
    assert resolver.resolve("adapter", "cache").provider == "first"
    assert resolver.resolve("adapter", "cache").description == "replaced"
    assert len(resolver.candidates("adapter", "cache")) == 2  # replaced, not duplicated


def test_same_provider_from_two_origins_are_distinct_candidates(resolver: Resolver) -> None:
    resolver.register(cand("redis", source=EP_A, priority=1))
    resolver.register(cand("redis", source=EP_B, priority=2))
    found = resolver.candidates("adapter", "cache")
    assert [c.source.name for c in found] == ["oneiric-b", "oneiric-a"]


def test_default_priorities_per_source_kind(resolver: Resolver) -> None:
    resolver.register(cand("ep", source=EP_A))
    resolver.register(cand("manifest", source=MANIFEST))
    resolver.register(cand("code"))
    resolver.register(cand("plugin-kind", source=Source("vault", "x")))
    ex = resolver.explain("adapter", "cache")
    got = {r.candidate.provider: (r.priority, r.priority_origin) for r in ex.ranking}
    assert got == {
        "code": (DEFAULT_PRIORITIES["code"], "default"),
        "manifest": (DEFAULT_PRIORITIES["manifest"], "default"),
        "ep": (DEFAULT_PRIORITIES["entry_point"], "default"),
        "plugin-kind": (0, "default"),
    }
    assert ex.selected is not None and ex.selected.provider == "code"


def test_operator_stack_order_overrides_declared_priority() -> None:
    r = Resolver(stack_order="oneiric-a:100, manifest:acme-prod:50", hooks=private_hooks())
    r.register(cand("declared", priority=90))
    r.register(cand("ep", source=EP_A, priority=1))
    r.register(cand("m", source=MANIFEST))
    ex = r.explain("adapter", "cache")
    got = [(x.candidate.provider, x.priority, x.priority_origin) for x in ex.ranking]
    assert got == [
        ("ep", 100, "stack_order"),
        ("declared", 90, "declared"),
        ("m", 50, "stack_order"),
    ]


def test_stack_order_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_STACK_ORDER", "oneiric-b:7")
    r = Resolver(hooks=private_hooks())
    assert r.stack_order == {"oneiric-b": 7}


@pytest.mark.parametrize("value", ["nocolon", "x:notanumber", ":5"])
def test_invalid_stack_order_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="ONEIRIC_STACK_ORDER") as info:
        Resolver(stack_order=value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ selections


def test_explicit_selection_beats_priority(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", priority=100))
    resolver.set_selections("adapter", {"cache": "memory"})
    ex = resolver.explain("adapter", "cache")
    assert ex.selected is not None and ex.selected.provider == "memory"
    assert ex.ranking[0].reason == "selected"
    assert ex.ranking[1].reason == "not selected (global selection is 'memory')"


def test_tenant_selection_over_global_and_fallback_to_global(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis"))
    resolver.set_selections("adapter", {"cache": "memory"})
    resolver.set_selections("adapter", {"cache": "redis"}, tenant="acme")
    assert resolver.resolve("adapter", "cache").provider == "memory"
    assert resolver.resolve("adapter", "cache", tenant="acme").provider == "redis"
    assert resolver.resolve("adapter", "cache", tenant="other").provider == "memory"
    ex = resolver.explain("adapter", "cache", tenant="other")
    assert ex.tenant == "other" and ex.selected is not None and ex.selected.provider == "memory"
    assert resolver.explain("adapter", "cache", tenant="acme").as_dict()["tenant"] == "acme"


def test_selection_of_unregistered_provider_raises_naming_registered(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.set_selections("adapter", {"cache": "redis"})  # accepted: may load later
    with pytest.raises(SelectionUnavailableError) as info:
        resolver.resolve("adapter", "cache")
    message = str(info.value)
    assert "'redis'" in message and "not registered" in message and "memory" in message
    assert "\n" not in message
    with pytest.raises(SelectionUnavailableError):
        resolver.explain("adapter", "cache")
    resolver.register(cand("redis"))  # the plugin arrives later
    assert resolver.resolve("adapter", "cache").provider == "redis"


def test_selection_with_origin_qualifier(resolver: Resolver) -> None:
    resolver.register(cand("redis", source=EP_A, priority=1))
    resolver.register(cand("redis", source=EP_B, priority=9))
    resolver.set_selections("adapter", {"cache": "redis@entry_point:oneiric-a"})
    assert resolver.resolve("adapter", "cache").source.name == "oneiric-a"
    resolver.set_selections("adapter", {"cache": "redis@manifest:nope"})
    with pytest.raises(SelectionUnavailableError, match="not registered from manifest:nope"):
        resolver.resolve("adapter", "cache")


@pytest.mark.parametrize("bad", ["redis@", "redis@kind", "Bad Name", "x@:y"])
def test_malformed_selection_values_are_config_errors(resolver: Resolver, bad: str) -> None:
    with pytest.raises((ConfigError, InvalidCandidateError)):
        resolver.set_selections("adapter", {"cache": bad})
    assert resolver.selections("adapter") == {}


def test_selection_of_incapable_provider_raises(resolver: Resolver) -> None:
    resolver.register(cand("memory", capabilities={"lru"}))
    resolver.register(cand("redis", capabilities={"ttl"}))
    resolver.set_selections("adapter", {"cache": "memory"})
    with pytest.raises(SelectionUnavailableError, match="lacks capability ttl"):
        resolver.resolve("adapter", "cache", require=["ttl"])


def test_require_filters_and_explains(resolver: Resolver) -> None:
    resolver.register(cand("memory", priority=9, capabilities={"lru"}))
    resolver.register(cand("redis", priority=1, capabilities={"ttl", "distributed"}))
    assert resolver.resolve("adapter", "cache", require=["ttl"]).provider == "redis"
    ex = resolver.explain("adapter", "cache", require=("ttl", "distributed"))
    assert ex.require == ("ttl", "distributed")
    assert ex.ranking[1].reason == "lacks capability ttl" or ex.ranking[1].reason.startswith(
        "lacks capabilities"
    )
    with pytest.raises(NoEligibleProviderError) as info:
        resolver.resolve("adapter", "cache", require=["persistent"])
    assert isinstance(info.value, NotRegisteredError)
    assert "lacks capability persistent" in str(info.value)


# ---------------------------------------------------------------------- vetoes


class Policy:
    def __init__(self) -> None:
        self.banned: set[str] = set()
        self.requests: list[ResolutionRequest] = []

    @hookimpl
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: ResolutionRequest
    ) -> str | None:
        self.requests.append(request)
        return "banned by policy" if candidate.provider in self.banned else None


def test_veto_excludes_candidate_and_is_explained() -> None:
    policy = Policy()
    policy.banned.add("redis")
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    ex = r.explain("adapter", "cache")
    assert ex.selected is not None and ex.selected.provider == "memory"
    assert ex.ranking[-1].reason == "vetoed by policy-0: banned by policy"
    assert ex.as_dict()["candidates"][-1]["selected"] is False
    r.set_selections("adapter", {"cache": "redis"})
    with pytest.raises(SelectionUnavailableError, match="vetoed by policy-0: banned by policy"):
        r.resolve("adapter", "cache")


def test_vetoes_run_at_fill_not_per_call_and_invalidate_recomputes() -> None:
    policy = Policy()
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    for _ in range(100):
        assert r.resolve("adapter", "cache").provider == "redis"
    assert len(policy.requests) == 2  # one fill, two candidates
    policy.banned.add("redis")
    assert r.resolve("adapter", "cache").provider == "redis"  # cached until invalidate()
    seen: list[frozenset[tuple[str, str]]] = []
    r.subscribe(seen.append)
    r.invalidate()
    assert r.resolve("adapter", "cache").provider == "memory"
    assert seen == [frozenset({("adapter", "cache")})]


def test_every_candidate_vetoed_is_no_eligible_provider() -> None:
    policy = Policy()
    policy.banned.update({"memory", "redis"})
    r = Resolver(stack_order="", hooks=private_hooks(policy))
    r.register(cand("memory"))
    r.register(cand("redis"))
    with pytest.raises(NoEligibleProviderError, match="vetoed by policy-0"):
        r.resolve("adapter", "cache")
    assert r.explain("adapter", "cache").selected is None


def test_broken_veto_hook_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def oneiric_candidate_veto(self, candidate: Candidate, request: Any) -> str | None:
            raise RuntimeError("policy backend down")

    r = Resolver(stack_order="", hooks=private_hooks(Broken()))
    r.register(cand("memory"))
    with (
        caplog.at_level(logging.ERROR, logger="oneiric"),
        pytest.raises(NoEligibleProviderError, match="veto hook raised RuntimeError"),
    ):
        r.resolve("adapter", "cache")


# -------------------------------------------------------------- explain shape


def test_explanation_as_dict_shape_is_json_serializable(resolver: Resolver) -> None:
    resolver.register(cand("memory", source=EP_A))
    resolver.register(cand("redis", source=MANIFEST, priority=3, capabilities={"ttl"}))
    data = resolver.explain("adapter", "cache").as_dict()
    json.dumps(data)
    assert set(data) == {"domain", "key", "tenant", "require", "selected", "why", "candidates"}
    assert data["selected"] == "redis"
    first = data["candidates"][0]
    assert set(first) == {
        "provider",
        "source",
        "priority",
        "priority_origin",
        "stack_level",
        "registered",
        "selected",
        "reason",
    }
    assert first["source"] == "manifest:acme-prod==7"
    assert data["candidates"][1]["source"] == "entry_point:oneiric-a==1.0"
    assert [c["selected"] for c in data["candidates"]] == [True, False]


def test_explain_of_cached_key_returns_same_object(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    assert resolver.explain("adapter", "cache") is resolver.explain("adapter", "cache")


def test_str_of_explanation_is_readable(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    text = str(resolver.explain("adapter", "cache"))
    assert text.startswith("adapter/cache: 'memory' is the only candidate")
    assert "* memory" in text


# ------------------------------------------------------------------ errors


def test_unknown_key_names_known_keys(resolver: Resolver) -> None:
    resolver.register(cand("memory", key="cache"))
    resolver.register(cand("local", key="storage"))
    with pytest.raises(NotRegisteredError) as info:
        resolver.resolve("adapter", "queue")
    assert "adapter/queue" in str(info.value) and "cache, storage" in str(info.value)
    assert isinstance(info.value, OneiricError) and isinstance(info.value, LookupError)
    with pytest.raises(NotRegisteredError, match="known service keys: none"):
        resolver.resolve("service", "x")
    assert resolver.candidates("adapter", "queue") == ()


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"domain": "Adapter"}, "invalid domain name"),
        ({"key": "a b"}, "invalid key name"),
        ({"key": "x" * 65}, "invalid key name"),
        ({"provider": "p@q"}, "invalid provider name"),
        ({"factory": "no-colon"}, "invalid factory"),
        ({"factory": "mod:"}, "invalid factory"),
        ({"factory": 42}, "invalid factory"),
        ({"priority": True}, "invalid priority"),
        ({"priority": "5"}, "invalid priority"),
        ({"stack_level": 1.5}, "invalid stack_level"),
        ({"settings_model": "bad ref"}, "invalid settings_model"),
        ({"capabilities": {""}}, "invalid capability"),
        ({"source": "app"}, "invalid source"),
    ],
)
def test_invalid_candidates_are_refused(fields: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {
        "domain": "adapter",
        "key": "cache",
        "provider": "memory",
        "factory": "collections:OrderedDict",
    }
    base.update(fields)
    positional = [base.pop(k) for k in ("domain", "key", "provider", "factory")]
    with pytest.raises(InvalidCandidateError, match=match) as info:
        Candidate(*positional, **base)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_register_refuses_non_candidates(resolver: Resolver) -> None:
    with pytest.raises(InvalidCandidateError, match="expects a Candidate"):
        resolver.register({"domain": "adapter"})  # type: ignore[arg-type]


def test_source_validation_and_str() -> None:
    for kind, name in [("", "x"), ("a:b", "x"), ("k", "n@m")]:
        with pytest.raises(InvalidCandidateError, match="invalid Source"):
            Source(kind, name)
    assert str(Source("entry_point", "oneiric-acme", "1.2.3")) == "entry_point:oneiric-acme==1.2.3"
    assert str(Source("code", "app")) == "code:app"
    assert Source("manifest", "r", "7", "url").origin == ("manifest", "r")


# ------------------------------------------------------------ writes & batch


def test_unregister_and_unregister_source(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", source=EP_A, priority=50))
    resolver.register(cand("redis", key="session", source=EP_A))
    assert resolver.resolve("adapter", "cache").provider == "redis"
    assert resolver.unregister("adapter", "cache", "redis", ("entry_point", "oneiric-a"))
    assert not resolver.unregister("adapter", "cache", "redis", ("entry_point", "oneiric-a"))
    assert resolver.resolve("adapter", "cache").provider == "memory"
    assert resolver.unregister_source(("entry_point", "oneiric-a")) == 1
    assert resolver.keys("adapter") == ("cache",)
    assert resolver.unregister_source(("entry_point", "nobody")) == 0


def test_batch_publishes_once_with_one_notification(resolver: Resolver) -> None:
    seen: list[frozenset[tuple[str, str]]] = []
    resolver.subscribe(seen.append)
    with resolver.batch():
        resolver.register(cand("memory"))
        resolver.register(cand("local", key="storage"))
        resolver.set_selections("adapter", {"cache": "memory"})
        assert resolver.keys("adapter") == ()  # not yet published
        with resolver.batch():  # nesting joins the outer batch
            resolver.register(cand("redis"))
    assert seen == [frozenset({("adapter", "cache"), ("adapter", "storage")})]
    assert resolver.resolve("adapter", "cache").provider == "memory"


def test_batch_that_raises_applies_nothing(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    seen: list[Any] = []
    resolver.subscribe(seen.append)
    with pytest.raises(RuntimeError), resolver.batch():
        resolver.register(cand("redis", priority=99))
        resolver.unregister_source(("code", "app"))
        raise RuntimeError("boom")
    assert seen == []
    assert resolver.resolve("adapter", "cache").provider == "memory"
    assert resolver.unregister_source(("code", "app")) == 1  # origin index intact


def test_subscriber_exception_is_logged_not_raised(
    resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    def broken(changes: Any) -> None:
        raise RuntimeError("subscriber bug")

    resolver.subscribe(broken)
    unsubscribe = resolver.subscribe(calls.append)
    with caplog.at_level(logging.ERROR, logger="oneiric"):
        resolver.register(cand("memory"))
    assert calls == [frozenset({("adapter", "cache")})]
    unsubscribe()
    resolver.register(cand("redis"))
    assert len(calls) == 1


def test_selection_change_notifies_only_changed_keys(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("local", key="storage"))
    resolver.set_selections("adapter", {"cache": "memory", "storage": "local"})
    seen: list[Any] = []
    resolver.subscribe(seen.append)
    resolver.set_selections("adapter", {"cache": "memory"})
    assert seen == [frozenset({("adapter", "storage")})]


def test_active_and_shadowed(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    resolver.register(cand("redis", priority=50))
    resolver.register(cand("greeter", key="greeter", domain="service"))
    active = resolver.active()
    assert {k: v.provider for k, v in active.items()} == {
        ("adapter", "cache"): "redis",
        ("service", "greeter"): "greeter",
    }
    assert list(resolver.active("service")) == [("service", "greeter")]
    shadowed = resolver.shadowed()
    assert [(s.candidate.provider, s.reason) for s in shadowed] == [
        ("memory", "lost on priority 10 < 50")
    ]
    assert resolver.domains() == ("adapter", "service")


def test_resolve_is_served_from_cache_without_recomputation(resolver: Resolver) -> None:
    for i in range(1000):
        resolver.register(cand(f"p{i}", priority=i % 7))
    winner = resolver.resolve("adapter", "cache")
    assert winner.priority == 6
    assert all(resolver.resolve("adapter", "cache") is winner for _ in range(100))


def test_fill_computed_before_a_concurrent_write_is_not_stored() -> None:
    """A veto hook that writes while the fill runs simulates a concurrent writer."""
    holder: dict[str, Resolver] = {}

    class WritesDuringFill:
        done = False

        @hookimpl
        def oneiric_candidate_veto(self, candidate: Candidate, request: Any) -> str | None:
            if not self.done:
                self.done = True
                holder["r"].register(cand("late", priority=99))
            return None

    r = Resolver(stack_order="", hooks=private_hooks(WritesDuringFill()))
    holder["r"] = r
    r.register(cand("early"))
    assert r.resolve("adapter", "cache").provider == "early"  # computed from the old snapshot
    assert r.resolve("adapter", "cache").provider == "late"  # ...and never cached


def test_batch_register_then_remove_leaves_no_trace(resolver: Resolver) -> None:
    resolver.register(cand("kept", key="other"))
    with resolver.batch():
        resolver.register(cand("temp"))
        resolver.register(cand("final"))
        assert resolver.unregister("adapter", "cache", "temp", ("code", "app"))
    assert [c.provider for c in resolver.candidates("adapter", "cache")] == ["final"]
    # internal bookkeeping: no registration number survives for the removed identity
    assert set(resolver._seq_of) == {
        c.identity for k in ("cache", "other") for c in resolver.candidates("adapter", k)
    }


def test_failed_batch_leaves_registration_numbers_untouched(resolver: Resolver) -> None:
    resolver.register(cand("memory"))
    before = dict(resolver._seq_of)
    with pytest.raises(RuntimeError), resolver.batch():
        resolver.register(cand("new-one", key="fresh"))
        resolver.register(cand("memory", description="replacement"))
        raise RuntimeError("boom")
    assert resolver._seq_of == before
    assert resolver.keys("adapter") == ("cache",)
    assert resolver.resolve("adapter", "cache").description == ""


def test_replacement_inside_a_batch_counts_as_the_newest_registration(
    resolver: Resolver,
) -> None:
    resolver.register(cand("first"))
    resolver.register(cand("second"))
    with resolver.batch():
        resolver.register(cand("first", description="again"))
    ex = resolver.explain("adapter", "cache")
    assert ex.ranking[0].candidate.provider == "first"
    assert ex.ranking[0].reason == "tie broken by registration order"
    assert ex.ranking[0].registered > ex.ranking[1].registered


@pytest.mark.parametrize(
    "tenant", ["", 42, "t\n1", "acme corp", "x\u2028y", "bell\x07", "t" * 129]
)
def test_invalid_tenant_is_a_config_error(resolver: Resolver, tenant: Any) -> None:
    with pytest.raises(ConfigError, match="invalid tenant") as info:
        resolver.set_selections("adapter", {"cache": "memory"}, tenant=tenant)
    assert "\n" not in str(info.value)
    assert resolver.selections("adapter") == {}


def test_value_objects_are_immutable_and_replace_checks_fields() -> None:
    c = cand("memory")
    with pytest.raises(AttributeError, match="immutable"):
        c.provider = "redis"  # type: ignore[misc]
    assert c.replace(priority=3).priority == 3 and c.priority is None
    with pytest.raises(TypeError, match="no field"):
        c.replace(nope=1)
    with pytest.raises(InvalidCandidateError, match="invalid priority"):
        c.replace(priority="high")


def test_extension_state_lives_with_its_resolver() -> None:
    first, second = Resolver(stack_order=""), Resolver(stack_order="")
    loaded = first.extension("acme.loader", dict)
    loaded["x"] = 1
    assert first.extension("acme.loader", dict) is loaded
    assert second.extension("acme.loader", dict) == {}
    assert first.extension("other", list) == []
