"""The web examples (docs/web-app.md) under a real uvicorn, real HTTP, the real ``oneiric`` CLI.

Issue 11: ``oneiric pause`` reported success while an app built without
``activity_store=`` ignored it.  Here the examples build no store at all
(``Host`` defaults), the operator pauses from another process, and the
running server answers 503 with ``Retry-After`` until ``oneiric resume``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from oneiric.testing import free_port, poll_until  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    return environ


@pytest.fixture(params=["web_starlette", "web_fastapi"])
def server(request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    module = str(request.param)
    pytest.importorskip("fastapi" if module == "web_fastapi" else "starlette")
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(EXAMPLES),
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
        ],
        cwd=tmp_path,  # no ./settings here: the examples run on defaults
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"uvicorn exited: {(tmp_path / 'uvicorn.log').read_text()}")
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll_until(up, timeout=60, interval=0.1, message=f"{module} answering on {url}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oneiric.cli", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )


def _published(env: dict[str, str]) -> bool:
    """The app's status snapshot names the key (how the CLI knows a running app holds it)."""
    from oneiric.lifecycle import read_snapshots

    docs = read_snapshots(Path(env["ONEIRIC_STATE_DIR"]))
    return any((k["domain"], k["key"]) == ("adapter", "greeter") for d in docs for k in d["keys"])


def test_attack_cli_pause_ignored_by_web_app(server: str, env: dict[str, str]) -> None:
    ok = httpx.get(server, timeout=5)
    assert ok.status_code == 200
    assert ok.json() == {"message": "hello, web"}
    poll_until(lambda: _published(env), timeout=30, message="the app's status snapshot")

    paused = _cli(env, "pause", "adapter", "greeter", "--note", "maintenance")
    assert paused.returncode == 0, paused.stderr

    def answer_503() -> httpx.Response | None:
        response = httpx.get(server, timeout=5)
        return response if response.status_code == 503 else None

    refused = poll_until(answer_503, timeout=30, message="503 while paused")
    assert refused.headers["retry-after"] == "5"
    assert "unavailable" in refused.text.lower()
    assert "Traceback" not in refused.text

    resumed = _cli(env, "resume", "adapter", "greeter")
    assert resumed.returncode == 0, resumed.stderr
    poll_until(
        lambda: httpx.get(server, timeout=5).status_code == 200,
        timeout=30,
        message="200 after resume",
    )


def test_web_app_reports_health_in_status(server: str, env: dict[str, str]) -> None:
    from oneiric.lifecycle import read_snapshots

    state = Path(env["ONEIRIC_STATE_DIR"])
    docs = poll_until(lambda: read_snapshots(state), timeout=30, message="a status snapshot")
    keys = {(k["domain"], k["key"]): k for d in docs for k in d["keys"]}
    assert keys[("adapter", "greeter")]["bound"] == "builtin"
