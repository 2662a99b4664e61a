"""``oneiric_settings_applied``: plugins register what they derive from settings, on every apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oneiric.core import (
    Candidate,
    ConfigError,
    PluginError,
    Resolver,
    hookimpl,
    load_settings,
    new_plugin_manager,
)


class Derives:
    """Registers one ``task`` candidate per key of a reserved table, like [schedules]."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls = 0

    @hookimpl
    def oneiric_settings_applied(self, resolver: Resolver, settings: Any) -> None:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        for key in settings.schedules:
            resolver.register(Candidate("task", key, "settings", "builtins:object"))


def _settings(tmp_path: Path, text: str) -> Any:
    (tmp_path / "oneiric.toml").write_text(text)
    return load_settings(tmp_path, state_dir=tmp_path / "state")


def test_a_plugin_registers_what_it_derives_on_apply(tmp_path: Path) -> None:
    hooks = new_plugin_manager()
    plugin = Derives()
    hooks.register(plugin)
    resolver = Resolver(hooks=hooks)
    settings = _settings(tmp_path, '[schedules.nightly]\nevery = "1h"\nrun = "action:x.y"\n')
    settings.apply(resolver)
    assert resolver.resolve("task", "nightly").provider == "settings"
    settings.apply(resolver)  # a reload applies again: the plugin must be idempotent
    assert plugin.calls == 2


def test_a_config_error_from_the_plugin_changes_nothing(tmp_path: Path) -> None:
    hooks = new_plugin_manager()
    hooks.register(Derives(ConfigError("oneiric.toml: schedules.x.run: 'nope' is not a target")))
    resolver = Resolver(hooks=hooks)
    settings = _settings(tmp_path, '[adapter.selections]\ncache = "redis"\n')
    with pytest.raises(ConfigError, match=r"schedules.x.run: 'nope' is not a target"):
        settings.apply(resolver)
    assert resolver.selections("adapter") == {}  # the selections were not applied either


def test_a_broken_plugin_is_a_plugin_error_naming_it(tmp_path: Path) -> None:
    hooks = new_plugin_manager()
    hooks.register(Derives(RuntimeError("bug")), name="acme-derive")
    resolver = Resolver(hooks=hooks)
    with pytest.raises(PluginError) as info:
        _settings(tmp_path, "").apply(resolver)
    assert "'acme-derive': oneiric_settings_applied raised RuntimeError: bug" in str(info.value)
