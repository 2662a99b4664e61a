"""The one error path: configuration, --app, namespace, contributors, exit-code mapping."""

from __future__ import annotations

import json

import click
import pytest

from oneiric.cli import exit_code_for
from oneiric.cli._errors import one_line


def test_bad_config_exit_4(oneiric, workspace):
    (workspace.config / "oneiric.toml").write_text("[notify.selections\nmailer = 'smtp'\n")
    result = oneiric("list", "--json")
    assert result.code == 4
    line = result.error_line()
    assert "oneiric.toml:1" in line and "invalid TOML" in line
    assert result.out == ""


def test_invalid_setting_value_exit_4(oneiric, workspace):
    (workspace.config / "oneiric.toml").write_text("[notify.selections]\nmailer = 5\n")
    result = oneiric("explain", "notify", "mailer")
    assert result.code == 4
    assert "notify.selections.mailer" in result.error_line()


def test_missing_config_dir_exit_3(oneiric, workspace):
    result = oneiric("--config", str(workspace.root / "absent"), "list", base=False)
    assert result.code == 3
    assert "does not exist" in result.error_line()


def test_selected_provider_missing_exit_3(oneiric, workspace):
    (workspace.config / "oneiric.toml").write_text("[notify.selections]\nmailer = 'postfix'\n")
    result = oneiric("explain", "notify", "mailer")
    assert result.code == 3
    assert "selected provider 'postfix'" in result.error_line()


def test_malformed_overlay_json_payload_exit_4(oneiric, workspace):
    (workspace.state / "selections.json").write_text('{"selections": {"notify": ')
    result = oneiric("list", "--json")
    assert result.code == 4
    line = result.error_line()
    assert "selections.json" in line and "invalid JSON" in line


@pytest.mark.parametrize(
    ("app", "code", "fragment"),
    [
        ("cliapp", 2, "expected 'module:callable'"),
        ("cli app:register", 2, "expected 'module:callable'"),
        ("nosuchmodule:register", 3, "no module named 'nosuchmodule'"),
        ("cliapp:missing", 3, "has no attribute 'missing'"),
        ("cliapp:NOT_CALLABLE", 2, "not a callable"),
        ("cliapp:explode", 1, "RuntimeError: the application failed to start"),
    ],
)
def test_app_errors(oneiric, workspace, app, code, fragment):
    result = oneiric("--state-dir", str(workspace.state), "--app", app, "list", base=False)
    assert result.code == code, result.err
    assert fragment in result.error_line()


def test_app_from_environment(oneiric, workspace):
    result = oneiric("--state-dir", str(workspace.state), "list", "--json", base=False,
                     env={"ONEIRIC_APP": "cliapp:register"})
    assert result.code == 0, result.err
    assert any(r["domain"] == "notify" for r in result.json()["keys"])


def test_debug_shows_the_traceback(oneiric, workspace):
    result = oneiric("--debug", "--state-dir", str(workspace.state), "--app", "cliapp:explode",
                     "list", base=False)
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("Error: ")


def test_unrelated_oneiric_package_fails_in_one_line(oneiric_inproc, workspace, monkeypatch):
    fake = workspace.root / "site"
    (fake / "oneiric").mkdir(parents=True)
    (fake / "oneiric" / "__init__.py").write_text("")
    import sys

    monkeypatch.setattr(sys, "path", [*sys.path, str(fake)])
    result = oneiric_inproc("list")
    assert result.code == 4
    assert "unrelated package named 'oneiric'" in result.error_line()


