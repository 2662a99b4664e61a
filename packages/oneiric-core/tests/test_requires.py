"""A candidate whose client library is missing cannot win: the built-in ``requires`` veto.

A candidate declares ``metadata={"requires": [...module names...]}``; when a
cached winner is (re)computed, a module that ``importlib.util.find_spec`` cannot
find vetoes the candidate, and ``explain`` says which module and how to install
it, instead of the default winner failing at activation.
"""

from __future__ import annotations

import pytest

from oneiric.core import Candidate, Resolver, Source, new_plugin_manager


def _candidate(provider: str, priority: int, metadata: dict[str, object]) -> Candidate:
    return Candidate(
        "adapter",
        "cache",
        provider,
        "json:loads",
        priority=priority,
        source=Source("entry_point", "oneiric-test"),
        metadata=metadata,
    )


MISSING = "oneiric_no_such_client_library_xyz"


@pytest.mark.parametrize(
    "requires",
    [
        [MISSING],
        (MISSING,),
        MISSING,  # one name as a plain string
        ["json", MISSING],  # one of several is missing
        [f"{MISSING}.asyncio"],  # a dotted name whose top package is missing
    ],
    ids=["list", "tuple", "string", "one-of-several", "dotted"],
)
def test_attack_default_winner_needs_missing_library(requires: object) -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    resolver.register(_candidate("embedded", 0, {}))
    resolver.register(
        _candidate("remote", 10, {"requires": requires, "install": "pip install 'x[remote]'"})
    )
    assert resolver.resolve("adapter", "cache").provider == "embedded"
    explanation = resolver.explain("adapter", "cache")
    reasons = {row["provider"]: row["reason"] for row in explanation.as_dict()["candidates"]}
    assert reasons["remote"].startswith("vetoed by oneiric-core: ")
    assert MISSING in reasons["remote"]
    assert "pip install 'x[remote]'" in reasons["remote"]
    assert "\n" not in reasons["remote"]


def test_installed_requirement_does_not_veto() -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    resolver.register(_candidate("embedded", 0, {}))
    resolver.register(_candidate("remote", 10, {"requires": ["json", "importlib.util"]}))
    assert resolver.resolve("adapter", "cache").provider == "remote"


@pytest.mark.parametrize(
    "bad", [[""], [3], {"a": 1}, ["..bad"]], ids=["empty", "int", "map", "relative"]
)
def test_attack_malformed_requires_vetoes_in_one_line(bad: object) -> None:
    resolver = Resolver(hooks=new_plugin_manager())
    resolver.register(_candidate("embedded", 0, {}))
    resolver.register(_candidate("remote", 10, {"requires": bad}))
    assert resolver.resolve("adapter", "cache").provider == "embedded"
    reason = next(
        row["reason"]
        for row in resolver.explain("adapter", "cache").as_dict()["candidates"]
        if row["provider"] == "remote"
    )
    assert reason.startswith("vetoed by oneiric-core: ")
    assert "requires" in reason
    assert "\n" not in reason


def test_builtins_false_has_no_requires_veto() -> None:
    resolver = Resolver(hooks=new_plugin_manager(builtins=False))
    resolver.register(_candidate("remote", 10, {"requires": [MISSING]}))
    assert resolver.resolve("adapter", "cache").provider == "remote"
