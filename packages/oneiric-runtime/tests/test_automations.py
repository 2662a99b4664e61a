"""``[automations.<id>]``: settings → event handlers → ``automation.trigger`` → the target.

Real settings files, the real catalogs, a real lifecycle and dispatcher
(``make_runtime``); test actions are plain providers registered on the
resolver.  Every invalid table is a one-line ``ConfigError`` naming
``automations.<id>.<field>`` and registers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from typing import Any

import pytest

from oneiric.actions import ActionSpec
from oneiric.core import Candidate, ConfigError, Resolver
from oneiric.runtime import Event
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


class Recorder:
    """Providers of test actions: record each payload; fail while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failing = False

    def app(self, *keys: str) -> Any:
        recorder = self

        class Record:
            spec = ActionSpec(side_effects=False, idempotent=True)

            def __init__(self, key: str) -> None:
                self.key = key

            def invoke(self, payload: Any, context: Any) -> Any:
                recorder.calls.append((self.key, payload))
                if recorder.failing:
                    raise RuntimeError("downstream is down")
                return {"got": payload}

        def register(resolver: Resolver) -> None:
            for key in keys:
                resolver.register(Candidate("action", key, "mem",
                                            lambda key=key: Record(key)))

        return register


def ship(extra: str = "", *, region_filter: bool = True) -> str:
    """The ``ship`` automation; ``extra`` lines go into its table (before the payload)."""
    region = 'filter = { "order.region" = { equals = "eu" } }\n' if region_filter else ""
    return f"""
[automations.ship]
on = "orders.*"
{region}run = "action:test.record"
{extra}
[automations.ship.payload]
order_id = "${{event.payload.order.id}}"
label = "order ${{event.payload.order.id}} on ${{event.topic}}"
event = "${{event.id}}"
whole = "${{event.payload.order}}"
"""


SHIP = ship()


async def test_an_event_runs_the_automation_with_the_rendered_payload(make_runtime: Any) -> None:
    recorder = Recorder()
    rt = await make_runtime(SHIP, app=recorder.app("test.record"))
    report = await rt.dispatcher.emit(
        "orders.paid", {"order": {"id": 7, "region": "eu"}}, id="ev-7"
    )
    assert [(o.handler, o.provider, o.status) for o in report.outcomes] == [
        ("automation.ship", "settings", "ok")]
    assert recorder.calls == [("test.record", {
        "order_id": 7, "label": "order 7 on orders.paid", "event": "ev-7",
        "whole": {"id": 7, "region": "eu"},
    })]


async def test_the_filter_and_topic_decide_and_route_explains_it(make_runtime: Any) -> None:
    recorder = Recorder()
    rt = await make_runtime(SHIP, app=recorder.app("test.record"))
    runs = rt.dispatcher.route("orders.paid", {"order": {"id": 1, "region": "eu"}})
    assert [(d.handler, d.runs) for d in runs.decisions] == [("automation.ship", True)]
    us = rt.dispatcher.route("orders.paid", {"order": {"id": 1, "region": "us"}})
    (decision,) = us.decisions
    assert (decision.handler, decision.runs) == ("automation.ship", False)
    assert decision.reason == "filter order.region: 'us' is not 'eu'"
    other = rt.dispatcher.route("billing.paid", {})
    assert other.decisions[0].reason == "topic mismatch: subscribes to orders.*"
    report = await rt.dispatcher.emit("orders.paid", {"order": {"id": 1, "region": "us"}})
    assert report.outcomes == ()
    assert recorder.calls == []


async def test_the_handler_candidate_carries_the_subscription_fields(make_runtime: Any) -> None:
    rt = await make_runtime(ship('priority = 5\ngroup = "shipping"\ntimeout = "2s"'),
                            app=Recorder().app("test.record"))
    candidate = rt.resolver.resolve("event", "automation.ship")
    assert candidate.provider == "settings"
    assert candidate.source.kind == "settings"
    assert candidate.metadata == {
        "topics": ["orders.*"], "filter": {"order.region": {"equals": "eu"}},
        "priority": 5, "group": "shipping", "timeout": 2.0, "failover": False,
        "idempotent": False,
    }
    (sub,) = rt.dispatcher.subscriptions()
    assert (sub.name, sub.group, sub.priority, sub.timeout) == (
        "automation.ship", "shipping", 5, 2.0)


