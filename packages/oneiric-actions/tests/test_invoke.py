"""``Actions.invoke``: validation, timeouts, retries, leases, idempotency keys, telemetry.

The actions here are small real classes registered on a real resolver and
run by a real ``LifecycleManager``; retries use an injected sleep (no waiting,
no timing assertions).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from oneiric.actions import (
    ActionContext,
    ActionFailed,
    ActionInputError,
    ActionOutputError,
    Actions,
    ActionSpec,
    ActionTimeout,
)
from oneiric.core import (
    Candidate,
    ComponentPaused,
    ConfigError,
    NotRegisteredError,
    Resolver,
    RetryPolicy,
    exit_code_for,
)
from oneiric.lifecycle import ActivityStore, LifecycleConfig, LifecycleManager
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

NO_JITTER = RetryPolicy(max_attempts=3, initial=0.5, jitter=0)


class Item(BaseModel):
    name: str
    price: float


class Order(BaseModel):
    items: list[Item]


class Priced(BaseModel):
    total: float


class Recorder:
    """Every call's context; ``fail_first`` attempts raise ``error``."""

    spec = ActionSpec(idempotent=True, side_effects=False, retry=NO_JITTER)
    fail_first = 0
    error: type[Exception] = ConnectionError
    contexts: list[ActionContext]

    def __init__(self) -> None:
        self.contexts = []

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        self.contexts.append(context)
        if len(self.contexts) <= self.fail_first:
            raise self.error(f"attempt {context.attempt} failed")
        return {"echo": payload, "attempt": context.attempt}


class SideEffect(Recorder):
    spec = ActionSpec()  # not idempotent, side effects: never retried by default
    fail_first = 1


class Flaky(Recorder):
    fail_first = 2


class AlwaysFails(Recorder):
    fail_first = 99


class Sleeper:
    spec = ActionSpec(timeout=0.05, idempotent=True)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        await asyncio.sleep(3600)


class OwnTimeout:
    spec = ActionSpec(timeout=30)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        raise TimeoutError("upstream said 504")


class Modelled:
    spec = ActionSpec(input_model=Order, output_model=Priced, side_effects=False)
    calls = 0

    def invoke(self, payload: Order, context: ActionContext) -> Any:
        Modelled.calls += 1
        total = sum(i.price for i in payload.items)
        return {"total": total} if total >= 0 else {"total": "negative"}


class Returns:
    spec = ActionSpec(side_effects=False)

    def invoke(self, payload: Any, context: ActionContext) -> Any:
        return payload["value"]


class Blocking:
    spec = ActionSpec(blocking=True, side_effects=False)

    def invoke(self, payload: Any, context: ActionContext) -> Any:
        return {"thread": threading.get_ident()}


class Gate:
    """Waits until released, so a swap can happen while it runs."""

    spec = ActionSpec(side_effects=False)
    provider = "old"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        self.entered.set()
        await self.release.wait()
        return {"served_by": self.provider}


class NewGate(Gate):
    provider = "new"


FACTORIES: dict[str, Any] = {
    "t.recorder": Recorder, "t.side": SideEffect, "t.flaky": Flaky, "t.fails": AlwaysFails,
    "t.sleep": Sleeper, "t.own_timeout": OwnTimeout, "t.model": Modelled,
    "t.returns": Returns, "t.blocking": Blocking,
}


