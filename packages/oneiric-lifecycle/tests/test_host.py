"""``Host`` (ARCHITECTURE §9): one ``async with`` runs plugins, settings, lifecycle and services.

Real components (the conftest ledger), a real settings directory, a real
activity store and status snapshot in the per-test state dir, and real
pluggy plugins contributing ``oneiric_host_services``.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import (
    HOOKSPEC_VERSION,
    Candidate,
    ComponentPaused,
    ConfigError,
    PluginError,
    Resolver,
    get_plugin_manager,
    hookimpl,
)
from oneiric.core.helpers import ACTIVITY_FILE
from oneiric.lifecycle import ActivityStore, Host, read_snapshots
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio


class Services:
    """A plugin whose ``oneiric_host_services`` returns what the test asks for."""

    def __init__(self, journal: list[str], name: str, value: Any = "service") -> None:
        self.journal = journal
        self.name = name
        self.value = value
        self.seen_host: Host | None = None

    def service(self, label: str, *, fail: bool = False) -> Any:
        journal = self.journal

        @asynccontextmanager
        async def run() -> AsyncIterator[None]:
            journal.append(f"enter {label}")
            if fail:
                raise RuntimeError(f"{label} cannot connect")
            try:
                yield
            finally:
                journal.append(f"exit {label}")

        return run()

    @hookimpl
    def oneiric_host_services(self, host: Host) -> Any:
        self.seen_host = host
        # the host is ready when services start: the lifecycle runs and keys are active
        self.journal.append(f"active={host.lifecycle.status()['keys'] != []}")
        if self.value == "service":
            return self.service(self.name)
        if self.value == "two":
            return [self.service(f"{self.name}-1"), self.service(f"{self.name}-2")]
        if self.value == "fail":
            return self.service(self.name, fail=True)
        if self.value == "raise":
            raise RuntimeError("hook exploded")
        return self.value


@pytest.fixture
def plugins() -> Iterator[Any]:
    manager = get_plugin_manager()
    names: list[str] = []

    def add(plugin: Services) -> Services:
        manager.register(plugin, name=f"test-host:{plugin.name}")
        names.append(f"test-host:{plugin.name}")
        return plugin

    yield add
    for name in names:
        manager.unregister(name=name)


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "settings"
    directory.mkdir()
    (directory / "adapter.toml").write_text('[selections]\ncache = "a"\n')
    return directory


@pytest.fixture
def app(ledger: Any) -> Any:
    def setup(resolver: Resolver) -> None:
        resolver.register(Candidate("adapter", "cache", "a", ledger.factory("a")))
        resolver.register(Candidate("adapter", "cache", "b", ledger.factory("b"), priority=5))

    return setup


async def test_host_runs_plugins_settings_lifecycle_watcher_and_services(
    settings_dir: Path, state: Path, app: Any, ledger: Any, plugins: Any
) -> None:
    journal: list[str] = []
    first = plugins(Services(journal, "first"))
    plugins(Services(journal, "second", "two"))
    host = Host(
        settings_dir, plugins=False, app=app, activate=["adapter/cache"], health_interval=0.05
    )
    async with host:
        assert first.seen_host is host
        assert host.watcher is not None and host.watcher.status()["error"] is None
        assert await host.activate("adapter", "cache") is ledger.built[0]
        async with host.lease("adapter", "cache") as cache:
            assert cache.call() == "a"  # the settings' selection, not the priority winner
        assert host.lifecycle.activity_store is not None
        assert host.lifecycle.activity_store.path == state / ACTIVITY_FILE
        await apoll_until(
            lambda: any(
                k["last_health"] is not None for d in read_snapshots(state) for k in d["keys"]
            ),
            message="the status snapshot with a health probe",
        )
        # pause through another store object on the same file: the host honours it
        ActivityStore(state / ACTIVITY_FILE).pause("adapter", "cache", note="maintenance")

        async def refused() -> bool:
            try:
                async with host.lease("adapter", "cache"):
                    return False
            except ComponentPaused:
                return True

        await apoll_until(refused, message="the pause honoured by the host")
    entered = [e for e in journal if e.startswith("enter")]
    # hook order (pluggy calls the last registered first), then exit in reverse
    assert entered == ["enter second-1", "enter second-2", "enter first"]
    assert journal[:2] == ["active=True", "active=True"]
    exited = [e for e in journal if e.startswith("exit")]
    assert exited == [e.replace("enter", "exit") for e in reversed(entered)]
    assert ledger.all_cleaned_once()
    assert read_snapshots(state) == []


async def test_host_app_as_module_reference(
    settings_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "host_app_mod.py").write_text(
        textwrap.dedent(
            """
            from oneiric.core import Candidate

            class Thing:
                pass

            def setup(resolver):
                resolver.register(Candidate("adapter", "cache", "a", Thing))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    async with Host(
        settings_dir, plugins=False, watch=False, app="host_app_mod:setup",
        activate=["adapter/cache"],
    ) as host:
        instance = await host.activate("adapter", "cache")
        assert type(instance).__name__ == "Thing"
        assert host.watcher is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fail", "host service .* failed to start: RuntimeError: bad cannot connect"),
        ("raise", "oneiric_host_services raised RuntimeError: hook exploded"),
        (42, "oneiric_host_services returned int, expected an async context manager"),
    ],
    ids=["service-enter-fails", "hook-raises", "not-a-context-manager"],
)
async def test_attack_broken_host_service_tears_everything_down(
    settings_dir: Path, state: Path, app: Any, ledger: Any, plugins: Any, value: Any,
    expected: str,
) -> None:
    journal: list[str] = []
    plugins(Services(journal, "bad", value))
    plugins(Services(journal, "good"))  # called first: entered before "bad" fails
    host = Host(settings_dir, plugins=False, app=app, activate=["adapter/cache"])
    with pytest.raises(PluginError, match=f"plugin 'test-host:bad': {expected}") as info:
        await host.__aenter__()
    assert "\n" not in str(info.value)
    if value == "fail":
        assert journal[-3:] == ["enter good", "enter bad", "exit good"]
    else:  # refused before any service started
        assert not [e for e in journal if e.startswith("enter")]
    assert ledger.built and ledger.all_cleaned_once()  # the lifecycle was shut down
    assert read_snapshots(state) == []
    with pytest.raises(RuntimeError, match="not running"):
        host.lifecycle  # noqa: B018