async def test_a_failing_target_is_retried_then_dead_lettered_and_redrive_runs_it(
    make_runtime: Any,
) -> None:
    recorder = Recorder()
    recorder.failing = True
    rt = await make_runtime(textwrap.dedent("""
        [automations.sync]
        on = "crm.#"
        run = "action:test.flaky"
        retry = { max_attempts = 2, initial = 0.001, jitter = 0 }
    """), app=recorder.app("test.flaky"))
    report = await rt.dispatcher.emit("crm.updated", {"id": 3})
    (outcome,) = report.outcomes
    assert (outcome.handler, outcome.status, outcome.attempts) == (
        "automation.sync", "dead_lettered", 2)
    assert "downstream is down" in (outcome.error or "")
    assert len(recorder.calls) == 2
    (letter,) = rt.dispatcher.dead_letters.list()
    assert (letter.handler, letter.event.id) == ("automation.sync", report.event_id)
    recorder.failing = False
    (redriven,) = await rt.dispatcher.dead_letters.redrive(rt.dispatcher)
    assert redriven.ok
    assert recorder.calls[-1] == ("test.flaky", {"id": 3})


async def test_attack_missing_template_path_fails_once_naming_the_path(
    make_runtime: Any,
) -> None:
    recorder = Recorder()
    rt = await make_runtime(ship("retry = { max_attempts = 5, initial = 0.001 }",
                                 region_filter=False),
                            app=recorder.app("test.record"))
    report = await rt.dispatcher.emit("orders.paid", {"total": 3})
    (outcome,) = report.outcomes
    assert outcome.status == "dead_lettered"
    assert outcome.attempts == 1  # bad input is not retried
    assert outcome.error == (
        "ActionInputError: automation 'ship': payload: ${event.payload.order.id} has no value: "
        "event.payload.order does not exist"
    )
    assert recorder.calls == []


@pytest.mark.parametrize(("template", "expected"), [
    ('"${event.payload.n}"', 3),
    ('"${event.payload.ratio}"', 0.5),
    ('"${event.payload.flag}"', True),
    ('"${event.payload.none}"', None),
    ('"${event.payload.items}"', [{"sku": "a"}, {"sku": "b"}]),
    ('"${event.payload.items.1.sku}"', "b"),
    ('"${event.payload}"', {"n": 3, "ratio": 0.5, "flag": True, "none": None,
                            "items": [{"sku": "a"}, {"sku": "b"}], "text": "hi"}),
    ('"n=${event.payload.n} flag=${event.payload.flag} none=${event.payload.none}"',
     "n=3 flag=true none=null"),
    ('"items=${event.payload.items}"', 'items=[{"sku":"a"},{"sku":"b"}]'),
    ('"literal $${event.payload.n} and ${event.payload.text}"',
     "literal ${event.payload.n} and hi"),
    ('"${event.topic}/${event.correlation_id}"', "calc.done/null"),
    ("42", 42),
    ('["${event.payload.n}", { deep = "${event.payload.text}" }, true]',
     [3, {"deep": "hi"}, True]),
])
async def test_template_values_keep_their_json_type(
    make_runtime: Any, template: str, expected: Any
) -> None:
    recorder = Recorder()
    rt = await make_runtime(textwrap.dedent(f"""
        [automations.t]
        on = "calc.done"
        run = "action:test.record"
        payload = {template}
    """), app=recorder.app("test.record"))
    report = await rt.dispatcher.emit("calc.done", {
        "n": 3, "ratio": 0.5, "flag": True, "none": None,
        "items": [{"sku": "a"}, {"sku": "b"}], "text": "hi",
    })
    assert report.ok, report
    assert recorder.calls == [("test.record", expected)]


