"""Hooks called one implementation at a time keep pluggy's semantics.

Before ``call_hook`` the resolver called ``impl.function(candidate=..., request=...)``
by hand: an implementation declaring a subset of the spec's arguments raised
``TypeError`` (and, failing closed, vetoed every candidate), and an observe-only
``wrapper=True`` implementation returned a generator, taken as a veto reason.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from oneiric.core import Candidate, Resolver, hookimpl, new_plugin_manager
from oneiric.core._hookcall import HookResult, call_hook


def cand(provider: str, **kw: Any) -> Candidate:
    return Candidate("adapter", "cache", provider, "collections:OrderedDict", **kw)


def hooks_with(*plugins: tuple[str, object]) -> pluggy.PluginManager:
    pm = new_plugin_manager(builtins=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


class CandidateOnlyVeto:
    """A valid implementation: pluggy lets a hookimpl declare a subset of the spec's arguments."""

    @hookimpl
    def oneiric_candidate_veto(self, candidate: Candidate) -> str | None:
        return "no redis here" if candidate.provider == "redis" else None


class ObservingWrapper:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def oneiric_candidate_veto(self, candidate: Candidate) -> Generator[None, Any, Any]:
        result = yield
        self.seen.append(candidate.provider)
        return result


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def oneiric_candidate_veto(
        self, candidate: Candidate, request: Any
    ) -> Generator[None, Any, None]:
        yield


def test_attack_veto_with_subset_of_arguments_vetoes_only_what_it_means() -> None:
    r = Resolver(stack_order="", hooks=hooks_with(("acme-policy:veto", CandidateOnlyVeto())))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    ex = r.explain("adapter", "cache")
    assert ex.selected is not None and ex.selected.provider == "memory"
    reasons = {row.candidate.provider: row.reason for row in ex.ranking}
    assert reasons["redis"] == "vetoed by acme-policy: no redis here"
    assert "TypeError" not in reasons["memory"]


@pytest.mark.parametrize("wrapper", [ObservingWrapper, OldStyleWrapper], ids=["new", "old"])
def test_attack_observe_only_wrapper_vetoes_nothing(wrapper: type) -> None:
    observer = wrapper()
    r = Resolver(stack_order="", hooks=hooks_with(("acme-observer:obs", observer)))
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    ex = r.explain("adapter", "cache")
    assert ex.selected is not None and ex.selected.provider == "redis"
    assert all("generator" not in row.reason for row in ex.ranking)
    assert all("vetoed" not in row.reason for row in ex.ranking)


def test_wrapper_wraps_each_isolated_call_and_sees_the_veto() -> None:
    observer = ObservingWrapper()
    r = Resolver(
        stack_order="",
        hooks=hooks_with(
            ("acme-policy:veto", CandidateOnlyVeto()), ("acme-observer:obs", observer)
        ),
    )
    r.register(cand("memory"))
    r.register(cand("redis", priority=50))
    assert r.resolve("adapter", "cache").provider == "memory"
    assert sorted(observer.seen) == ["memory", "redis"]


def test_veto_returning_a_non_string_fails_closed_with_a_reason() -> None:
    class Truthy:
        @hookimpl
        def oneiric_candidate_veto(self, candidate: Candidate) -> Any:
            return True

    r = Resolver(stack_order="", hooks=hooks_with(("acme-policy:veto", Truthy())))
    r.register(cand("memory"))
    ex = r.explain("adapter", "cache")
    assert ex.selected is None
    assert ex.ranking[0].reason == (
        "vetoed by acme-policy: veto hook returned bool, not a reason string"
    )


def test_call_hook_isolates_failures_and_keeps_pluggy_order() -> None:
    calls: list[str] = []

    def plugin(name: str, result: Any = None, fail: bool = False) -> object:
        class P:
            @hookimpl
            def oneiric_post_swap(self, transition: Any) -> Any:
                calls.append(name)
                if fail:
                    raise RuntimeError(f"{name} broke")
                return result

        return P()

    pm = hooks_with(
        ("one:a", plugin("one", "first")),
        ("two:b", plugin("two", fail=True)),
        ("three:c", plugin("three")),
    )
    results = call_hook(pm, "oneiric_post_swap", transition=object())
    assert calls == ["three", "two", "one"]  # pluggy's order: last registered first
    assert [r.plugin for r in results] == ["three:c", "two:b", "one:a"]
    assert results[0] == HookResult("three:c", None, None)
    assert isinstance(results[1].error, RuntimeError) and results[1].value is None
    assert results[2].value == "first" and results[2].distribution == "one"


def test_call_hook_lets_interrupts_through() -> None:
    class Interrupting:
        @hookimpl
        def oneiric_post_swap(self, transition: Any) -> None:
            raise KeyboardInterrupt

    pm = hooks_with(("x:y", Interrupting()))
    with pytest.raises(KeyboardInterrupt):
        call_hook(pm, "oneiric_post_swap", transition=object())


@pytest.mark.parametrize("exit_exc", [SystemExit(0), GeneratorExit()], ids=["exit", "genexit"])
def test_attack_plugin_exiting_from_a_hook_is_its_own_failure(exit_exc: BaseException) -> None:
    class Exiting:
        @hookimpl
        def oneiric_post_swap(self, transition: Any) -> None:
            raise exit_exc

    class Fine:
        @hookimpl
        def oneiric_post_swap(self, transition: Any) -> str:
            return "ok"

    pm = hooks_with(("fine:f", Fine()), ("bad:b", Exiting()))
    results = call_hook(pm, "oneiric_post_swap", transition=object())
    assert [(r.plugin, type(r.error)) for r in results] == [
        ("bad:b", type(exit_exc)),
        ("fine:f", type(None)),
    ]
    assert results[1].value == "ok"


def test_call_hook_on_firstresult_hook_returns_the_value() -> None:
    class Secret:
        @hookimpl
        def oneiric_secret(self, name: str) -> str | None:
            return "s3cr3t" if name == "db" else None

    pm = hooks_with(("vault:v", Secret()))
    assert call_hook(pm, "oneiric_secret", name="db") == [HookResult("vault:v", "s3cr3t")]
    assert call_hook(pm, "oneiric_secret", name="other") == [HookResult("vault:v", None)]


def test_call_hook_without_implementations_is_empty() -> None:
    assert call_hook(hooks_with(), "oneiric_post_swap", transition=object()) == []
