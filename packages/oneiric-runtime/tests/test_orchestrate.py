"""``oneiric orchestrate`` as a real process: endpoints, tokens, pause, health, SIGTERM.

Every test starts ``python -m oneiric.cli orchestrate`` on ``127.0.0.1:0`` (the
address it announces on stderr is read back) with a settings dir and an
``--app`` module that registers ``adapter/cache`` (its ``health()`` fails while
the flag file ``sick`` exists), an action ``test.gate`` (waits for the flag
file ``open``) and, with ``ORCH_RUN=1``, a host service that starts workflow
run ``r1`` inside the orchestrator.  Control commands (``oneiric pause``) are
separate processes on the same state dir.  Nothing is timed: every eventual
state is polled with a generous ceiling.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

APP = '''
import asyncio
import contextlib
import os
import pathlib

from oneiric.actions import ActionSpec
from oneiric.core import Candidate, hookimpl

FLAGS = pathlib.Path(os.environ["ORCH_FLAGS"])
(FLAGS / "app-imported").touch()


class Cache:
    def health(self):
        return not (FLAGS / "sick").exists()


class Gate:
    spec = ActionSpec(side_effects=False, idempotent=True)

    async def invoke(self, payload, context):
        (FLAGS / f"started-{context.node_id}-{context.attempt}").touch()
        while not (FLAGS / "open").exists():
            await asyncio.sleep(0.02)
        return {"node": context.node_id, "attempt": context.attempt}


def workflow():
    from oneiric.runtime import Node, Workflow

    return Workflow("wf", [Node("first", "test.gate"),
                           Node("second", "test.gate", needs=["first"])])


@contextlib.asynccontextmanager
async def start_run(host):
    from oneiric.runtime import WorkflowEngine

    engine = WorkflowEngine(host.lifecycle, state_dir=host.state_dir)
    engine.register(workflow())
    task = asyncio.ensure_future(engine.run("wf", {}, run_id="r1"))
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.aclose()


class Runner:
    @hookimpl
    def oneiric_host_services(self, host):
        return start_run(host) if os.environ.get("ORCH_RUN") else None


def register(resolver):
    resolver.register(Candidate("adapter", "cache", "flaky", Cache))
    resolver.register(Candidate("action", "test.gate", "test", Gate))
    resolver.hooks.register(Runner())
'''

TOKEN = "s3cret-token-for-the-test-0123456789"
CEILING = 60.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "orch_app.py").write_text(APP)
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "oneiric.toml").write_text('[host]\nactivate = ["adapter.cache"]\n')
    flags = tmp_path / "flags"
    flags.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ.update({
        "ONEIRIC_STATE_DIR": str(tmp_path / "state"),
        "ONEIRIC_CONFIG": str(settings),
        "ONEIRIC_APP": "orch_app:register",
        "ONEIRIC_CLI_CACHE": "0",
        "ORCH_FLAGS": str(flags),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *filter(None, [
            os.environ.get("PYTHONPATH")])]),
    })
    return environ


def flags(env: dict[str, str]) -> Path:
    return Path(env["ORCH_FLAGS"])


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + CEILING
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


class Orchestrator:
    """A running ``oneiric orchestrate`` process and its announced address."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.log = Path(env["ORCH_FLAGS"]).parent / f"orchestrate-{time.monotonic_ns()}.err"
        self._err = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oneiric.cli", "orchestrate", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=self._err, text=True)
        line = eventually(self._announced, "the listening line on stderr")
        self.url = line.split("listening on ", 1)[1].split()[0]

    def _announced(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"orchestrate exited {self.proc.returncode}: {self.stderr()}")
        for line in self.log.read_text().splitlines():
            if "listening on http://" in line:
                return line
        return None

    def stderr(self) -> str:
        return self.log.read_text()

    def get(self, path: str, token: str | None = None, scheme: str = "Bearer"
            ) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path)
        if token is not None:
            request.add_header("Authorization", f"{scheme} {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def ready(self) -> tuple[int, Any]:
        status, body = self.get("/readyz", TOKEN)
        return status, json.loads(body)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=CEILING)
        self._err.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@pytest.fixture