@pytest.fixture
def resolver() -> Resolver:
    resolver = Resolver()
    for key, factory in FACTORIES.items():
        resolver.register(Candidate("action", key, "p", factory))
    return resolver


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the retry loop asked for (the injected sleep records and returns)."""
    return []


@pytest.fixture
async def actions(make_actions: Any, resolver: Resolver, sleeps: list[float]) -> Actions:
    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    made = await make_actions(resolver=resolver)
    return Actions(made.lifecycle, sleep=no_wait)


def _instance(actions: Actions, key: str) -> Any:
    from oneiric.lifecycle import DomainBridge

    return DomainBridge("action", actions.lifecycle).handle(key).instance


async def test_first_invoke_activates_and_returns_the_provider_and_value(
    actions: Actions,
) -> None:
    result = await actions.invoke("t.recorder", {"x": 1})
    assert (result.key, result.provider, result.attempts) == ("t.recorder", "p", 1)
    assert result.value == {"echo": {"x": 1}, "attempt": 1}
    assert result.duration_s >= 0
    assert result.as_dict()["value"] == {"echo": {"x": 1}, "attempt": 1}


async def test_retry_keeps_one_idempotency_key_and_waits_per_policy(
    actions: Actions, sleeps: list[float]
) -> None:
    result = await actions.invoke("t.flaky", None)
    assert result.attempts == 3
    contexts = _instance(actions, "t.flaky").contexts
    assert [c.attempt for c in contexts] == [1, 2, 3]
    assert len({c.idempotency_key for c in contexts}) == 1
    assert sleeps == [0.5, 1.0]


async def test_idempotency_key_is_run_and_node_for_workflows_else_given_or_uuid(
    actions: Actions,
) -> None:
    await actions.invoke("t.recorder", 1, run_id="run-7", node_id="charge")
    await actions.invoke("t.recorder", 2, idempotency_key="order-42")
    await actions.invoke("t.recorder", 3)
    await actions.invoke("t.recorder", 4)
    keys = [c.idempotency_key for c in _instance(actions, "t.recorder").contexts]
    assert keys[:2] == ["run-7/charge", "order-42"]
    assert keys[2] != keys[3] and len(keys[2]) == 36  # a fresh UUID per invocation
    first = _instance(actions, "t.recorder").contexts[0]
    assert (first.run_id, first.node_id) == ("run-7", "charge")


async def test_non_idempotent_action_with_side_effects_is_never_retried_by_default(
    actions: Actions,
) -> None:
    with pytest.raises(ActionFailed) as info:
        await actions.invoke("t.side", None)
    assert info.value.attempts == 1 and isinstance(info.value.cause, ConnectionError)
    assert "raised after 1 attempt: ConnectionError: attempt 1 failed" in str(info.value)
    assert exit_code_for(info.value) == 1


async def test_caller_policy_retries_a_non_idempotent_action(actions: Actions) -> None:
    result = await actions.invoke("t.side", None, retry=RetryPolicy(max_attempts=2, jitter=0))
    assert result.attempts == 2


def test_spec_declaring_retry_on_an_unsafe_action_is_refused() -> None:
    with pytest.raises(ConfigError, match="neither idempotent nor free of side effects"):
        ActionSpec(retry=RetryPolicy())
    assert ActionSpec(retry=RetryPolicy(), side_effects=False).retry_safe


async def test_exhausted_retries_raise_action_failed_with_the_last_cause(
    actions: Actions,
) -> None:
    with pytest.raises(ActionFailed) as info:
        await actions.invoke("t.fails", None)
    assert info.value.attempts == 3
    assert "attempt 3 failed" in str(info.value.cause)


async def test_non_retryable_exception_stops_at_once(actions: Actions) -> None:
    policy = RetryPolicy(max_attempts=5, jitter=0, non_retryable=(ConnectionError,))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke("t.fails", None, retry=policy)
    assert info.value.attempts == 1


async def test_timeout_from_spec_then_invoke_override(actions: Actions) -> None:
    with pytest.raises(ActionTimeout) as info:
        await actions.invoke("t.sleep", None)
    assert "within 0.05s (attempt 1)" in str(info.value)  # no policy in spec or call
    assert exit_code_for(info.value) == 5
    assert isinstance(info.value, TimeoutError)


async def test_invoke_timeout_overrides_the_spec(actions: Actions) -> None:
    with pytest.raises(ActionTimeout, match=r"within 0\.01s"):
        await actions.invoke("t.sleep", None, timeout=0.01, retry=RetryPolicy(max_attempts=1))


async def test_a_timeout_raised_by_the_action_itself_is_a_failure_not_ours(
    actions: Actions,
) -> None:
    with pytest.raises(ActionFailed, match="TimeoutError: upstream said 504"):
        await actions.invoke("t.own_timeout", None)


async def test_input_model_errors_name_the_field_and_never_call_the_action(
    actions: Actions,
) -> None:
    Modelled.calls = 0
    bad = {"items": [{"name": "a", "price": 1}, {"name": "b", "price": "cheap"}]}
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("t.model", bad, retry=RetryPolicy(max_attempts=3, jitter=0))
    assert info.value.path == "items[1].price"
    assert "payload field items[1].price" in str(info.value)
    assert "\n" not in str(info.value)
    assert exit_code_for(info.value) == 4
    assert Modelled.calls == 0
    good = {"items": [{"name": "a", "price": 1.5}, {"name": "b", "price": 2}]}
    assert (await actions.invoke("t.model", good)).value == {"total": 3.5}


async def test_output_model_mismatch_is_an_output_error(actions: Actions) -> None:
    with pytest.raises(ActionOutputError) as info:
        await actions.invoke("t.model", {"items": [{"name": "a", "price": -1}]})
    assert info.value.path == "total"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": {1, 2}}, "a"),
        ({"a": [1, float("nan")]}, "a[1]"),
        ({1: "x"}, "[1]"),
        (object(), "<value>"),
    ],
)
async def test_values_json_cannot_carry_are_refused_with_their_path(
    actions: Actions, value: Any, path: str
) -> None:
    with pytest.raises(ActionOutputError) as info:
        await actions.invoke("t.returns", {"value": value})
    assert info.value.path == path


async def test_bytes_are_allowed_in_process_and_rendered_as_base64(actions: Actions) -> None:
    result = await actions.invoke("t.returns", {"value": {"data": b"\x00\xff"}})
    assert result.value == {"data": b"\x00\xff"}
    assert result.as_dict()["value"] == {"data": {"base64": "AP8="}}


async def test_blocking_spec_runs_in_a_worker_thread(actions: Actions) -> None:
    result = await actions.invoke("t.blocking", None)
    assert result.value["thread"] != threading.get_ident()


async def test_unknown_key_is_not_registered(actions: Actions) -> None:
    with pytest.raises(NotRegisteredError):
        await actions.invoke("t.nosuch", None)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "5"}, "timeout must be a positive number"),
        ({"retry": {"max_attempts": 2}}, "retry must be a RetryPolicy"),
    ],
)
async def test_bad_invoke_arguments_fail_in_one_line(
    actions: Actions, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        await actions.invoke("t.recorder", None, **kwargs)


async def test_paused_key_refuses_without_calling_or_retrying(
    tmp_path: Path, resolver: Resolver
) -> None:
    store = ActivityStore(tmp_path / "activity.db")
    manager = LifecycleManager(
        resolver, activity_store=store, write_status=False,
        config=LifecycleConfig(grace_period=0, health_interval=0),
    )
    try:
        actions = Actions(manager)
        await actions.invoke("t.recorder", None)
        store.pause("action", "t.recorder", note="maintenance")

        def paused() -> bool:
            (entry,) = manager.status()["keys"]
            return bool(entry["activity"]["state"] == "paused")

        await apoll_until(paused, message="the lifecycle seeing the pause")
        with pytest.raises(ComponentPaused) as info:
            await actions.invoke("t.recorder", None, retry=RetryPolicy(max_attempts=3))
        assert exit_code_for(info.value) == 5
        from oneiric.lifecycle import DomainBridge

        assert len(DomainBridge("action", manager).handle("t.recorder").instance.contexts) == 1
    finally:
        await manager.shutdown()
        store.close()


async def test_result_names_the_provider_that_produced_it_across_a_swap(
    make_actions: Any,
) -> None:
    resolver = Resolver()
    resolver.register(Candidate("action", "t.gate", "old", Gate))
    resolver.register(Candidate("action", "t.gate", "new", NewGate, priority=-1))
    actions = await make_actions(resolver=resolver)
    from oneiric.lifecycle import DomainBridge

    await actions.lifecycle.activate("action", "t.gate")
    old = DomainBridge("action", actions.lifecycle).handle("t.gate").instance
    running = asyncio.ensure_future(actions.invoke("t.gate", None))
    await old.entered.wait()
    await actions.lifecycle.swap("action", "t.gate", "new")  # binds; old waits for the lease
    new = DomainBridge("action", actions.lifecycle).handle("t.gate").instance
    new.release.set()
    old.release.set()
    result = await running
    assert (result.provider, result.value) == ("old", {"served_by": "old"})
    after = await actions.invoke("t.gate", None)
    assert (after.provider, after.value) == ("new", {"served_by": "new"})


async def test_spec_and_list_do_not_activate(actions: Actions) -> None:
    assert actions.spec("t.side") == SideEffect.spec
    infos = {i.key: i for i in actions.list()}
    assert infos["t.flaky"].winner == "p" and infos["t.flaky"].spec == Flaky.spec
    assert infos["t.flaky"].as_dict()["spec"]["retry"]["max_attempts"] == 3
    assert actions.lifecycle.status()["keys"] == []


def test_model_references_import_on_first_use_and_bad_ones_fail_in_one_line() -> None:
    from oneiric.core import DomainSettings

    spec = ActionSpec(input_model="oneiric.core:DomainSettings", side_effects=False)
    assert spec.model("input") is DomainSettings
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        ActionSpec(output_model="no_such_module_xyz:Model").model("output")
    with pytest.raises(ConfigError, match="not a pydantic model class"):
        ActionSpec(input_model="json:loads").model("input")


async def test_a_span_per_invocation(actions: Actions, spans: Any) -> None:
    from opentelemetry import trace

    await actions.invoke("t.flaky", {"x": 1}, idempotency_key="k-1")
    (span,) = [s for s in spans.get_finished_spans() if s.name == "oneiric.action.invoke"]
    assert span.attributes is not None
    assert span.attributes["key"] == "t.flaky"
    assert span.attributes["idempotency_key"] == "k-1"
    assert span.attributes["oneiric.provider"] == "p"
    assert span.attributes["oneiric.attempts"] == 3
    assert trace.get_current_span() is not span