async def test_without_a_payload_the_target_gets_the_event_payload(make_runtime: Any) -> None:
    recorder = Recorder()
    rt = await make_runtime('[automations.a]\non = "x.y"\nrun = "action:test.record"\n',
                            app=recorder.app("test.record"))
    await rt.dispatcher.emit("x.y", {"k": [1, 2]})
    assert recorder.calls == [("test.record", {"k": [1, 2]})]


async def test_an_event_target_publishes_a_follow_up_with_causation(make_runtime: Any) -> None:
    rt = await make_runtime(textwrap.dedent("""
        [automations.relay]
        on = "orders.paid"
        run = "event:invoices.due"
        payload = { order = "${event.payload.id}" }
    """))
    follow: list[Event] = []
    rt.dispatcher.subscribe("invoicer", lambda e, c: follow.append(e), topics="invoices.due")
    consumers = asyncio.ensure_future(rt.dispatcher.consume(2))
    try:
        report = await rt.dispatcher.emit("orders.paid", {"id": 9}, correlation_id="c-1")
        assert report.ok
        await apoll_until(lambda: len(follow) == 1, message="follow-up event")
    finally:
        consumers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumers
    (event,) = follow
    assert dict(event.payload) == {"order": 9}
    assert (event.causation_id, event.correlation_id) == (report.event_id, "c-1")
    assert event.headers == {"oneiric-automation-hops": "1"}


async def test_attack_an_automation_loop_stops_after_max_hops(make_runtime: Any) -> None:
    from oneiric.runtime._automations import MAX_HOPS

    rt = await make_runtime('[automations.loop]\non = "ping.*"\nrun = "event:ping.again"\n')
    seen: list[str] = []
    rt.dispatcher.subscribe("counter", lambda e, c: seen.append(e.id), topics="ping.*",
                            idempotent=True)
    consumers = asyncio.ensure_future(rt.dispatcher.consume(2))
    try:
        await rt.dispatcher.emit("ping.start", {})
        letters = await apoll_until(lambda: rt.dispatcher.dead_letters.list(),
                                    message="the loop's dead letter")
    finally:
        consumers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumers
    (letter,) = letters
    assert letter.handler == "automation.loop"
    assert "automation chain loops" in letter.error
    assert len(seen) == MAX_HOPS + 1  # the first event and MAX_HOPS follow-ups


async def test_a_workflow_target_without_the_workflow_action_is_a_clear_error(
    make_runtime: Any,
) -> None:
    rt = await make_runtime('[automations.w]\non = "a.b"\nrun = "workflow:onboard"\n')
    for candidate in rt.resolver.candidates("action", "workflow.orchestrate"):  # as if absent
        rt.resolver.unregister("action", "workflow.orchestrate", candidate.provider,
                               candidate.source.origin)
    (outcome,) = (await rt.dispatcher.emit("a.b", {})).outcomes
    assert outcome.status == "dead_lettered"
    assert outcome.error == (
        "ConfigError: automation 'w': run = 'workflow:onboard' needs the action "
        "'workflow.orchestrate', which is not registered; install a version of "
        "oneiric-runtime with workflows"
    )


async def test_a_workflow_target_invokes_workflow_orchestrate(make_runtime: Any) -> None:
    recorder = Recorder()

    def app(resolver: Resolver) -> None:
        recorder.app("workflow.orchestrate")(resolver)
        resolver.set_selections("action", {"workflow.orchestrate": "mem"})

    rt = await make_runtime(textwrap.dedent("""
        [automations.w]
        on = "users.created"
        run = "workflow:onboard"
        payload = { user = "${event.payload.id}" }
    """), app=app)
    assert (await rt.dispatcher.emit("users.created", {"id": "u1"})).ok
    assert recorder.calls == [("workflow.orchestrate",
                               {"workflow": "onboard", "input": {"user": "u1"}})]