def test_broken_and_good_contributors(oneiric_inproc, workspace):
    from oneiric.cli import _contrib
    from oneiric.core import get_plugin_manager, hookimpl

    @click.command("hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello from a plugin")

    class Good:
        @hookimpl
        def oneiric_cli_commands(self):
            return [hello]

    class Broken:
        @hookimpl
        def oneiric_cli_commands(self):
            raise RuntimeError("cannot import click stuff")

    class Clash:
        @hookimpl
        def oneiric_cli_commands(self):
            return click.Command("list")

    hooks = get_plugin_manager()
    names = ["test-good", "test-broken", "test-clash"]
    for name, plugin in zip(names, (Good(), Broken(), Clash()), strict=True):
        hooks.register(plugin, name=name)
    _contrib.reset()
    try:
        help_result = oneiric_inproc("--help", base=False, env={"ONEIRIC_CLI_CACHE": "0"})
        assert help_result.code == 0
        assert "hello" in help_result.out and "Commands from installed packages" in help_result.out
        warnings = [line for line in help_result.err.splitlines() if line.strip()]
        assert len(warnings) == 2
        assert any("test-broken" in w and "cannot import click stuff" in w for w in warnings)
        assert any("test-clash" in w and "built-in" in w for w in warnings)

        ran = oneiric_inproc("hello", base=False)
        assert ran.code == 0 and ran.out.strip() == "hello from a plugin"

        data = oneiric_inproc("plugins", "--json").json()
        assert {"name": "hello", "plugin": "test-good"} in data["commands"]
        assert {e["plugin"] for e in data["command_errors"]} == {"test-broken", "test-clash"}
    finally:
        for name in names:
            hooks.unregister(name=name)
        _contrib.reset()


class _Declared(Exception):
    exit_code = 6


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_Declared("policy says no"), 6),
        (KeyError("x"), 1),
        (FileNotFoundError(2, "No such file or directory", "/x"), 3),
        (ValueError("bad"), 4),
    ],
)
def test_exit_code_mapping_plain(exc, code):
    assert exit_code_for(exc) == code


def test_exit_code_mapping_oneiric_errors():
    from oneiric.core import (
        ActivationError,
        ComponentDraining,
        ComponentPaused,
        ConfigError,
        HealthCheckFailed,
        NotRegisteredError,
        SelectionUnavailableError,
        SwapVetoed,
    )
    from oneiric.lifecycle import ActivityStoreError

    assert exit_code_for(NotRegisteredError("a", "b")) == 3
    assert exit_code_for(SelectionUnavailableError("a", "b", "c", "not registered")) == 3
    assert exit_code_for(SelectionUnavailableError("a", "b", "c", "vetoed by p: no")) == 6
    assert exit_code_for(ConfigError("x")) == 4
    assert exit_code_for(SwapVetoed("x")) == 6
    assert exit_code_for(HealthCheckFailed("x")) == 5
    assert exit_code_for(ComponentPaused("x")) == 5
    assert exit_code_for(ComponentDraining("x")) == 5
    assert exit_code_for(ActivityStoreError("x")) == 5
    unavailable = ActivationError("server down")
    unavailable.error_type = "ConnectionRefusedError"
    assert exit_code_for(unavailable) == 5
    invalid = ActivationError("bad settings")
    invalid.error_type = "ConfigError"
    assert exit_code_for(invalid) == 4


def test_one_line_messages():
    assert one_line(RuntimeError("a\n  b")) == "RuntimeError: a b"
    assert one_line(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "No such file or directory: /x")


def test_json_output_redacts_secrets():
    from pydantic import SecretStr

    from oneiric.cli._output import dumps

    text = dumps({"settings": {"password": SecretStr("hunter2"), "user": "ada"}})
    assert "hunter2" not in text
    assert json.loads(text)["settings"] == {"password": "**********", "user": "ada"}


def test_attack_cli_commands_hook_keeps_pluggy_semantics(oneiric_inproc, workspace):
    """An observing wrapper around oneiric_cli_commands is neither a command nor an error."""
    from oneiric.cli import _contrib
    from oneiric.core import get_plugin_manager, hookimpl

    @click.command("wrapped-hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello")

    class Good:
        @hookimpl
        def oneiric_cli_commands(self):
            return [hello]

    class Observer:
        seen = 0

        @hookimpl(wrapper=True)
        def oneiric_cli_commands(self):
            result = yield
            Observer.seen += 1
            return result

    hooks = get_plugin_manager()
    names = ["test-good-cmd", "test-observer-cmd"]
    for name, plugin in zip(names, (Good(), Observer()), strict=True):
        hooks.register(plugin, name=name)
    _contrib.reset()
    try:
        data = oneiric_inproc("plugins", "--json", env={"ONEIRIC_CLI_CACHE": "0"}).json()
        assert {"name": "wrapped-hello", "plugin": "test-good-cmd"} in data["commands"]
        assert data["command_errors"] == []
        assert Observer.seen >= 1
    finally:
        for name in names:
            hooks.unregister(name=name)
        _contrib.reset()
