"""The ``ControlPlane`` protocol, its ``local`` provider and its resolution (ARCHITECTURE §12).

Real files throughout: the overlay, the SQLite activity store and the status
snapshots in the per-test state dir; a second provider is a real candidate
whose factory records what it was asked, so the tests prove that the ``Host``
uses whichever plane the settings files select, and nothing else.
"""

from __future__ import annotations

import json
import tomllib
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from oneiric.core import (
    Candidate,
    ConfigError,
    FactoryError,
    OneiricError,
    PluginRegistry,
    Resolver,
    Source,
    load_settings,
    read_overlay,
)
from oneiric.core.helpers import ACTIVITY_FILE, OVERLAY_FILE, exit_code_for
from oneiric.lifecycle import (
    ActivityStore,
    Change,
    ControlPlane,
    Host,
    LifecycleManager,
    LocalControlPlane,
    control_plane,
)
from oneiric.lifecycle._control import DesiredState, Instances, PlaneDescription
from oneiric.testing import install_plugin

pytestmark = pytest.mark.anyio


class FakePlane:
    """A second provider: records every call; ``attach`` journals enter/exit."""

    provider = "fake"
    where = "fake://plane"
    built: ClassVar[list[FakePlane]] = []

    def __init__(self, settings: object = None, *, state_dir: object = None) -> None:
        self.settings = settings
        self.calls: list[tuple[str, ...]] = []
        FakePlane.built.append(self)

    def select(self, domain: str, key: str, provider: str | None, **kw: Any) -> Change:
        self.calls.append(("select", domain, key, str(provider)))
        return Change(domain, key, None, "select", provider, None, 1, "me", 0.0)

    def set_activity(self, domain: str, key: str, state: Any, **kw: Any) -> Change:
        self.calls.append(("activity", domain, key, state))
        return Change(domain, key, None, "pause", state, "active", 1, "me", 0.0)

    def desired(self) -> DesiredState:
        return DesiredState()

    def instances(self, *, include_lost: bool = False) -> Instances:
        return Instances()

    def describe(self) -> PlaneDescription:
        return {"provider": "fake", "state": "ok", "revision": 1}

    def wait(self, change: Change, *, timeout: float) -> tuple[Any, ...]:
        return ()

    def attach(self, host: Host) -> Any:
        @asynccontextmanager
        async def attached() -> Any:
            self.calls.append(("attach", type(host.lifecycle).__name__))
            yield self
            self.calls.append(("detach",))

        return attached()

    def close(self) -> None:
        self.calls.append(("close",))


class FakeSettings(BaseModel):
    """The fake plane's settings: ``[control.provider_settings.plane.fake]``."""

    model_config = ConfigDict(extra="forbid")
    url: str = "fake://default"


FAKE = Candidate("control", "plane", "fake", FakePlane, priority=0)


@pytest.fixture(autouse=True)
def _forget_fakes() -> None:
    FakePlane.built.clear()


