"""The conformance suite itself: a good action passes it, each kind of bad one is caught."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from oneiric.actions import ActionContext, ActionInputError, ActionSpec
from oneiric.actions.testing import ActionConformance

pytest_plugins = ["oneiric.actions.testing", "pytester"]


class Upper:
    """A well-behaved action: validates input, async, slow on request."""

    spec = ActionSpec(description="upper-case text", idempotent=True, side_effects=False)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise ActionInputError("payload field text must be a string", path="text")
        if payload.get("slow"):
            await asyncio.sleep(3600)
        return {"text": payload["text"].upper(), "raw": payload["text"].encode()}


class TestGoodActionPasses(ActionConformance):
    valid_payloads = ({"text": "abc"}, {"text": ""})
    invalid_payloads = (None, {"text": 3}, [])
    slow_payload: ClassVar[Any] = {"text": "x", "slow": True}
    deterministic = True

    @pytest.fixture
    def action_factory(self) -> Any:
        return Upper


#: Bad actions, each breaking one rule; run in a pytester subprocess beside ``Upper``.
BAD_ACTIONS = """
import asyncio
from oneiric.actions import ActionContext, ActionInputError, ActionSpec

class Upper:
    spec = ActionSpec(idempotent=True, side_effects=False)

    async def invoke(self, payload, context):
        if payload.get("slow"):
            await asyncio.sleep(3600)
        return {"text": payload["text"].upper()}

class LeaksValueError(Upper):
    async def invoke(self, payload, context):
        return {"n": int(payload["text"])}  # ValueError leaks

class NoSpec:
    async def invoke(self, payload, context):
        return {"ok": True}

class ReturnsASet(Upper):
    async def invoke(self, payload, context):
        return {"tags": {"a"}}

class IgnoresTimeouts(Upper):
    def invoke(self, payload, context):  # sync: returns at once, whatever the payload
        return {"text": "done"}
"""


@pytest.mark.parametrize(
    ("factory", "test", "fragment"),
    [
        ("LeaksValueError", "test_invalid_payloads_raise_typed_one_line_input_errors",
         "expected ActionInputError"),
        ("NoSpec", "test_declares_an_action_spec",
         "declares no `spec = ActionSpec(...)` attribute"),
        ("ReturnsASet", "test_valid_payloads_give_json_compatible_values", "JSON cannot carry"),
        ("IgnoresTimeouts", "test_honours_the_timeout", "expected ActionTimeout"),
    ],
)
def test_the_suite_catches_a_bad_action(
    pytester: pytest.Pytester, factory: str, test: str, fragment: str
) -> None:
    pytester.makepyfile(bad_actions=BAD_ACTIONS)
    pytester.makepyfile(
        test_bad=f"""
import pytest
from oneiric.actions.testing import ActionConformance
import bad_actions as source

pytest_plugins = ["oneiric.actions.testing", "pytester"]

class TestBad(ActionConformance):
    valid_payloads = ({{"text": "1"}},)
    invalid_payloads = ({{"text": "x"}},)
    slow_payload = {{"text": "1", "slow": True}}

    @pytest.fixture
    def action_factory(self):
        return source.{factory}
"""
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-k", test)
    result.assert_outcomes(failed=1)
    assert fragment in result.stdout.str()
