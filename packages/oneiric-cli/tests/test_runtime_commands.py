"""status and health: reading what a running application publishes, and probing here."""

from __future__ import annotations

import asyncio
import textwrap


def test_status_without_running_applications(oneiric, workspace):
    result = oneiric("status")
    assert result.code == 0, result.err
    assert "no running application publishes status" in result.out
    data = oneiric("status", "--json").json()
    assert data == {"state_dir": str(workspace.state), "processes": [], "skipped": [],
                    "control_plane": {"provider": "local", "state": "ok", "revision": 0}}


def _with_running_app(workspace, check):
    """Run ``check()`` while an in-process LifecycleManager publishes status."""
    import importlib.util
    import sys

    from oneiric.core import Resolver
    from oneiric.lifecycle import ActivityStore, LifecycleManager

    spec = importlib.util.spec_from_file_location("cliapp", workspace.cwd / "cliapp.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cliapp"] = module
    spec.loader.exec_module(module)

    async def main():
        resolver = Resolver()
        module.register(resolver)
        store = ActivityStore(workspace.state / "activity.sqlite")
        lifecycle = LifecycleManager(resolver, activity_store=store, state_dir=workspace.state)
        try:
            await lifecycle.activate("notify", "mailer")
            await lifecycle.probe("notify", "mailer")
            lifecycle.write_status()
            return check()
        finally:
            await lifecycle.shutdown()
            store.close()

    return asyncio.run(main())


def test_status_and_health_read_the_running_applications_snapshot(oneiric, workspace):
    def check():
        return oneiric("status", "--json"), oneiric("health", "--json"), oneiric("status")

    status, health, human = _with_running_app(workspace, check)
    assert status.code == 0, status.err
    (process,) = status.json()["processes"]
    assert process["alive"] is True
    (key,) = process["keys"]
    assert (key["domain"], key["key"], key["bound"], key["winner"]) == (
        "notify", "mailer", "smtp", "smtp")
    assert health.code == 0, health.err
    checks = health.json()
    assert checks["mode"] == "snapshot" and checks["ok"] is True
    assert checks["checks"][0]["provider"] == "smtp" and checks["checks"][0]["ok"] is True
    assert "notify/mailer" in human.out and "smtp" in human.out


def test_health_probe_here(oneiric, workspace):
    result = oneiric("health", "--probe", "--domain", "notify", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["mode"] == "probe" and data["ok"] is True
    assert {(c["key"], c["provider"], c["ok"]) for c in data["checks"]} == {
        ("mailer", "smtp", True), ("sms", "twilio", True)}


def test_health_probe_failure_exit_5(oneiric, workspace):
    (workspace.config / "oneiric.toml").write_text(textwrap.dedent("""
        [notify.selections]
        mailer = "broken"
    """))
    result = oneiric("health", "--probe", "--domain", "notify", "--json")
    assert result.code == 5
    data = result.json()
    assert data["ok"] is False
    failed = [c for c in data["checks"] if not c["ok"]]
    assert [c["provider"] for c in failed] == ["broken"]