def _settings(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "settings"
    config.mkdir(exist_ok=True)
    (config / "oneiric.toml").write_text(text, encoding="utf-8")
    return config


# ------------------------------------------------------------- local provider


def test_default_is_local_and_implements_the_protocol(state: Path) -> None:
    plane = control_plane(None)
    assert isinstance(plane, LocalControlPlane) and isinstance(plane, ControlPlane)
    assert plane.describe() == {"provider": "local", "state": "ok", "revision": 0}
    assert plane.desired() == DesiredState(revision=0)
    assert not state.exists(), "reading the plane must not create the state dir"


def test_select_writes_the_overlay_and_returns_a_change(state: Path) -> None:
    plane = control_plane(None, state_dir=state)
    first = plane.select("adapter", "cache", "redis", actor="ops")
    assert (first.action, first.value, first.previous, first.revision) == (
        "select", "redis", None, 1)
    assert first.actor == "ops" and first.where == str(state / OVERLAY_FILE)
    second = plane.select("adapter", "cache", "memory", tenant="acme")
    assert (second.tenant, second.previous, second.revision) == ("acme", None, 2)
    cleared = plane.select("adapter", "cache", None)
    assert (cleared.action, cleared.value, cleared.previous) == ("clear", None, "redis")
    assert read_overlay(state) == {
        "selections": {"adapter": {}}, "tenants": {"adapter": {"acme": {"cache": "memory"}}}}
    desired = plane.desired()
    assert desired.revision == 3 and desired.selection("adapter", "cache", tenant="acme") == (
        "memory")
    with pytest.raises(AttributeError):
        first.value = "other"  # type: ignore[misc]


def test_expect_revision_is_a_compare_and_set_on_the_overlay(state: Path) -> None:
    plane = control_plane(None)
    plane.select("adapter", "cache", "redis")
    before = (state / OVERLAY_FILE).read_bytes()
    with pytest.raises(OneiricError) as stale:
        plane.select("adapter", "cache", "memory", expect_revision=0)
    assert exit_code_for(stale.value) == 6 and "revision 1, not the expected 0" in str(stale.value)
    assert (state / OVERLAY_FILE).read_bytes() == before, "a stale write changes nothing"
    assert plane.select("adapter", "cache", "memory", expect_revision=1).revision == 2


def test_activity_goes_to_the_shared_store(state: Path) -> None:
    plane = control_plane(None)
    change = plane.set_activity("adapter", "cache", "paused", note="deploy", actor="ops")
    assert (change.action, change.value, change.previous, change.note) == (
        "pause", "paused", "active", "deploy")
    assert change.revision is None and change.where == str(state / ACTIVITY_FILE)
    with ActivityStore(state / ACTIVITY_FILE) as store:
        assert store.get("adapter", "cache").state == "paused"
    assert plane.desired().activity[("adapter", "cache")].note == "deploy"
    resumed = plane.set_activity("adapter", "cache", "active")
    assert (resumed.action, resumed.previous) == ("resume", "paused")
    assert plane.desired().activity == {}
    plane.close()
    plane.close()  # idempotent


def test_what_local_cannot_honour_is_one_line_with_its_exit_code(state: Path) -> None:
    plane = control_plane(None)
    with pytest.raises(OneiricError) as cas:
        plane.set_activity("adapter", "cache", "paused", expect_revision=3)
    assert exit_code_for(cas.value) == 2 and "\n" not in str(cas.value)
    assert not (state / ACTIVITY_FILE).exists()
    change = plane.select("adapter", "cache", "redis")
    with pytest.raises(OneiricError) as wait:
        plane.wait(change, timeout=1)
    assert exit_code_for(wait.value) == 5 and "not supported by the local control plane" in str(
        wait.value)
    with pytest.raises(OneiricError) as missing:
        LocalControlPlane(state_dir=state / "nope").instances()
    assert exit_code_for(missing.value) == 3


def test_instances_are_the_status_snapshots(state: Path) -> None:
    (state / "status").mkdir(parents=True)
    (state / "status" / "junk.json").write_text("{", encoding="utf-8")
    found = control_plane(None).instances()
    assert found.documents == () and len(found.skipped) == 1


# ------------------------------------------------------------- reserved domain


@pytest.mark.parametrize("write", ["select", "activity"])
def test_domain_control_is_refused(state: Path, write: str) -> None:
    plane = control_plane(None)
    with pytest.raises(OneiricError) as refused:
        if write == "select":
            plane.select("control", "plane", "fake")
        else:
            plane.set_activity("control", "plane", "paused")
    assert exit_code_for(refused.value) == 6 and "reserved" in str(refused.value)
    assert not (state / OVERLAY_FILE).exists() and not (state / ACTIVITY_FILE).exists()


async def test_lifecycle_never_activates_domain_control(resolver: Resolver) -> None:
    resolver.register(FAKE)
    lifecycle = LifecycleManager(resolver, write_status=False, activity_store=False)
    with pytest.raises(OneiricError) as refused:
        await lifecycle.activate("control", "plane")
    assert exit_code_for(refused.value) == 6
    await lifecycle.shutdown()


# ------------------------------------------------------------------ resolution


def test_local_plugin_registers_priority_100() -> None:
    from oneiric.lifecycle._plugin import oneiric_register

    registry = PluginRegistry(Source("entry_point", "oneiric-lifecycle", "0.1.0"))
    oneiric_register(registry)
    (local,) = registry.candidates
    assert (local.domain, local.key, local.provider, local.priority) == (
        "control", "plane", "local", 100)
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    entry = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["oneiric"]
    assert entry == {"lifecycle": "oneiric.lifecycle._plugin"}


def test_priority_0_provider_waits_for_a_selection(tmp_path: Path, state: Path) -> None:
    resolver = Resolver(stack_order={})
    resolver.register(FAKE)
    assert isinstance(control_plane(None, resolver=resolver), LocalControlPlane)
    config = _settings(tmp_path, '[control.selections]\nplane = "fake"\n')
    plane = control_plane(load_settings(config), resolver=resolver)
    assert isinstance(plane, FakePlane)


def test_the_overlay_never_selects_the_plane(tmp_path: Path, state: Path) -> None:
    state.mkdir(mode=0o700)
    (state / OVERLAY_FILE).write_text(json.dumps(
        {"selections": {"control": {"plane": "fake"}}, "tenants": {}}), encoding="utf-8")
    resolver = Resolver(stack_order={})
    resolver.register(FAKE)
    settings = load_settings(None, state_dir=state)
    settings.apply(resolver)
    assert resolver.selections("control") == {}
    assert isinstance(control_plane(settings, resolver=resolver), LocalControlPlane)


def test_unknown_provider_is_a_one_line_config_error(tmp_path: Path) -> None:
    config = _settings(tmp_path, '[control.selections]\nplane = "redis"\n')
    with pytest.raises(ConfigError) as bad:
        control_plane(load_settings(config), resolver=Resolver())
    text = str(bad.value)
    assert "'redis'" in text and "installed: local" in text and "\n" not in text
    assert exit_code_for(bad.value) == 4


def test_provider_settings_come_from_the_control_section(tmp_path: Path) -> None:
    resolver = Resolver(stack_order={})
    resolver.register(FAKE.evolve(settings_model=FakeSettings))
    config = _settings(tmp_path, '[control.selections]\nplane = "fake"\n'
                       '[control.provider_settings.plane.fake]\nurl = "fake://shop"\n')
    plane = control_plane(load_settings(config), resolver=resolver)
    assert isinstance(plane, FakePlane) and plane.settings == FakeSettings(url="fake://shop")
    bad = _settings(tmp_path, '[control.selections]\nplane = "fake"\n'
                    '[control.provider_settings.plane.fake]\nurl = 1\nport = 2\n')
    with pytest.raises(ConfigError, match=r"control\.provider_settings\.plane\.fake"):
        control_plane(load_settings(bad), resolver=resolver)


def test_a_factory_building_no_plane_is_refused(tmp_path: Path) -> None:
    settings = load_settings(_settings(tmp_path, '[control.selections]\nplane = "odd"\n'))
    resolver = Resolver(stack_order={})
    resolver.register(Candidate("control", "plane", "odd", lambda *a, **k: {}))
    with pytest.raises(ConfigError, match="does not implement ControlPlane"):
        control_plane(settings, resolver=resolver)
    resolver.register(Candidate("control", "plane", "odd", dict))
    with pytest.raises(FactoryError, match="failed to build: TypeError"):
        control_plane(settings, resolver=lambda: resolver)


def test_without_a_selection_nothing_installed_moves_the_plane() -> None:
    resolver = Resolver(stack_order={})
    resolver.register(FAKE.evolve(priority=500))

    def discover() -> Resolver:
        raise AssertionError("no selection: no plugin discovery needed")

    assert isinstance(control_plane(None, resolver=discover), LocalControlPlane)
    assert isinstance(control_plane(None, resolver=resolver), LocalControlPlane)


# ------------------------------------------------------------------------ Host


async def test_host_uses_local_by_default(state: Path) -> None:
    async with Host(plugins=False) as host:
        assert isinstance(host.control_plane, LocalControlPlane)
        with pytest.raises(OneiricError):
            await host.activate("control", "plane")
    with pytest.raises(RuntimeError):
        host.control_plane  # noqa: B018


FAKE_PLUGIN = """
from oneiric.core import hookimpl

@hookimpl
def oneiric_register(registry):
    registry.register(domain="control", key="plane", provider="fake", priority=0,
                      factory="test_control_plane:FakePlane")
"""


async def test_host_attaches_the_plane_the_settings_select(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed plugin's plane, selected in the settings: entered for the host's life."""
    import sys

    install_plugin(tmp_path / "site", "oneiric-fakeplane", FAKE_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(sys.modules, "test_control_plane", sys.modules[__name__])
    config = _settings(tmp_path, '[control.selections]\nplane = "fake"\n')
    async with Host(config, watch=False) as host:
        plane = host.control_plane
        assert isinstance(plane, FakePlane)
        assert plane.calls == [("attach", "LifecycleManager")]
    assert plane.calls[-2:] == [("detach",), ("close",)]
    assert len(FakePlane.built) == 1, "resolved once per process start"
