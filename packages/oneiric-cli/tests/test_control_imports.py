"""Control commands are as quick as ``--help``: they import only what they use.

No timing here: each command runs in a real child process and the test asserts
*what it imported* (the work it did).  pause/resume/drain need the activity
store and the plugins' keys, swap the plugins and the overlay, status the
snapshots: none of them needs pydantic (the settings models), structlog (the
log renderer, when nothing is logged at the default level), asyncio (only
``swap --validate`` and ``health --probe`` run an event loop) or the
lifecycle's manager and ``Host`` - not even when an earlier ``swap`` left a
selection overlay in the state dir.  ``benchmarks/bench_cli.py`` times them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = (
    "pydantic",
    "structlog",
    "oneiric.core._settings",
    "oneiric.core._settings_model",
    "asyncio",
    "oneiric.lifecycle._manager",
    "oneiric.lifecycle._host",
)

CHILD = textwrap.dedent(
    """
    import json, os, sys
    from oneiric.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    heavy = [m for m in json.loads(os.environ["HEAVY"]) if m in sys.modules]
    print("IMPORTS " + json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
    """
)


#: The application's own candidate (the CLI package's tests install no adapter family).
APP = textwrap.dedent(
    """
    from oneiric.core import Candidate

    def register(resolver):
        resolver.register(Candidate("adapter", "cache", "memory", "collections:OrderedDict"))
    """
)


def _run(state: Path, *args: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    (state.parent / "ctlapp.py").write_text(APP, encoding="utf-8")
    env = {
        **os.environ,
        "ONEIRIC_STATE_DIR": str(state),
        "HEAVY": json.dumps(heavy),
        "ONEIRIC_APP": "ctlapp:register",
    }
    env.pop("ONEIRIC_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True, text=True, env=env, timeout=120, cwd=state.parent,
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("IMPORTS ")]
    assert line, proc.stderr
    result: dict[str, object] = json.loads(line[-1][len("IMPORTS "):])
    result["out"] = proc.stdout
    return result


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir where an earlier swap left a selection overlay."""
    path = tmp_path / "state"
    first = _run(path, "swap", "adapter", "cache", "memory")
    assert first["code"] == 0
    assert (path / "selections.json").exists()
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("pause", "adapter", "cache"),
        ("drain", "adapter", "cache"),
        ("resume", "adapter", "cache"),
        ("swap", "adapter", "cache", "memory"),
        ("swap", "--defer", "adapter", "cache", "memory"),
        ("status",),
        ("status", "--json"),
    ],
    ids=lambda a: "-".join(a),
)
def test_attack_control_command_imports_settings_log_renderer_or_event_loop(
    state: Path, args: tuple[str, ...]
) -> None:
    result = _run(state, *args)
    assert result["code"] in (0, None)
    assert result["heavy"] == []


#: What each command does not need beyond ``HEAVY``: only a writer of a decision
#: names its actor (getpass; the host from ``os.uname()`` on POSIX, not socket),
#: only an application writing its snapshot names its host (socket), the overlay
#: is JSON (no TOML parser without settings files), and ``status`` reads
#: snapshots only (no plugins, no activity store).
NOT_NEEDED = {
    ("pause", "adapter", "cache"): ("tomllib", "socket"),
    ("resume", "adapter", "cache"): ("tomllib", "socket"),
    ("swap", "adapter", "cache", "memory"): ("getpass", "socket", "tomllib"),
    ("swap", "--defer", "adapter", "cache", "memory"): ("getpass", "socket", "tomllib"),
    ("status",): ("socket", "tomllib", "sqlite3", "pluggy"),
    ("status", "--json"): ("socket", "tomllib", "sqlite3", "pluggy"),
}


@pytest.mark.parametrize("args", list(NOT_NEEDED), ids=lambda a: "-".join(a))
def test_attack_control_command_imports_what_it_does_not_use(
    state: Path, args: tuple[str, ...]
) -> None:
    result = _run(state, *args, heavy=NOT_NEEDED[args])
    assert result["code"] in (0, None)
    assert result["heavy"] == []


def test_decision_without_socket_records_the_same_actor(state: Path) -> None:
    """``pause`` names its host as ``socket.gethostname()`` would, without importing socket."""
    import getpass
    import socket

    result = _run(state, "pause", "adapter", "cache", "--json", heavy=("socket",))
    assert result["code"] in (0, None)
    assert result["heavy"] == []
    actor = json.loads(str(result["out"]))["actor"]
    user, _, rest = actor.partition("@")
    host, _, pid = rest.partition(" pid ")
    assert (user, host) == (getpass.getuser(), socket.gethostname())
    assert pid.isdigit()


def test_settings_files_still_load_for_control_commands(state: Path, tmp_path: Path) -> None:
    """With a settings directory, swap still sees its selections (pydantic is then needed)."""
    config = tmp_path / "settings"
    config.mkdir()
    (config / "adapters.toml").write_text('[selections]\ncache = "memory"\n')
    result = _run(state, "--config", str(config), "swap", "adapter", "cache", "memory")
    assert result["code"] in (0, None)
    assert "oneiric.core._settings" in result["heavy"]