@pytest.mark.parametrize(
    ("activate", "message"),
    [
        (["cache"], "expected 'domain.key'"),
        (["adapter/"], "expected 'domain.key'"),
        (["adapter."], "expected 'domain.key'"),
    ],
    ids=["no-domain", "empty-key", "empty-key-dot"],
)
async def test_attack_bad_activate_entry_is_one_line_config_error(
    settings_dir: Path, app: Any, activate: list[str], message: str
) -> None:
    host = Host(settings_dir, plugins=False, app=app, activate=activate)
    with pytest.raises(ConfigError, match=message):
        await host.__aenter__()
    with pytest.raises(RuntimeError, match="not running"):
        host.resolver  # noqa: B018


async def test_attack_app_reference_not_callable(settings_dir: Path) -> None:
    host = Host(settings_dir, plugins=False, app="oneiric.core:HOOKSPEC_VERSION")
    with pytest.raises(ConfigError, match="is not callable"):
        await host.__aenter__()


async def test_host_activates_keys_listed_in_settings(
    settings_dir: Path, app: Any, ledger: Any
) -> None:
    """``[host] activate`` (a reserved section of oneiric.toml) lists keys to activate at start."""
    (settings_dir / "oneiric.toml").write_text('[host]\nactivate = ["adapter.cache"]\n')
    async with Host(settings_dir, plugins=False, app=app) as host:
        assert host.lifecycle.status()["keys"][0]["bound"] == "a"
        assert ledger.built


async def test_attack_host_activate_not_a_list(settings_dir: Path, app: Any) -> None:
    (settings_dir / "oneiric.toml").write_text('[host]\nactivate = "adapter.cache"\n')
    host = Host(settings_dir, plugins=False, app=app)
    with pytest.raises(ConfigError, match=r"\[host\] activate must be a list"):
        await host.__aenter__()


