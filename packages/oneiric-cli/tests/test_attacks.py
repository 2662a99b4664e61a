"""Adversarial inputs to the CLI: hostile plugins, foreign status snapshots, bad paths.

Each test runs the real ``oneiric`` command in a fresh process (exit codes and
the stdout/stderr split are only real there) and checks the exit-code contract:
0 ok, 1 unexpected, 2 usage, 3 not found, 4 invalid, 5 unavailable, 6 refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oneiric.testing import install_plugin

# ------------------------------------------------------------------ helpers


GOOD_PLUGIN = """
from oneiric.core import hookimpl

@hookimpl
def oneiric_register(registry):
    registry.register(domain="attack", key="cache", provider="good", factory="json:loads")
"""


Result = Any
Workspace = Any


@pytest.fixture
def run(oneiric_proc: Any) -> Any:
    """``run(workspace, site, *args, **env)``: ``python -m oneiric.cli``, ``site`` on the path."""

    def invoke(workspace: Workspace, site: Path | None, *args: str, **env: str) -> Result:
        return _run(oneiric_proc, site, *args, **env)

    return invoke


def _run(invoke: Any, site: Path | None, *args: str, **env: str) -> Result:
    extra = dict(env)
    if site is not None:
        extra["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(site), os.environ.get("PYTHONPATH", "")])
        )
    return invoke(*args, base=False, env=extra)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    assert "Traceback" not in result.out


# ------------------------------------------------- hostile plugins (item 2)

_EXITING = {
    "import": "raise {expr}\n",
    "hook": """
        from oneiric.core import hookimpl

        @hookimpl
        def oneiric_register(registry):
            raise {expr}
        """,
}


@pytest.mark.parametrize("command", ["list", "plugins"])
@pytest.mark.parametrize("where", ["import", "hook"])
@pytest.mark.parametrize(
    ("expr", "shown"),
    [("SystemExit(0)", "SystemExit"), ("GeneratorExit()", "GeneratorExit")],
    ids=["SystemExit-0", "GeneratorExit"],
)
def test_attack_exiting_plugin_does_not_silence_the_diagnostic_commands(
    run: Any, workspace: Workspace, command: str, where: str, expr: str, shown: str
) -> None:
    site = workspace.root / "site"
    install_plugin(site, "attack-good", GOOD_PLUGIN)
    install_plugin(site, "attack-exit", _EXITING[where].format(expr=expr))

    result = run(workspace, site, command, "--json")

    assert result.code == 0, result.err  # the diagnostic command itself succeeds
    data = result.json()  # and its output is there, not empty
    assert_no_traceback(result)
    assert "attack-exit:main failed to load" in result.err and shown in result.err
    if command == "plugins":
        entries = {e["distribution"]: e for e in data["plugins"]}
        assert shown in entries["attack-exit"]["error"]
        assert entries["attack-good"]["error"] is None
    else:
        assert {"domain": "attack", "key": "cache"}.items() <= next(
            r for r in data["keys"] if r["domain"] == "attack").items()


_HANGING = """
import time
time.sleep(3600)
"""


@pytest.mark.parametrize("command", ["list", "plugins"])
def test_attack_plugin_import_hangs_every_command_is_bounded(
    run: Any, workspace: Workspace, command: str
) -> None:
    site = workspace.root / "site"
    install_plugin(site, "attack-good", GOOD_PLUGIN)
    install_plugin(site, "attack-hang", _HANGING)

    # the invoker's own timeout (120 s) is the generous outer ceiling
    result = run(workspace, site, command, "--json", ONEIRIC_PLUGIN_TIMEOUT="0.5")

    assert result.code == 0, result.err
    assert_no_traceback(result)
    expected = ("import of attack_hang did not finish within 0.5 s; "
                "set ONEIRIC_PLUGIN_TIMEOUT or fix the plugin")
    assert expected in result.err
    data = result.json()
    if command == "plugins":
        entries = {e["distribution"]: e for e in data["plugins"]}
        assert entries["attack-hang"]["error"] == expected
        assert entries["attack-good"]["candidates"] == 1
    else:
        assert any(r["domain"] == "attack" and r["provider"] == "good" for r in data["keys"])


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
def test_attack_bad_plugin_timeout_exit_4(run: Any, workspace: Workspace, value: str) -> None:
    result = run(workspace, None, "list", ONEIRIC_PLUGIN_TIMEOUT=value)
    assert result.code == 4, result.err
    line = result.error_line()
    assert "ONEIRIC_PLUGIN_TIMEOUT" in line and "positive number of seconds" in line
    assert result.out == ""


_APP_RAISES = """
class PluginBaseError(BaseException):
    pass

