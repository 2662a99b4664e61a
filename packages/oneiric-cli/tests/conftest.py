"""Fixtures: an application module registering known candidates, and three ways to run the CLI.

Every behaviour that matters to a user is checked through click's CliRunner
*and* as a real process (``python -m oneiric.cli`` and, where installed, the
``oneiric`` console script), because exit codes and the stdout/stderr split
are only real in a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

APP_MODULE = textwrap.dedent('''
    """A test application: registers notify/mailer candidates in code and a veto policy."""
    from oneiric.core import Candidate, hookimpl


    class Smtp:
        def health(self):
            return True


    class Sendgrid:
        async def health(self):
            return True


    class Broken:
        def health(self):
            return False


    class Policy:
        @hookimpl
        def oneiric_candidate_veto(self, candidate, request):
            if candidate.domain == "notify" and candidate.provider == "retired":
                return "retired mailers are not allowed"
            return None


    def register(resolver):
        hooks = resolver.hooks
        if hooks.get_plugin("cliapp-policy") is None:
            hooks.register(Policy(), name="cliapp-policy")
        resolver.register(Candidate("notify", "mailer", "smtp", "cliapp:Smtp", priority=20,
                                    capabilities=frozenset({"tls"})))
        resolver.register(Candidate("notify", "mailer", "sendgrid", "cliapp:Sendgrid"))
        resolver.register(Candidate("notify", "mailer", "retired", "cliapp:Smtp", priority=50))
        resolver.register(Candidate("notify", "mailer", "broken", "cliapp:Broken"))
        resolver.register(Candidate("notify", "sms", "twilio", "cliapp:Smtp"))
        resolver.invalidate()


    NOT_CALLABLE = 42


    def explode(resolver):
        raise RuntimeError("the application failed to start")
''')


@dataclass
class Result:
    """Exit code and the two streams of one CLI run."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_line(self) -> str:
        """The single line on stderr (asserting there is exactly one, starting 'Error: ')."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
        assert lines[0].startswith("Error: "), lines[0]
        return lines[0]


@dataclass
class Workspace:
    root: Path
    cwd: Path
    state: Path
    config: Path

    def base(self) -> list[str]:
        return ["--state-dir", str(self.state), "--config", str(self.config),
                "--app", "cliapp:register"]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "cliapp.py").write_text(APP_MODULE, encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "settings"
    config.mkdir()
    monkeypatch.chdir(cwd)
    for name in ("ONEIRIC_APP", "ONEIRIC_CONFIG", "ONEIRIC_STACK_ORDER", "ONEIRIC_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(state))
    monkeypatch.setenv("ONEIRIC_CLI_CACHE", str(tmp_path / "cli-commands.json"))
    yield Workspace(tmp_path, cwd, state, config)
    sys.modules.pop("cliapp", None)
    from oneiric.core import get_plugin_manager

    hooks = get_plugin_manager()
    if hooks.get_plugin("cliapp-policy") is not None:
        hooks.unregister(name="cliapp-policy")


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()


def script_path() -> Path | None:
    """The installed ``oneiric`` script next to this interpreter, if any."""
    for name in ("oneiric", "oneiric.exe"):
        candidate = Path(sys.executable).parent / name
        if candidate.is_file():
            return candidate
    return None


LAUNCHERS = ["runner", "module", "script"]


def make_invoker(launcher: str, workspace: Workspace) -> Callable[..., Result]:
    def invoke(*args: str, base: bool = True, env: dict[str, str] | None = None) -> Result:
        argv = [*(workspace.base() if base else []), *args]
        if launcher == "runner":
            from oneiric.cli import cli

            result = _runner().invoke(cli, argv, env=env, catch_exceptions=False)
            return Result(result.exit_code, result.stdout, result.stderr)
        if launcher == "module":
            command = [sys.executable, "-m", "oneiric.cli", *argv]
        else:
            script = script_path()
            if script is None:
                pytest.skip("the oneiric console script is not installed next to sys.executable")
            command = [str(script), *argv]
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(
            command, cwd=workspace.cwd, env=full_env, capture_output=True, text=True,
            timeout=120, check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return invoke


@pytest.fixture(params=LAUNCHERS)
def oneiric(request: pytest.FixtureRequest, workspace: Workspace) -> Callable[..., Result]:
    """Run the CLI with the workspace's global options, by every launcher."""
    return make_invoker(request.param, workspace)


@pytest.fixture
def oneiric_inproc(workspace: Workspace) -> Callable[..., Result]:
    """CliRunner only: for checks that need in-process state (plugins, patched modules)."""
    return make_invoker("runner", workspace)


@pytest.fixture
def oneiric_proc(workspace: Workspace) -> Callable[..., Result]:
    """A real ``python -m oneiric.cli`` process only (for plugins installed on PYTHONPATH)."""
    return make_invoker("module", workspace)