def test_host_services_hook_needs_hookspec_version_2_or_later() -> None:
    assert HOOKSPEC_VERSION >= 2  # 2 added oneiric_host_services (3: oneiric_settings_applied)
    assert "oneiric_host_services" in {h for h in dir(get_plugin_manager().hook)}


async def test_lifecycle_health_interval_from_settings(
    settings_dir: Path, state: Path, app: Any
) -> None:
    (settings_dir / "oneiric.toml").write_text("[lifecycle]\nhealth_interval = 0.05\n")
    async with Host(settings_dir, plugins=False, app=app, activate=["adapter/cache"]) as host:
        assert host.lifecycle.config.health_interval == 0.05
        await apoll_until(
            lambda: any(
                k["last_health"] is not None for d in read_snapshots(state) for k in d["keys"]
            ),
            message="a probe at the settings' interval",
        )
    async with Host(
        settings_dir, plugins=False, app=app, activate=["adapter/cache"], health_interval=3
    ) as host:
        assert host.lifecycle.config.health_interval == 3.0  # an explicit argument wins


async def test_exception_in_body_tears_everything_down(
    settings_dir: Path, state: Path, app: Any, ledger: Any, plugins: Any
) -> None:
    journal: list[str] = []
    plugins(Services(journal, "svc"))
    with pytest.raises(KeyError):
        async with Host(settings_dir, plugins=False, app=app, activate=["adapter/cache"]):
            raise KeyError("boom")
    assert journal[-1] == "exit svc"
    assert ledger.all_cleaned_once()
    assert read_snapshots(state) == []


async def test_attack_unsupported_profile_stops_the_host_in_one_line(
    settings_dir: Path, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEIRIC_PROFILE", "lambda")
    host = Host(settings_dir, plugins=False, app=app)
    with pytest.raises(ConfigError, match="ONEIRIC_PROFILE='lambda' is not supported"):
        await host.__aenter__()


async def test_a_settings_error_raised_by_a_service_plugin_keeps_its_own_message(
    tmp_path: Path,
) -> None:
    """A plugin that refuses *settings* (a bad table it owns) is not told to fix itself."""
    from oneiric.core import ConfigError, get_plugin_manager, hookimpl

    class Refuses:
        @hookimpl
        def oneiric_host_services(self, host: object) -> object:
            raise ConfigError("settings/oneiric.toml: automations.x.run: 'nope' is not a target")

    plugin = Refuses()
    manager = get_plugin_manager()
    manager.register(plugin)
    try:
        with pytest.raises(ConfigError) as info:
            async with Host(tmp_path, state_dir=tmp_path / "state", plugins=False, watch=False):
                pass
        assert str(info.value).startswith("settings/oneiric.toml: automations.x.run")
        assert "fix or remove the plugin" not in str(info.value)
    finally:
        manager.unregister(plugin)


async def test_serverless_profile_runs_no_watcher_and_no_periodic_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONEIRIC_PROFILE=serverless (ARCHITECTURE §11): no watchers, no polling of health."""
    (tmp_path / "oneiric.toml").write_text("[lifecycle]\nhealth_interval = 1\n")
    monkeypatch.setenv("ONEIRIC_PROFILE", "serverless")
    async with Host(tmp_path, state_dir=tmp_path / "state", plugins=False) as host:
        assert host.watcher is None
        assert host.lifecycle.config.health_interval == 0
        assert host.lifecycle.config.activity_poll_interval == 0
    monkeypatch.setenv("ONEIRIC_PROFILE", "default")
    async with Host(tmp_path, state_dir=tmp_path / "state", plugins=False) as host:
        assert host.watcher is not None
        assert host.lifecycle.config.health_interval == 1


async def test_profile_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Host(profile="serverless")``: what ``oneiric orchestrate --profile`` passes."""
    monkeypatch.setenv("ONEIRIC_PROFILE", "default")
    async with Host(tmp_path, state_dir=tmp_path / "state", plugins=False,
                    profile="serverless") as host:
        assert host.watcher is None
        assert host.lifecycle.config.activity_poll_interval == 0
    with pytest.raises(ConfigError, match="profile='lambda' is not supported"):
        Host(tmp_path, profile="lambda")