def orchestrate(env: dict[str, str]) -> Iterator[Callable[..., Orchestrator]]:
    started: list[Orchestrator] = []

    def start(*args: str, environ: dict[str, str] | None = None) -> Orchestrator:
        made = Orchestrator(environ or env, *args)
        started.append(made)
        return made

    yield start
    for made in started:
        made.close()


def oneiric(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def reasons(orch: Orchestrator) -> list[str]:
    return [r["reason"] for r in orch.ready()[1]["reasons"]]


# ------------------------------------------------------------------ endpoints


def test_healthz_status_and_metrics_of_a_running_host(
    orchestrate: Callable[..., Orchestrator],
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    orch = orchestrate("--http", "127.0.0.1:0", "--health-interval", "0.1")
    assert orch.get("/healthz") == (200, b"ok\n")
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200")
    status, body = orch.get("/status")
    assert status == 200
    document = json.loads(body)
    keys = {(k["domain"], k["key"]): k for k in document["keys"]}
    assert keys[("adapter", "cache")]["bound"] == "flaky"
    assert document["pid"] == orch.proc.pid
    status, body = orch.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert all(name.startswith("oneiric_") for name in families)
    handled = {s.labels["status"]: s.value for s in families["oneiric_event_handled"].samples
               if s.name == "oneiric_event_handled_total"}
    assert set(handled) == {"ok", "failed", "timed_out", "dead_lettered", "duplicate"}
    up = [s for s in families["oneiric_component_up"].samples
          if s.labels["domain"] == "adapter" and s.labels["key"] == "cache"]
    assert [(s.labels["provider"], s.value) for s in up] == [("flaky", 1.0)]
    assert families["oneiric_ready"].samples[0].value == 1.0
    assert families["oneiric_up"].samples[0].value == 1.0
    assert "oneiric_component_swaps" in families  # counter family (samples *_total)
    assert orch.get("/nope")[0] == 404
    assert orch.terminate() == 0, orch.stderr()


def test_readyz_flips_to_503_while_the_key_is_paused(
    env: dict[str, str], orchestrate: Callable[..., Orchestrator],
) -> None:
    orch = orchestrate("--http", "127.0.0.1:0")
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200")
    paused = oneiric(env, "pause", "adapter", "cache", "--note", "maintenance")
    assert paused.returncode == 0, paused.stderr
    eventually(lambda: orch.ready()[0] == 503, "/readyz 503 after pause")
    [reason] = orch.ready()[1]["reasons"]
    assert reason["reason"] == "paused" and reason["key"] == "cache"
    assert reason["note"] == "maintenance"
    resumed = oneiric(env, "resume", "adapter", "cache")
    assert resumed.returncode == 0, resumed.stderr
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200 after resume")
    drained = oneiric(env, "drain", "adapter", "cache")
    assert drained.returncode == 0, drained.stderr
    eventually(lambda: reasons(orch) == ["drained"], "/readyz 503 drained")
    assert orch.terminate() == 0, orch.stderr()


def test_readyz_flips_to_503_when_the_provider_health_fails(
    env: dict[str, str], orchestrate: Callable[..., Orchestrator],
) -> None:
    orch = orchestrate("--http", "127.0.0.1:0", "--health-interval", "0.1")
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200")
    (flags(env) / "sick").touch()
    eventually(lambda: orch.ready()[0] == 503, "/readyz 503 once health() fails")
    assert reasons(orch) == ["unhealthy"]
    (flags(env) / "sick").unlink()
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200 once health() recovers")
    assert orch.terminate() == 0, orch.stderr()


def test_serverless_profile_runs_no_watcher_and_gets_ready(
    env: dict[str, str], orchestrate: Callable[..., Orchestrator],
) -> None:
    for orch in (orchestrate("--http", "127.0.0.1:0", "--profile", "serverless"),
                 orchestrate("--http", "127.0.0.1:0",
                             environ={**env, "ONEIRIC_PROFILE": "serverless"})):
        assert "profile serverless" in orch.stderr()
        eventually(lambda orch=orch: orch.ready()[0] == 200, "/readyz 200")
        document = json.loads(orch.get("/status")[1])
        assert document["config"] == []  # no settings watcher
        [key] = [k for k in document["keys"] if k["key"] == "cache"]
        assert key["last_health"]["ok"] is True  # the bind-time probe; no periodic ones
        assert orch.terminate() == 0, orch.stderr()


# --------------------------------------------------------------------- tokens


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "192.0.2.10:9180"])
def test_attack_public_bind_without_token_is_refused_before_loading(
    env: dict[str, str], address: str,
) -> None:
    proc = oneiric(env, "orchestrate", "--http", address)
    assert proc.returncode == 6, proc.stderr
    assert "without a token" in one_line(proc)
    assert not (flags(env) / "app-imported").exists()  # refused before --app loaded


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_attack_token_file_readable_by_group_or_others_is_refused(
    env: dict[str, str], tmp_path: Path, mode: int,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(mode)
    proc = oneiric(env, "orchestrate", "--http", "0.0.0.0:0", "--token-file", str(token_file))
    assert proc.returncode == 6, proc.stderr
    line = one_line(proc)
    assert f"mode {mode:04o}" in line and "chmod 600" in line
    assert not (flags(env) / "app-imported").exists()


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [("", 4, "is empty"), ("short", 4, "use 16 to 4096"),
     ("has a space in the middle of it", 4, "header cannot carry"), (None, 3, "does not exist")],
    ids=["empty", "short", "space", "missing"],
)
def test_attack_bad_token_file_is_refused_in_one_line(
    env: dict[str, str], tmp_path: Path, content: str | None, code: int, fragment: str,
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
        token_file.chmod(0o600)
    proc = oneiric(env, "orchestrate", "--http", "0.0.0.0:0", "--token-file", str(token_file))
    assert proc.returncode == code, proc.stderr
    assert fragment in one_line(proc)
    assert TOKEN not in proc.stderr


@pytest.mark.parametrize("address", ["example.com:80", "127.0.0.1", "127.0.0.1:99999", ":80"])
def test_attack_malformed_http_address_is_a_usage_error(
    env: dict[str, str], address: str,
) -> None:
    proc = oneiric(env, "orchestrate", "--http", address)
    assert proc.returncode == 2, proc.stderr
    assert "--http" in one_line(proc)


@pytest.mark.parametrize("source", ["file", "env"])
def test_token_guards_a_public_bind(
    env: dict[str, str], tmp_path: Path, orchestrate: Callable[..., Orchestrator], source: str,
) -> None:
    if source == "file":
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        orch = orchestrate("--http", "0.0.0.0:0", "--token-file", str(token_file))
    else:
        orch = orchestrate("--http", "0.0.0.0:0", environ={**env, "ONEIRIC_TOKEN": TOKEN})
    orch.url = orch.url.replace("0.0.0.0", "127.0.0.1")
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200")
    for path in ("/status", "/metrics"):
        assert orch.get(path)[0] == 401, path
        assert orch.get(path, "wrong-token-wrong-token-wrong")[0] == 401, path
        assert orch.get(path, TOKEN[:-1])[0] == 401, path
        assert orch.get(path, TOKEN, scheme="Basic")[0] == 401, path
        assert orch.get(path, TOKEN)[0] == 200, path
    # probes answer without a credential, but name nothing; a wrong one is still refused
    status, body = orch.get("/readyz")
    assert (status, json.loads(body)) == (200, {"ready": True})
    assert orch.get("/healthz")[0] == 200
    assert orch.get("/readyz", "wrong-token-wrong-token-wrong")[0] == 401
    assert orch.terminate() == 0, orch.stderr()


# ------------------------------------------------------------------- shutdown


def test_sigterm_exits_zero_and_the_process_is_gone(
    orchestrate: Callable[..., Orchestrator],
) -> None:
    orch = orchestrate("--http", "127.0.0.1:0")
    eventually(lambda: orch.ready()[0] == 200, "/readyz 200")
    port = int(orch.url.rsplit(":", 1)[1])
    assert orch.terminate() == 0, orch.stderr()
    assert orch.proc.poll() == 0
    with pytest.raises(OSError):  # the listener is closed
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


RESUME = '''
import asyncio, json, sys
from oneiric.core import Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import WorkflowEngine
import orch_app

async def main():
    resolver = Resolver()
    orch_app.register(resolver)
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    engine = WorkflowEngine(lifecycle, state_dir=sys.argv[1])
    engine.register(orch_app.workflow())
    before = engine.status("r1")
    result = await engine.resume("r1")
    print(json.dumps({"before": {n: s.status for n, s in before.nodes.items()},
                      "status": result.status, "outputs": result.outputs,
                      "attempts": {n: s.attempts for n, s in result.nodes.items()}}))
    await engine.aclose()
    await lifecycle.shutdown()

asyncio.run(main())
'''


def test_sigterm_with_a_node_in_flight_checkpoints_it_and_resume_completes_the_run(
    env: dict[str, str], orchestrate: Callable[..., Orchestrator],
) -> None:
    orch = orchestrate("--http", "127.0.0.1:0", "--drain-timeout", "300ms",
                       environ={**env, "ORCH_RUN": "1"})
    eventually(lambda: (flags(env) / "started-first-1").exists(), "node 'first' started")
    assert orch.terminate() == 0, orch.stderr()
    assert not (flags(env) / "started-second-1").exists()
    (flags(env) / "open").touch()
    proc = subprocess.run([sys.executable, "-c", RESUME, env["ONEIRIC_STATE_DIR"]], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["before"] == {"first": "cancelled", "second": "pending"}
    assert result["status"] == "succeeded"
    assert set(result["outputs"]) == {"first", "second"}
    assert result["attempts"] == {"first": 2, "second": 1}  # 'first' ran exactly once more
    assert (flags(env) / "started-second-1").exists()


# ---------------------------------------------------------- the HTTP parser


async def _exchange(raw: bytes, **endpoint_options: Any) -> tuple[int, bytes, list[Any]]:
    """Send ``raw`` to a real ``HttpEndpoint`` on 127.0.0.1; (status, whole response, seen)."""
    import asyncio

    from oneiric.runtime._http import HttpEndpoint, Request, Response

    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, b"handled\n")

    endpoint = HttpEndpoint(handler, **endpoint_options)
    address = await endpoint.start_tcp("127.0.0.1", 0)
    port = int(address.rsplit(":", 1)[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), CEILING)
        writer.close()
    finally:
        await endpoint.close()
    return int(response.split(b" ", 2)[1]), response, seen


GOOD = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /status HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET /readyz HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
         400),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 9\r\n\r\n",
         400),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\n folded: value\r\n\r\n", 400),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400),
        (b"GET /readyz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET http://evil/readyz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /re adyz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /\xffreadyz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["post", "delete", "body", "chunked", "no-host", "two-hosts", "two-auth",
         "two-lengths", "folded", "bad-name", "http2", "absolute-form", "asterisk",
         "space-in-target", "non-ascii", "long-target", "big-head"],
)
async def test_attack_malformed_request_is_refused_before_any_handler(
    raw: bytes, status: int,
) -> None:
    got, response, seen = await _exchange(raw)
    assert got == status, response
    assert seen == []
    assert b"Connection: close" in response


@pytest.mark.anyio
async def test_attack_slow_client_gets_408_and_the_handler_never_runs() -> None:
    got, _response, seen = await _exchange(b"GET /readyz HTTP/1.1\r\nHost: x\r\n",
                                           read_timeout=0.2)
    assert (got, seen) == (408, [])


@pytest.mark.anyio
async def test_a_well_formed_get_reaches_the_handler_with_query_and_headers() -> None:
    got, response, seen = await _exchange(
        b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n")
    assert got == 200 and response.endswith(b"handled\n")
    assert [(r.method, r.path, r.query, r.headers["authorization"]) for r in seen] == [
        ("GET", "/metrics", "x=1", "Bearer t")]
    got, response, _ = await _exchange(GOOD.replace(b"GET", b"HEAD", 1))
    assert got == 200 and response.endswith(b"\r\n\r\n")  # HEAD: no body
