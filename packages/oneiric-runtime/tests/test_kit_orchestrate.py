"""``workflow.orchestrate``: run or start a workflow through ``Actions.invoke`` on a real lifecycle.

The kit reaches the engine of the invoking lifecycle (``engine_for``, SQLite
checkpoints in the test's state dir); nodes are small real actions.  Covered:
wait (the ``RunResult`` dict, a failed run as data), no wait (the task held by
the engine's owner, cancelled at host shutdown and recovered by the next
host), the call's idempotency key as the run id (a repeat never runs a node
twice), every bad field an ``ActionInputError`` naming it with no run written,
and an automation with ``run = "workflow:<id>"`` starting a run end to end.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from oneiric.actions import ActionContext, ActionInputError, ActionSpec
from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import Host
from oneiric.runtime import engine_for
from oneiric.runtime._host import background_runs
from oneiric.runtime._kits.orchestrate import default_run_id
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

ONBOARD = """\
id = "onboard"

[[nodes]]
id = "greet"
action = "t.step"
input = { user = "${input.user}" }

[[nodes]]
id = "welcome"
action = "t.step"
needs = ["greet"]
input = { prev = "${nodes.greet.output.got}" }
"""


class Step:
    """Records (run id, node, payload); waits on ``gate`` when the payload names one."""

    spec = ActionSpec(side_effects=False, idempotent=True)
    calls: ClassVar[list[tuple[str, str, Any]]] = []
    gate: ClassVar[asyncio.Event | None] = None

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        Step.calls.append((context.run_id or "", context.node_id or "", payload))
        if isinstance(payload, dict) and payload.get("user") == "slow" and Step.gate:
            await Step.gate.wait()
        if isinstance(payload, dict) and payload.get("user") == "bad":
            raise RuntimeError("no such user")
        return {"got": payload}


@pytest.fixture(autouse=True)
def reset() -> None:
    Step.calls = []
    Step.gate = None


def register_step(resolver: Resolver) -> None:
    resolver.register(Candidate("action", "t.step", "test", Step))


async def runtime_with_onboard(make_runtime: Any, tmp_path: Path, toml: str = "") -> Any:
    rt = await make_runtime(toml, app=register_step)
    folder = tmp_path / f"settings-{_made(tmp_path)}" / "workflows"
    folder.mkdir()
    (folder / "onboard.toml").write_text(ONBOARD)
    # the file came after the settings were applied: load them again, as the watcher would
    from oneiric.core import load_settings

    settings = load_settings(folder.parent, state_dir=tmp_path / "state")
    settings.apply(rt.lifecycle.resolver)
    rt.lifecycle.set_settings(settings)
    assert "onboard" in engine_for(rt.lifecycle).workflows()
    return rt


def _made(tmp_path: Path) -> int:
    return len(list(tmp_path.glob("settings-*"))) - 1


async def test_wait_returns_the_run_result_with_outputs(make_runtime: Any, tmp_path: Path) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path)
    value = (await rt.actions.invoke(
        "workflow.orchestrate", {"workflow": "onboard", "input": {"user": "u1"},
                                 "run_id": "r-1"})).value
    assert value["run_id"] == "r-1" and value["status"] == "succeeded"
    assert value["outputs"] == {"greet": {"got": {"user": "u1"}},
                                "welcome": {"got": {"prev": {"user": "u1"}}}}
    assert value["nodes"]["welcome"]["attempts"] == 1
    assert engine_for(rt.lifecycle).status("r-1").ok  # the durable record the CLI reads


async def test_a_failed_run_is_a_result_not_an_error(make_runtime: Any, tmp_path: Path) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path)
    value = (await rt.actions.invoke(
        "workflow.orchestrate", {"workflow": "onboard", "input": {"user": "bad"}})).value
    assert value["status"] == "failed"
    assert value["nodes"]["greet"]["status"] == "failed"
    assert value["nodes"]["welcome"]["status"] == "skipped"
    assert "no such user" in value["error"]


async def test_attack_repeated_call_with_one_idempotency_key_runs_no_node_twice(
    make_runtime: Any, tmp_path: Path
) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path)
    body = {"workflow": "onboard", "input": {"user": "u1"}}
    first = (await rt.actions.invoke("workflow.orchestrate", body,
                                     idempotency_key="order-7")).value
    again = (await rt.actions.invoke("workflow.orchestrate", body,
                                     idempotency_key="order-7")).value
    assert first["run_id"] == again["run_id"] == "order-7"
    assert again["outputs"] == first["outputs"]
    assert [c[1] for c in Step.calls] == ["greet", "welcome"]  # the repeat ran nothing


@pytest.mark.parametrize("key", ["x" * 300, "has space", "é-unicode", "/leading-slash"])
def test_an_idempotency_key_that_is_no_run_id_becomes_a_stable_digest(key: str) -> None:
    run_id = default_run_id(key)
    assert run_id == default_run_id(key) and run_id.startswith("key-") and len(run_id) == 68
    assert default_run_id(key + "!") != run_id


async def test_no_wait_returns_at_once_and_the_run_finishes_in_the_background(
    make_runtime: Any, tmp_path: Path
) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path)
    Step.gate = asyncio.Event()
    value = (await rt.actions.invoke(
        "workflow.orchestrate", {"workflow": "onboard", "input": {"user": "slow"},
                                 "run_id": "bg-1", "wait": False})).value
    assert value == {"run_id": "bg-1", "status": "running"}
    engine = engine_for(rt.lifecycle)
    (task,) = background_runs(rt.lifecycle)  # held: not garbage collected mid-run
    assert engine.status("bg-1").status == "running"
    Step.gate.set()
    await apoll_until(lambda: engine.status("bg-1").ok, message="the background run")
    await apoll_until(lambda: not background_runs(rt.lifecycle), message="task released")
    assert task.done() and [c[1] for c in Step.calls] == ["greet", "welcome"]


@pytest.mark.parametrize(
    ("payload", "path", "fragment"),
    [
        ({}, "workflow", "payload field workflow is required"),
        ({"workflow": 3}, "workflow", "payload field workflow must be"),
        ({"workflow": "nosuch"}, "workflow", "no workflow 'nosuch'; known: onboard"),
        ({"workflow": "onboard", "wait": "yes"}, "wait", "payload field wait must be"),
        ({"workflow": "onboard", "run_id": "bad id!"}, "run_id", "run_id 'bad id!' is not valid"),
        ({"workflow": "onboard", "run_id": 5}, "run_id", "payload field run_id must be"),
        ({"workflow": "onboard", "input": {"x": float("nan")}}, "input", "run input is not JSON"),
        ({"workflow": "onboard", "input": {1: "x"}}, "input", "run input is not JSON"),
        ({"workflow": "onboard", "input": {"x": float("inf")}, "wait": False}, "input",
         "run input is not JSON"),
        ({"workflow": "onboard", "extra": 1}, "", "extra"),
    ],
)
async def test_attack_bad_payload_is_one_input_error_and_writes_no_run(
    make_runtime: Any, tmp_path: Path, payload: dict[str, Any], path: str, fragment: str
) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path)
    with pytest.raises(ActionInputError) as info:
        await rt.actions.invoke("workflow.orchestrate", payload)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    if path:
        assert info.value.path == path
    assert engine_for(rt.lifecycle).runs() == [] and Step.calls == []
    assert not background_runs(rt.lifecycle)


async def test_an_automation_starts_a_workflow_end_to_end(
    make_runtime: Any, tmp_path: Path
) -> None:
    rt = await runtime_with_onboard(make_runtime, tmp_path, textwrap.dedent("""
        [automations.w]
        on = "users.created"
        run = "workflow:onboard"
        payload = { user = "${event.payload.id}" }
    """))
    report = await rt.dispatcher.emit("users.created", {"id": "u1"}, id="ev-1")
    assert report.ok, report
    engine = engine_for(rt.lifecycle)
    (record,) = engine.runs()
    assert record.run_id == "automation/w/ev-1"  # the trigger's idempotency key
    assert record.input == {"user": "u1"} and record.status == "succeeded"
    assert engine.status(record.run_id).outputs["welcome"] == {"got": {"prev": {"user": "u1"}}}
    again = await rt.dispatcher.emit("users.created", {"id": "u1"}, id="ev-1")  # redelivery
    assert again.outcomes[0].status in ("ok", "duplicate")
    assert len(engine.runs()) == 1 and len(Step.calls) == 2  # no second run, no node twice


HOST_APP = "test_kit_orchestrate:register_step"


async def test_host_shutdown_cancels_a_background_run_and_the_next_host_recovers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    config = tmp_path / "settings"
    (config / "workflows").mkdir(parents=True)
    (config / "oneiric.toml").write_text("[lifecycle]\nhealth_interval = 0\n")
    (config / "workflows" / "onboard.toml").write_text(ONBOARD)
    state = tmp_path / "state"
    Step.gate = asyncio.Event()
    async with Host(config, state_dir=state, watch=False, app=register_step) as host:
        from oneiric.actions import Actions

        value = (await Actions(host.lifecycle).invoke(
            "workflow.orchestrate", {"workflow": "onboard", "input": {"user": "slow"},
                                     "run_id": "held", "wait": False})).value
        assert value["status"] == "running"
        await apoll_until(lambda: len(Step.calls) == 1, message="greet in flight")
        (task,) = background_runs(host.lifecycle)
    assert task.cancelled()  # cancelled by the workflow service, not left running
    engine_state = Host(config, state_dir=state, watch=False, app=register_step)
    Step.gate.set()
    async with engine_state as host:
        engine = engine_for(host.lifecycle)
        await apoll_until(lambda: engine.status("held").ok, message="recovered at start")
        done = engine.status("held")
    assert done.nodes["greet"].attempts == 2  # cancelled in flight, ran once more
    assert [c[1] for c in Step.calls] == ["greet", "greet", "welcome"]


async def test_attack_a_kit_run_lands_in_the_lifecycles_state_dir_not_the_users(
    make_runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first engine_for() of a lifecycle is the kit's: it must use that lifecycle's
    state dir (the CLI's --state-dir, a Host's), not the process default."""
    elsewhere = tmp_path / "default-state"
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(elsewhere))
    rt = await make_runtime(app=register_step)
    rt.lifecycle.resolver.register(Candidate("workflow", "one", "test", lambda: {
        "nodes": [{"id": "a", "action": "t.step"}]}))
    value = (await rt.actions.invoke("workflow.orchestrate", {"workflow": "one"})).value
    assert value["status"] == "succeeded"
    assert (tmp_path / "state" / "workflows.sqlite").exists()
    assert not (elsewhere / "workflows.sqlite").exists()
