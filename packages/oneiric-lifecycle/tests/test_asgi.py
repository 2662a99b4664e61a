"""``oneiric.lifecycle.asgi``: the lifespan protocol and the 503 mapping, driven as raw ASGI.

The cross-package ``tests/test_web_examples.py`` runs the same code under a
real uvicorn with Starlette and FastAPI; here each protocol branch is driven
message by message.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Candidate, ComponentDraining, ComponentPaused, ConfigError, NotActiveError
from oneiric.lifecycle import Host
from oneiric.lifecycle.asgi import HOST_STATE_KEY, UnavailableMiddleware, lifespan

pytestmark = pytest.mark.anyio


async def _lifespan_run(app: Any, *events: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for event in events:
        queue.put_nowait({"type": f"lifespan.{event}"})
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope: dict[str, Any] = {"type": "lifespan", "state": {}}
    await app(scope, queue.get, send)
    return sent, scope["state"]


async def _http(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    return sent


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the lifespan must not reach the wrapped app")


async def test_lifespan_enters_host_at_startup_and_exits_at_shutdown(
    tmp_path: Path, ledger: Any
) -> None:
    def setup(resolver: Any) -> None:
        resolver.register(Candidate("adapter", "cache", "a", ledger.factory("a")))

    hosts: list[Host] = []

    async def factory() -> Host:  # an awaitable factory is awaited
        host = Host(tmp_path, plugins=False, watch=False, app=setup, activate=["adapter/cache"])
        hosts.append(host)
        return host

    sent, state = await _lifespan_run(lifespan(_never_called, factory), "startup", "shutdown")
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert state[HOST_STATE_KEY] is hosts[0]
    assert ledger.built and ledger.all_cleaned_once()


async def test_attack_host_start_failure_is_one_line_startup_failed(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    app = lifespan(_never_called, lambda: Host(missing, plugins=False))
    sent, state = await _lifespan_run(app, "startup")
    assert len(sent) == 1 and sent[0]["type"] == "lifespan.startup.failed"
    assert sent[0]["message"].startswith("ConfigError: config directory")
    assert "\n" not in sent[0]["message"]
    assert HOST_STATE_KEY not in state


async def test_lifespan_passes_http_through() -> None:
    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    app = lifespan(hello, lambda: Host(plugins=False))
    sent = await _http(app)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"hi"


@pytest.mark.parametrize(
    "error",
    [
        ComponentPaused("adapter/cache is paused"),
        ComponentDraining("adapter/cache is draining"),
        NotActiveError("adapter/cache is not active (the lifecycle was shut down)"),
    ],
    ids=["paused", "draining", "not-active"],
)
async def test_attack_paused_component_becomes_500_instead_of_503(error: Exception) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise error

    sent = await _http(UnavailableMiddleware(failing, retry_after=7))
    assert sent[0]["status"] == 503
    headers = dict(sent[0]["headers"])
    assert headers[b"retry-after"] == b"7"
    assert b"unavailable" in sent[1]["body"].lower()


@pytest.mark.parametrize(
    "error", [RuntimeError("bug"), ConfigError("bad value")], ids=["bug", "invalid"],
)
async def test_other_errors_propagate(error: Exception) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise error

    with pytest.raises(type(error)):
        await _http(UnavailableMiddleware(failing))


async def test_error_after_response_started_propagates() -> None:
    async def late(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ComponentPaused("paused mid-response")

    with pytest.raises(ComponentPaused):
        await _http(UnavailableMiddleware(late))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "5"], ids=["negative", "float", "bool", "str"])
def test_attack_bad_retry_after(bad: Any) -> None:
    with pytest.raises(ConfigError, match="retry_after"):
        UnavailableMiddleware(_never_called, retry_after=bad)


def test_asgi_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, oneiric.lifecycle.asgi; "
        "print(sorted(m for m in ('starlette', 'fastapi', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