async def test_automation_trigger_is_a_kit_with_its_own_input_checks(make_runtime: Any) -> None:
    from oneiric.actions import ActionInputError

    rt = await make_runtime(SHIP, app=Recorder().app("test.record"))
    event = Event("orders.paid", {"order": {"id": 1, "region": "eu"}}).as_dict()
    value = (await rt.actions.invoke("automation.trigger",
                                     {"automation": "ship", "event": event})).value
    assert value["target"] == "action:test.record"
    assert value["result"]["got"]["order_id"] == 1
    for payload, path in [({"automation": "nope", "event": event}, "automation"),
                          ({"automation": "ship", "event": {"topic": "a"}}, "event"),
                          ({"automation": "ship"}, "event"),
                          ({"automation": 3, "event": event}, "automation"),
                          ({"automation": "ship", "event": event, "x": 1}, "x")]:
        with pytest.raises(ActionInputError) as info:
            await rt.actions.invoke("automation.trigger", payload)
        assert info.value.path == path
        assert "\n" not in str(info.value)


BAD = [
    ('foo = 1', "automations.a.foo: unknown automation field"),
    ('#', "automations.a.on is required"),
    ('on = "a..b"', "automations.a.on: 'a..b' is not a topic pattern"),
    ('on = 5', "automations.a.on: 5 is not a topic pattern"),
    ('on = []', "automations.a.on: [] is not a topic pattern"),
    ('run = "shell:rm"', "automations.a.run: 'shell:rm' is not a target"),
    ('run = 3', "automations.a.run must be a string"),
    ('run = "event:orders.*"', "automations.a.run: 'orders.*' is not a topic to publish"),
    ('run = "action:Bad Key"', "automations.a.run: invalid action name 'Bad Key'"),
    ('run = "workflow:"', "automations.a.run: invalid workflow name ''"),
    ('filter = "x"', "automations.a.filter must be an object"),
    ('filter = { a = { near = 1 } }', "automations.a.filter.a: unknown test 'near'"),
    ('priority = "high"', "automations.a.priority must be an integer"),
    ('group = "Bad Group"', "automations.a.group: invalid group name"),
    ('timeout = "soon"', "automations.a.timeout"),
    ('timeout = -1', "automations.a.timeout"),
    ('retry = { tries = 3 }', "automations.a.retry"),
    ('retry = 3', "automations.a.retry must be a table"),
    ('payload = "${input.x}"', "automations.a.payload: ${input.x}: unknown reference root"),
    ('payload = { a = "${event.nope}" }', "automations.a.payload.a: ${event.nope}: the event "
                                          "has no field 'nope'"),
    ('payload = { a = "${event.topic.x}" }', "automations.a.payload.a: ${event.topic.x}: "
                                             "event.topic is a string"),
    ('payload = { a = "${event}" }', "automations.a.payload.a: ${event}: name a field"),
    ('payload = { a = "${event.payload..x}" }', "automations.a.payload.a: malformed reference"),
    ('payload = { a = "${event.payload.x" }', "automations.a.payload.a: unterminated reference"),
    ('payload = ["${ONEIRIC_SECRET_X}"]', "automations.a.payload[0]: ${ONEIRIC_SECRET_X}: "
                                          "unknown reference root"),
]


@pytest.mark.parametrize(("line", "expected"), BAD, ids=[b[0] for b in BAD])
async def test_attack_invalid_automation_is_one_line_naming_the_field(
    make_runtime: Any, line: str, expected: str
) -> None:
    fields = {"on": 'on = "orders.*"', "run": 'run = "action:debug.console"'}
    key = line.split(" ", 1)[0]
    if key == "#":
        fields.pop("on")
    else:
        fields[key] = line
    toml = "[automations.good]\non = \"x.y\"\nrun = \"action:debug.console\"\n\n"
    toml += "[automations.a]\n" + "\n".join(fields.values()) + "\n"
    with pytest.raises(ConfigError) as info:
        await make_runtime(toml)
    message = str(info.value)
    assert expected in message
    assert "oneiric.toml: " in message
    assert "\n" not in message


