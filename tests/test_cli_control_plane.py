"""The CLI as a control plane for another, real process.

An application process runs a ``LifecycleManager`` and a ``SelectionWatcher``
on a state dir and config dir; separate ``oneiric`` processes swap and pause
through the same directories.  Every assertion is about an eventual state,
polled with a 30 s ceiling - never about how long anything took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from oneiric.testing import poll_until

APP = textwrap.dedent('''
    """An application: candidates in code, lifecycle + watcher, a lease loop reporting to a file."""
    import asyncio
    import json
    import os
    import sys
    from pathlib import Path

    from oneiric.core import ComponentDraining, ComponentPaused, Candidate, Resolver, load_settings
    from oneiric.lifecycle import (
        ActivityStore, DomainBridge, LifecycleConfig, LifecycleManager, SelectionWatcher,
    )


    class Plain:
        def greet(self):
            return "hello"


    class Fancy:
        def greet(self):
            return "good day"


    def register(resolver):
        resolver.register(Candidate("ctl", "greeter", "plain", "ctlapp:Plain", priority=20))
        resolver.register(Candidate("ctl", "greeter", "fancy", "ctlapp:Fancy"))


    def write(path, data):
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)


    async def main(config, state, report):
        resolver = Resolver()
        register(resolver)
        settings = load_settings(config, state_dir=state)
        settings.apply(resolver)
        store = ActivityStore(Path(state) / "activity.sqlite")
        lifecycle = LifecycleManager(
            resolver, settings=settings, activity_store=store, state_dir=state,
            config=LifecycleConfig(activity_poll_interval=0.05, status_interval=0.05,
                                   grace_period=0.0, watch_poll_interval=0.05),
        )
        watcher = SelectionWatcher(config, None, resolver, lifecycle=lifecycle, state_dir=state,
                                   use_watchfiles=False)
        await watcher.start()
        await lifecycle.activate("ctl", "greeter")
        bridge = DomainBridge("ctl", lifecycle)
        counts = {"ok": 0, "refused": 0, "refused_with": None, "greeting": None}
        stop = Path(state) / "stop"
        while not stop.exists():
            try:
                async with bridge.lease("greeter") as greeter:
                    counts["greeting"] = greeter.greet()
                    counts["ok"] += 1
            except (ComponentPaused, ComponentDraining) as exc:
                counts["refused"] += 1
                counts["refused_with"] = type(exc).__name__
            write(report, counts)
            await asyncio.sleep(0.02)
        await watcher.stop()
        await lifecycle.shutdown()
        store.close()


    if __name__ == "__main__":
        asyncio.run(main(*sys.argv[1:4]))
''')


def _cli(workdir: Path, state: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", "--state-dir", str(state), "--config", str(config),
         "--app", "ctlapp:register", *args],
        cwd=workdir, capture_output=True, text=True, timeout=120, check=False,
    )


def _report(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _status_key(workdir: Path, state: Path, config: Path, pid: int) -> dict[str, Any]:
    """The app's status entry for ctl/greeter, as ``oneiric status --json`` shows it."""
    result = _cli(workdir, state, config, "status", "--json")
    assert result.returncode == 0, result.stderr
    for process in json.loads(result.stdout)["processes"]:
        if process["pid"] == pid:
            for key in process["keys"]:
                if (key["domain"], key["key"]) == ("ctl", "greeter"):
                    return key
    return {}


@pytest.fixture
def app(tmp_path: Path):
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "ctlapp.py").write_text(APP)
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text("[ctl.swap_policy]\ngreeter = 'sticky'\n")
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen(
        [sys.executable, "ctlapp.py", str(config), str(state), str(report)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield proc, workdir, state, config, report
    finally:
        (state / "stop").touch()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_cli_swap_and_pause_reach_a_running_application(app):
    proc, workdir, state, config, report = app

    def running_with(provider: str) -> bool:
        assert proc.poll() is None, (report.parent / "app.log").read_text()
        return _status_key(workdir, state, config, proc.pid).get("bound") == provider

    poll_until(lambda: running_with("plain"), timeout=30, message="the app to bind 'plain'")
    poll_until(lambda: _report(report).get("greeting") == "hello", timeout=30,
               message="the app to serve 'plain'")

    swap = _cli(workdir, state, config, "swap", "ctl", "greeter", "fancy", "--validate", "--json")
    assert swap.returncode == 0, swap.stderr
    assert json.loads(swap.stdout)["provider"] == "fancy"
    poll_until(lambda: running_with("fancy"), timeout=30, message="the app to apply the swap")
    poll_until(lambda: _report(report).get("greeting") == "good day", timeout=30,
               message="leases to get the new provider")

    pause = _cli(workdir, state, config, "pause", "ctl", "greeter", "--note", "test")
    assert pause.returncode == 0, pause.stderr
    refused = poll_until(lambda: _report(report).get("refused", 0) > 0 and _report(report),
                         timeout=30, message="the app to refuse leases")
    assert refused["refused_with"] == "ComponentPaused"
    poll_until(
        lambda: _status_key(workdir, state, config, proc.pid)["activity"]["state"] == "paused",
        timeout=30, message="status to show the pause",
    )

    # a swap while paused is refused by the CLI (exit 5), the app keeps its provider
    refused_swap = _cli(workdir, state, config, "swap", "ctl", "greeter", "plain")
    assert refused_swap.returncode == 5
    assert refused_swap.stderr.strip().startswith("Error: ") and "paused" in refused_swap.stderr

    resume = _cli(workdir, state, config, "resume", "ctl", "greeter")
    assert resume.returncode == 0, resume.stderr
    served = _report(report).get("ok", 0)
    poll_until(lambda: _report(report).get("ok", 0) > served + 5, timeout=30,
               message="leases to be accepted again after resume")
    assert proc.poll() is None