def generator_exit(resolver):
    raise GeneratorExit()

def custom(resolver):
    raise PluginBaseError("escaped everything")
"""


@pytest.mark.parametrize(
    ("target", "shown"),
    [("generator_exit", "GeneratorExit"), ("custom", "PluginBaseError: escaped everything")],
)
def test_attack_base_exception_prints_no_traceback_without_debug(
    run: Any, workspace: Workspace, target: str, shown: str
) -> None:
    (workspace.cwd / "hostileapp.py").write_text(_APP_RAISES, encoding="utf-8")
    result = run(workspace, None, "--app", f"hostileapp:{target}", "list")
    assert result.code == 1
    assert_no_traceback(result)
    assert shown in result.error_line()

    debug = run(workspace, None, "--debug", "--app", f"hostileapp:{target}", "list")
    assert debug.code == 1
    assert "Traceback" in debug.err


# --------------------------------------------- foreign snapshots (item 3)


def _healthy(pid: int) -> dict:
    return {
        "version": 1, "pid": pid, "host": "web-1", "started_at": None, "written_at": None,
        "config": [], "activity": {"path": None, "error": None},
        "keys": [{
            "domain": "notify", "key": "mailer", "tenant": None, "winner": "smtp",
            "bound": "smtp", "differs": False, "reason": None,
            "activity": {"state": "active", "in_flight": 0},
            "swaps": 0, "failures": 0,
            "last_health": {"ok": True, "detail": "", "at": None},
        }],
    }


def _deep(depth: int) -> str:
    return '{"pid": 1, "keys": ' + "[" * depth + "]" * depth + "}"


FOREIGN = {
    "invalid-json": lambda p: p.write_text('{"pid": 12, "keys": [', encoding="utf-8"),
    "binary-garbage": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "a-list": lambda p: p.write_text("[1, 2, 3]"),
    "a-string": lambda p: p.write_text('"hello"'),
    "pid-missing": lambda p: p.write_text('{"keys": []}'),
    "pid-negative": lambda p: p.write_text('{"pid": -1, "keys": []}'),
    "pid-huge": lambda p: p.write_text('{"pid": 99999999999999999999999, "keys": []}'),
    "pid-bool": lambda p: p.write_text('{"pid": true, "keys": []}'),
    "keys-a-string": lambda p: p.write_text(json.dumps({"pid": os.getpid(), "keys": "abc"})),
    "key-without-domain": lambda p: p.write_text(
        json.dumps({"pid": os.getpid(), "keys": [{"key": "x"}]})),
    "key-not-a-dict": lambda p: p.write_text(json.dumps({"pid": os.getpid(), "keys": [7]})),
    "last-health-a-list": lambda p: p.write_text(json.dumps({**_healthy(os.getpid()), "keys": [
        {**_healthy(os.getpid())["keys"][0], "last_health": [1]}]})),
    "config-a-dict": lambda p: p.write_text(json.dumps({**_healthy(os.getpid()),
                                                        "config": {"error": 1}})),
    "activity-a-list": lambda p: p.write_text(json.dumps({**_healthy(os.getpid()),
                                                          "activity": [1]})),
    "a-directory": lambda p: p.mkdir(),
    "huge-nesting": lambda p: p.write_text(_deep(100_000)),
    "a-fifo": lambda p: os.mkfifo(p),
}


@pytest.mark.parametrize("command", ["status", "health"])
@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_attack_foreign_status_snapshot_is_skipped_and_healthy_ones_shown(
    run: Any, workspace: Workspace, command: str, kind: str
) -> None:
    status_dir = workspace.state / "status"
    status_dir.mkdir()
    (status_dir / f"{os.getpid()}.json").write_text(json.dumps(_healthy(os.getpid())))
    bad = status_dir / "424242.json"
    FOREIGN[kind](bad)

    human = run(workspace, None, "--state-dir", str(workspace.state), command)
    data_run = run(workspace, None, "--state-dir", str(workspace.state), command, "--json")

    for result in (human, data_run):
        assert result.code == 0, result.err
        assert_no_traceback(result)
        warnings = [line for line in result.err.splitlines() if "424242.json" in line]
        assert len(warnings) == 1 and warnings[0].startswith("warning: "), result.err
    assert "notify/mailer" in human.out
    data = data_run.json()
    (skipped,) = data["skipped"]
    assert skipped["path"] == str(bad) and skipped["error"]
    if command == "status":
        assert [p["pid"] for p in data["processes"]] == [os.getpid()]
    else:
        assert data["ok"] is True
        assert [(c["pid"], c["provider"]) for c in data["checks"]] == [(os.getpid(), "smtp")]


def test_attack_foreign_snapshot_with_failed_health_still_exits_5(
    run: Any, workspace: Workspace
) -> None:
    status_dir = workspace.state / "status"
    status_dir.mkdir()
    doc = _healthy(os.getpid())
    doc["keys"][0]["last_health"] = {"ok": False, "detail": "down", "at": None}
    (status_dir / f"{os.getpid()}.json").write_text(json.dumps(doc))
    (status_dir / "424242.json").write_text("[]")
    result = run(workspace, None, "--state-dir", str(workspace.state), "health", "--json")
    assert result.code == 5, result.err  # what the healthy data implies
    assert result.json()["skipped"][0]["path"].endswith("424242.json")


# ---------------------------------------------------- --config paths (item 3)


@pytest.mark.parametrize("via", ["option", "env"])
def test_attack_config_missing_dir_exit_3(run: Any, workspace: Workspace, via: str) -> None:
    absent = str(workspace.root / "absent")
    if via == "option":
        result = run(workspace, None, "--config", absent, "list")
    else:
        result = run(workspace, None, "list", ONEIRIC_CONFIG=absent)
    assert result.code == 3, result.err
    line = result.error_line()
    assert absent in line and "does not exist" in line


@pytest.mark.parametrize("target", ["/dev/null", "plain-file", "file-as-dir"])
def test_attack_config_pointing_at_a_file_exit_4(
    run: Any, workspace: Workspace, target: str
) -> None:
    plain = workspace.root / "notes.txt"
    plain.write_text("not settings\n")
    path = {"/dev/null": "/dev/null", "plain-file": str(plain),
            "file-as-dir": str(plain / "sub")}[target]
    result = run(workspace, None, "--config", path, "list")
    expected = 3 if target == "file-as-dir" else 4  # below a file: nothing there, not found
    assert result.code == expected, result.err
    assert path in result.error_line()
    assert_no_traceback(result)


# ------------------------------------------------------- --app (item 3)


@pytest.mark.parametrize("spec", ["cliapp:register\n", "cliapp:register\r", "cliapp\n:register",
                                  "cliapp:register ", "cliapp:register\n\n"])
def test_attack_app_spec_with_trailing_newline_is_usage_error(
    run: Any, workspace: Workspace, spec: str
) -> None:
    result = run(workspace, None, "--app", spec, "list")
    assert result.code == 2, result.err
    assert "expected 'module:callable'" in result.error_line()