@pytest.mark.parametrize(("toml", "expected"), [
    ('[automations]\na = 3\n', "automations.a must be a table"),
    ('[automations."Bad Id"]\non = "a"\nrun = "action:x"\n',
     "automations.Bad Id: invalid automation name"),
    (f'[automations.{"x" * 60}]\non = "a"\nrun = "action:x"\n', "at most 53 characters"),
])
async def test_attack_invalid_automation_ids_and_tables(
    make_runtime: Any, toml: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        await make_runtime(toml)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


async def test_attack_an_invalid_automation_registers_none(tmp_path: Any) -> None:
    from oneiric.core import load_settings
    from oneiric.lifecycle import LifecycleManager
    from oneiric.runtime import dispatcher_for

    (tmp_path / "oneiric.toml").write_text(
        '[automations.ok]\non = "a.b"\nrun = "action:x"\n'
        '[automations.zz]\non = "a.b"\nrun = "nope"\n'
    )
    settings = load_settings(tmp_path, state_dir=tmp_path / "state")
    manager = LifecycleManager(Resolver(), settings=settings, activity_store=False,
                               write_status=False, state_dir=tmp_path / "state")
    try:
        with pytest.raises(ConfigError):
            dispatcher_for(manager)
        assert not manager.resolver.keys("event")  # 'ok' was valid, but nothing registered
    finally:
        await manager.shutdown()


def _oneiric(tmp_path: Any, toml: str, *args: str) -> Any:
    import os
    import subprocess
    import sys

    config = tmp_path / "cli-settings"
    config.mkdir(exist_ok=True)
    (config / "oneiric.toml").write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env |= {"ONEIRIC_STATE_DIR": str(tmp_path / "cli-state"), "ONEIRIC_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_route_and_emit_see_the_automation(tmp_path: Any) -> None:
    import json

    toml = textwrap.dedent("""
        [automations.ship]
        on = "orders.*"
        filter = { "order.region" = { equals = "eu" } }
        run = "action:debug.console"
        payload = { message = "order ${event.payload.order.id}" }
    """)
    proc = _oneiric(tmp_path, toml, "event", "route", "orders.paid", "--payload",
                    '{"order": {"id": 4, "region": "us"}}', "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decisions"] == [{
        "handler": "automation.ship", "group": "automation.ship", "runs": False,
        "reason": "filter order.region: 'us' is not 'eu'"}]
    proc = _oneiric(tmp_path, toml, "event", "emit", "orders.paid", "--payload",
                    '{"order": {"id": 4, "region": "eu"}}', "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcomes"][0]["status"] == "ok"
    assert '"message": "order 4"' in proc.stderr


def test_attack_cli_with_an_invalid_automation_exits_4_in_one_line(tmp_path: Any) -> None:
    proc = _oneiric(tmp_path, '[automations.a]\non = "x"\nrun = "shell:rm"\n',
                    "event", "handlers")
    assert proc.returncode == 4
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "automations.a.run: 'shell:rm' is not a target" in lines[0]


async def test_a_host_registers_automations_before_its_consumers_serve(tmp_path: Any) -> None:
    from oneiric.core import ConfigError
    from oneiric.lifecycle import Host
    from oneiric.runtime import dispatcher_for

    config = tmp_path / "host-settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(textwrap.dedent("""
        [automations.relay]
        on = "orders.paid"
        run = "event:invoices.due"
    """))
    async with Host(config, state_dir=tmp_path / "state", watch=False) as host:
        dispatcher = dispatcher_for(host.lifecycle)
        got: list[Event] = []
        dispatcher.subscribe("invoicer", lambda e, c: got.append(e), topics="invoices.due")
        await dispatcher.publish("orders.paid", {"id": 1})
        await apoll_until(lambda: len(got) == 1, message="relayed by the host's consumers")
    (config / "oneiric.toml").write_text('[automations.bad]\non = "x"\nrun = "nope"\n')
    with pytest.raises(ConfigError) as info:  # the settings' error, not "fix the plugin"
        async with Host(config, state_dir=tmp_path / "state", watch=False):
            pass
    assert "automations.bad.run: 'nope' is not a target" in str(info.value)
    assert "\n" not in str(info.value)
