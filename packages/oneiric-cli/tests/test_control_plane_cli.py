"""The CLI writes and reads through the control plane the settings files select (§12).

Real processes for the plugin cases (entry points are only real there), real
files for the ``local`` plane; every refusal is one line with its exit code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oneiric.testing import install_plugin

FAKE_PLANE = '''
import json
from pydantic import BaseModel, ConfigDict
from oneiric.core import hookimpl
from oneiric.lifecycle import Change, DesiredState, Instances


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log: str


class FakePlane:
    provider = "fake"
    where = "fake://plane"

    def __init__(self, settings, *, state_dir=None):
        self.log = settings.log

    def _record(self, **entry):
        with open(self.log, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\\n")

    def select(self, domain, key, provider, *, tenant=None, actor=None, expect_revision=None):
        self._record(op="select", domain=domain, key=key, provider=provider)
        return Change(domain, key, tenant, "select", provider, None, 8, "fake", 0.0,
                      where=self.where)

    def set_activity(self, domain, key, state, *, note="", actor=None, expect_revision=None):
        self._record(op="activity", domain=domain, key=key, state=state, note=note,
                     expect_revision=expect_revision)
        return Change(domain, key, None, "pause", state, "active", 8, "fake", 0.0, note,
                      self.where)

    def desired(self):
        return DesiredState(revision=8)

    def instances(self, *, include_lost=False):
        return Instances()

    def describe(self):
        return {"provider": "fake", "state": "ok", "revision": 8}

    def wait(self, change, *, timeout):
        return ()

    def attach(self, host):
        raise NotImplementedError

    def close(self):
        pass


@hookimpl
def oneiric_register(registry):
    registry.register(domain="control", key="plane", provider="fake", priority=0,
                      factory="oneiric_fakeplane:FakePlane",
                      settings_model="oneiric_fakeplane:Settings")
'''

Run = Callable[..., Any]


def _select_fake(workspace: Any, log: Path) -> None:
    (workspace.config / "oneiric.toml").write_text(
        '[control.selections]\nplane = "fake"\n'
        f'[control.provider_settings.plane.fake]\nlog = "{log}"\n', encoding="utf-8")


@pytest.fixture
def with_fake(workspace: Any, oneiric_proc: Run) -> Run:
    """``oneiric_proc`` with the fake plane's distribution installed on the path."""
    site = workspace.root / "site"
    install_plugin(site, "oneiric-fakeplane", FAKE_PLANE)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))

    def run(*args: str) -> Any:
        return oneiric_proc(*args, env={"PYTHONPATH": path})

    return run


def test_settings_select_the_fake_plane_and_pause_goes_to_it(
    workspace: Any, with_fake: Run
) -> None:
    log = workspace.root / "fake.log"
    _select_fake(workspace, log)
    paused = with_fake("pause", "notify", "mailer", "--note", "deploy", "--expect-revision", "8")
    assert paused.code == 0, paused.err
    swapped = with_fake("swap", "notify", "mailer", "smtp")
    assert swapped.code == 0, swapped.err
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        {"op": "activity", "domain": "notify", "key": "mailer", "state": "paused",
         "note": "deploy", "expect_revision": 8},
        {"op": "select", "domain": "notify", "key": "mailer", "provider": "smtp"},
    ]
    assert not (workspace.state / "activity.sqlite").exists()
    assert not (workspace.state / "selections.json").exists()
    status = with_fake("status", "--json")
    assert status.code == 0, status.err
    assert status.json()["control_plane"] == {"provider": "fake", "state": "ok", "revision": 8}


def test_the_overlay_cannot_select_the_plane(workspace: Any, with_fake: Run) -> None:
    (workspace.state / "selections.json").write_text(
        json.dumps({"selections": {"control": {"plane": "fake"}}, "tenants": {}}))
    result = with_fake("pause", "notify", "mailer")
    assert result.code == 0, result.err
    assert (workspace.state / "activity.sqlite").exists(), "the local plane took the pause"


@pytest.mark.parametrize("command", ["swap", "pause", "drain", "resume"])
def test_domain_control_is_refused(workspace: Any, oneiric_inproc: Run, command: str) -> None:
    args = [command, "control", "plane"] + (["local"] if command == "swap" else [])
    result = oneiric_inproc(*args)
    assert result.code == 6
    assert "reserved for the control plane" in result.error_line()
    assert not (workspace.state / "selections.json").exists()
    assert not (workspace.state / "activity.sqlite").exists()


def test_unknown_plane_is_one_line_exit_4(workspace: Any, oneiric_inproc: Run) -> None:
    (workspace.config / "oneiric.toml").write_text('[control.selections]\nplane = "nope"\n')
    for args in (["pause", "notify", "mailer"], ["status"]):
        result = oneiric_inproc(*args)
        assert result.code == 4, result.err
        line = result.error_line()
        assert "'nope'" in line and "installed: local" in line


def test_local_compare_and_set(workspace: Any, oneiric_inproc: Run) -> None:
    assert oneiric_inproc("swap", "notify", "mailer", "smtp").code == 0
    stale = oneiric_inproc("swap", "notify", "mailer", "sendgrid", "--expect-revision", "0")
    assert stale.code == 6 and "revision 1, not the expected 0" in stale.error_line()
    fresh = oneiric_inproc("swap", "notify", "mailer", "sendgrid", "--expect-revision", "1")
    assert fresh.code == 0, fresh.err
    unsupported = oneiric_inproc("pause", "notify", "mailer", "--expect-revision", "2")
    assert unsupported.code == 2 and "--expect-revision" in unsupported.error_line()
    assert not (workspace.state / "activity.sqlite").exists()
    status = oneiric_inproc("status", "--json")
    assert status.json()["control_plane"] == {"provider": "local", "state": "ok", "revision": 2}


def test_local_refuses_wait_before_writing_anything(workspace: Any, oneiric_inproc: Run) -> None:
    refused = oneiric_inproc("pause", "notify", "mailer", "--wait")
    assert refused.code == 5 and "nothing was written" in refused.error_line()
    assert "local control plane" in refused.error_line()
    assert not (workspace.state / "activity.sqlite").exists()
    swapped = oneiric_inproc("swap", "notify", "mailer", "smtp", "--wait", "--timeout", "1")
    assert swapped.code == 5 and not (workspace.state / "selections.json").exists()
    bad = oneiric_inproc("pause", "notify", "mailer", "--wait", "--timeout", "0")
    assert bad.code == 2 and "--timeout" in bad.err


@pytest.mark.parametrize(("args", "message"), [
    (("--canary", "ten"), "not a percentage"),
    (("--canary", "0%"), "not in (0, 100]%"),
    (("--canary", "150%"), "not in (0, 100]%"),
    (("--canary", "10%", "--bake", "soon"), "--bake"),
])
def test_bad_canary_options_are_refused_in_one_line(
    workspace: Any, oneiric_inproc: Run, args: tuple[str, ...], message: str,
) -> None:
    done = oneiric_inproc("swap", "notify", "mailer", "smtp", *args)
    assert done.code == 2 and message in done.err
    assert not (workspace.state / "selections.json").exists()


def test_a_canary_needs_a_fleet_plane(workspace: Any, oneiric_inproc: Run) -> None:
    done = oneiric_inproc("swap", "notify", "mailer", "smtp", "--canary", "10%")
    assert done.code == 2 and "needs a fleet control plane" in done.error_line()
    assert not (workspace.state / "selections.json").exists()
    cleared = oneiric_inproc("swap", "notify", "mailer", "--clear", "--canary", "10%")
    assert cleared.code == 2 and "--canary needs a PROVIDER" in cleared.err
