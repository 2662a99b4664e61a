"""``event.dispatch``: emit or publish through ``Actions.invoke`` on a real lifecycle.

The kit reaches the dispatcher of the lifecycle that invokes it
(``dispatcher_for``), so handlers subscribed on that dispatcher run; every bad
input is an ``ActionInputError`` naming the field in one line, and the
dispatcher keeps working afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from oneiric.actions import ActionInputError, Actions
from oneiric.core import ConfigError, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import Event, dispatcher_for
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


async def test_emit_runs_the_handlers_and_returns_the_report(make_runtime: Any) -> None:
    rt = await make_runtime()
    seen: list[Event] = []
    rt.dispatcher.subscribe("audit", lambda event, ctx: seen.append(event),
                            topics="orders.*")
    result = await rt.actions.invoke(
        "event.dispatch", {"topic": "orders.created", "payload": {"n": 1}, "id": "ev-1"}
    )
    assert result.provider == "builtin"
    assert result.value == {"event_id": "ev-1", "ok": True, "outcomes": [
        {"handler": "audit", "provider": "code", "group": "audit", "status": "ok",
         "attempts": 1, "error": None}]}
    assert [(e.id, e.topic, dict(e.payload)) for e in seen] == [
        ("ev-1", "orders.created", {"n": 1})]


async def test_emit_reports_a_failing_handler_instead_of_raising(make_runtime: Any) -> None:
    rt = await make_runtime()

    def boom(event: Event, ctx: Any) -> None:
        raise RuntimeError("handler bug")

    rt.dispatcher.subscribe("boom", boom, topics="jobs.run")
    value = (await rt.actions.invoke("event.dispatch", {"topic": "jobs.run"})).value
    assert value["ok"] is False
    assert value["outcomes"][0]["status"] == "dead_lettered"
    assert value["outcomes"][0]["error"] == "RuntimeError: handler bug"


async def test_emit_with_no_handler_is_an_empty_report(make_runtime: Any) -> None:
    rt = await make_runtime()
    value = (await rt.actions.invoke("event.dispatch", {"topic": "nobody.listens"})).value
    assert value["ok"] is True
    assert value["outcomes"] == []


async def test_publish_returns_the_event_id_and_consumers_deliver_it(
    make_runtime: Any,
) -> None:
    rt = await make_runtime()
    seen: list[str] = []
    rt.dispatcher.subscribe("audit", lambda event, ctx: seen.append(event.id),
                            topics="orders.#")
    consumers = asyncio.ensure_future(rt.dispatcher.consume(2))
    try:
        value = (await rt.actions.invoke(
            "event.dispatch", {"topic": "orders.paid", "payload": {}, "mode": "publish"}
        )).value
        assert set(value) == {"event_id"}
        await apoll_until(lambda: seen == [value["event_id"]], message="delivery")
    finally:
        consumers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumers


async def test_spec_declares_side_effects_and_no_idempotence(make_runtime: Any) -> None:
    rt = await make_runtime()
    spec = rt.actions.spec("event.dispatch")
    assert (spec.side_effects, spec.idempotent, spec.retry) == (True, False, None)


class _Odd:
    """Not JSON."""


@pytest.mark.parametrize(("payload", "path"), [
    (["orders.created"], "<payload>"),
    ({"topic": "a.b", "extra": 1}, "extra"),
    ({}, "topic"),
    ({"topic": 7}, "topic"),
    ({"topic": ""}, "topic"),
    ({"topic": "a..b"}, "topic"),
    ({"topic": "Orders.Created"}, "topic"),
    ({"topic": "orders.*"}, "topic"),
    ({"topic": "orders.#"}, "topic"),
    ({"topic": "a.b", "payload": [1, 2]}, "payload"),
    ({"topic": "a.b", "payload": "text"}, "payload"),
    ({"topic": "a.b", "payload": {"x": _Odd()}}, "payload"),
    ({"topic": "a.b", "payload": {"x": float("nan")}}, "payload"),
    ({"topic": "a.b", "payload": {"x": "a" * (1 << 20)}}, "payload"),
    ({"topic": "a.b", "mode": "broadcast"}, "mode"),
    ({"topic": "a.b", "mode": True}, "mode"),
    ({"topic": "a.b", "id": ""}, "id"),
    ({"topic": "a.b", "id": 5}, "id"),
    ({"topic": "a.b", "id": "x" * 201}, "id"),
])
async def test_attack_bad_dispatch_input_is_one_line_naming_the_field(
    make_runtime: Any, payload: Any, path: str
) -> None:
    rt = await make_runtime()
    seen: list[str] = []
    rt.dispatcher.subscribe("audit", lambda event, ctx: seen.append(event.topic), topics="#")
    with pytest.raises(ActionInputError) as info:
        await rt.actions.invoke("event.dispatch", payload)
    assert info.value.path == path
    assert "\n" not in str(info.value)
    assert seen == []  # nothing was dispatched
    # and the dispatcher keeps running
    value = (await rt.actions.invoke("event.dispatch", {"topic": "still.works"})).value
    assert value["ok"] is True
    assert seen == ["still.works"]


async def test_any_lifecycle_works_and_a_direct_call_fails_in_one_line(
    make_runtime: Any,
) -> None:
    """The kit reads the lifecycle ``Actions.invoke`` runs on; outside an invocation it says so."""
    served = await make_runtime()
    other = LifecycleManager(
        served.resolver, activity_store=False, write_status=False,
        config=LifecycleConfig(grace_period=0, health_interval=0),
    )
    try:
        value = (await Actions(other).invoke("event.dispatch", {"topic": "a.b"})).value
        assert value["ok"] is True
        assert dispatcher_for(other) is served.dispatcher  # one dispatcher per resolver
        kit = await other.activate("action", "event.dispatch")
        from oneiric.actions import ActionContext

        with pytest.raises(ConfigError) as info:
            await kit.invoke({"topic": "a.b"}, ActionContext("event.dispatch", "builtin", 1,
                                                            float("inf"), "k"))
        assert "invoke it through oneiric.actions.Actions" in str(info.value)
        assert "\n" not in str(info.value)
    finally:
        await other.shutdown()


async def test_two_lifecycles_each_dispatch_on_their_own_dispatcher(make_runtime: Any) -> None:
    first, second = await make_runtime(), await make_runtime()
    assert isinstance(first.resolver, Resolver)
    got: dict[str, list[str]] = {"first": [], "second": []}
    first.dispatcher.subscribe("h", lambda e, c: got["first"].append(e.id), topics="t.x")
    second.dispatcher.subscribe("h", lambda e, c: got["second"].append(e.id), topics="t.x")
    await first.actions.invoke("event.dispatch", {"topic": "t.x", "id": "one"})
    await second.actions.invoke("event.dispatch", {"topic": "t.x", "id": "two"})
    await first.actions.invoke("event.dispatch", {"topic": "t.x", "id": "three"})
    assert got == {"first": ["one", "three"], "second": ["two"]}
