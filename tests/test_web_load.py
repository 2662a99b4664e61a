"""Issue 11 acceptance: a real uvicorn app on ``Host`` operated by the CLI under load.

``examples/web_cache.py`` runs under uvicorn on 127.0.0.1; a client keeps
several concurrent request loops going the whole time and records every
response with the phase it started in.  From other processes the ``oneiric``
CLI swaps ``adapter/cache`` memory -> redis -> memory, pauses and resumes it,
swaps to redis again while this test SIGKILLs the redis server and restarts
it on the same port, then swaps back to memory.  Checked:

- no request fails during any swap (non-200 or transport error);
- while paused every request is answered 503 with ``Retry-After``;
- ``oneiric health`` reports the killed redis from a probe made after the kill
  (no probe started after the kill says ok), and ok again after it returns;
- the app counted exactly the swaps the CLI asked for.

Nothing is timed as an assertion: the figures (requests per phase, kill ->
unhealthy report, restart -> recovery) are measured and printed (``-s``).

The redis server is this test's own (a private ``redis-server`` on a free
port): the shared CI server of ``.ci/services/cache.sh`` is never stopped.
The test runs where those CI servers are (``ONEIRIC_TEST_REDIS_URL`` and
``redis-server`` on PATH), skips elsewhere and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("oneiric.adapters.cache")

from oneiric.core.helpers import parse_timestamp  # noqa: E402
from oneiric.lifecycle import read_snapshots  # noqa: E402
from oneiric.testing import PrivateRedis, free_port, poll_until, require_live  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEALTH_INTERVAL = 1.0
RETRY_AFTER = "5"  # web_cache.py: UnavailableMiddleware(retry_after=5)
WORKERS = 6
#: Responses from the new provider a swap phase waits for after the switch, so the
#: phase also covers the old instance's cleanup (grace_period below) under load.
SETTLE = 60
CEILING = 60.0  # generous ceiling of every poll (never an assertion on speed)


# ------------------------------------------------------------------ redis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    require_live(
        bool(os.environ.get("ONEIRIC_TEST_REDIS_URL")) and binary is not None
        and find_spec("redis") is not None,
        "the CI cache servers (ONEIRIC_TEST_REDIS_URL), redis-server on PATH "
        "(.ci/services/cache.sh installs it) and redis-py (oneiric-adapters-cache[redis])",
    )
    assert binary is not None
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = PrivateRedis(binary, workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# ------------------------------------------------------------------- load


@dataclass(frozen=True)
class Hit:
    """One request: the phase it started in and how it ended."""

    phase: str
    status: int | None  # None: transport error
    provider: str | None
    retry_after: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


class Load:
    """``WORKERS`` concurrent request loops on their own thread and event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = "start"
        self.hits: list[Hit] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-load", daemon=True)
        self.crashed: BaseException | None = None

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.crashed = exc

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._loop(client) for _ in range(WORKERS)))

    async def _loop(self, client: Any) -> None:
        while not self._stop.is_set():
            phase = self.phase
            try:
                response = await client.get(self.url)
            except httpx.HTTPError as exc:
                self.hits.append(Hit(phase, None, None, None, f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(0.01)
                continue
            provider = None
            if response.status_code == 200:
                provider = response.json().get("provider")
            self.hits.append(
                Hit(
                    phase, response.status_code, provider, response.headers.get("retry-after"),
                    None if response.status_code == 200 else response.text[:200],
                )
            )
            if response.status_code != 200:
                await asyncio.sleep(0.01)  # back off as a client honouring 503 would

    def of(self, phase: str) -> list[Hit]:
        return [h for h in list(self.hits) if h.phase == phase]


# ------------------------------------------------------------ health log


@dataclass(frozen=True)
class Probe:
    at: float  # epoch seconds, from the snapshot's ``last_health.at``
    ok: bool
    provider: str | None
    detail: str


class HealthLog:
    """Every distinct ``last_health`` of ``adapter/cache`` the app's snapshots showed.

    Read straight from the status files (the CLI reads the same ones), often
    enough to see each probe of a 1 s interval; the assertions only use what
    was seen, so a missed snapshot can weaken them but never fail them.
    """

    def __init__(self, state: Path) -> None:
        self.state = state
        self.seen: dict[float, Probe] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-log", daemon=True)
        self.crashed: BaseException | None = None

    def __enter__(self) -> HealthLog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.crashed = exc

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for doc in read_snapshots(self.state):
                for key in doc.get("keys", []):
                    health = key.get("last_health")
                    if (key["domain"], key["key"]) != ("adapter", "cache") or not health:
                        continue
                    at = _epoch(health["at"])
                    self.seen.setdefault(
                        at, Probe(at, bool(health["ok"]), key.get("bound"), health["detail"])
                    )

    def after(self, moment: float) -> list[Probe]:
        return sorted((p for p in list(self.seen.values()) if p.at > moment), key=lambda p: p.at)


def _epoch(text: str) -> float:
    return parse_timestamp(text).timestamp()


# -------------------------------------------------------------- the server


def _settings(config: Path, redis: PrivateRedis) -> None:
    """memory wins by default (nothing selected); redis points at the private server."""
    config.mkdir()
    (config / "oneiric.toml").write_text(
        textwrap.dedent(
            f"""
            [lifecycle]
            health_interval = {HEALTH_INTERVAL}
            # a replaced instance is cleaned up soon after its last lease, inside the
            # swap phase that replaced it
            grace_period = 0.2
            """
        )
    )
    (config / "adapters.toml").write_text(
        textwrap.dedent(
            f"""
            [provider_settings.cache.memory]
            namespace = "webload"

            [provider_settings.cache.redis]
            url = "{redis.url}"
            namespace = "webload"
            timeouts = {{ connect = 0.5, operation = 0.5 }}
            """
        )
    )


@pytest.fixture
def env(tmp_path: Path, private_redis: PrivateRedis) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    environ["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    environ["ONEIRIC_CONFIG"] = str(tmp_path / "settings")
    _settings(tmp_path / "settings", private_redis)
    return environ


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "web_cache:app", "--app-dir", str(EXAMPLES),
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
            "--no-access-log",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"uvicorn exited: {log_path.read_text()}")
        try:
            return bool(httpx.get(url, timeout=5).status_code == 200)
        except httpx.TransportError:
            return False

    try:
        poll_until(up, timeout=CEILING, interval=0.1, message=f"web_cache answering on {url}")
        yield url, proc
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


def _cache_health(env: dict[str, str]) -> dict[str, Any]:
    """``oneiric health --json --domain adapter --key cache``: the one check, and the exit code."""
    done = _cli(env, "health", "--json", "--domain", "adapter", "--key", "cache")
    assert done.returncode in (0, 5), done.stderr  # 5: a check failed (not a CLI error)
    report = json.loads(done.stdout)
    checks = [c for c in report["checks"] if (c["domain"], c["key"]) == ("adapter", "cache")]
    assert len(checks) == 1, report
    check = dict(checks[0])
    check["exit"] = done.returncode
    return check


def _cache_status(env: dict[str, str]) -> dict[str, Any]:
    done = _cli(env, "status", "--json", "--domain", "adapter")
    assert done.returncode == 0, done.stderr
    keys = [k for doc in json.loads(done.stdout)["processes"] for k in doc["keys"]]
    (cache,) = [k for k in keys if (k["domain"], k["key"]) == ("adapter", "cache")]
    return dict(cache)


# ---------------------------------------------------------------- the test


def test_cli_operates_web_app_under_load(
    server: tuple[str, subprocess.Popen[bytes]],
    env: dict[str, str],
    private_redis: PrivateRedis,
) -> None:
    url, proc = server
    state = Path(env["ONEIRIC_STATE_DIR"])
    figures: dict[str, object] = {"health_interval_s": HEALTH_INTERVAL, "workers": WORKERS}
    swap_phases: list[str] = []

    with Load(url) as load, HealthLog(state) as health_log:

        def poll(predicate: Callable[[], Any], message: str) -> Any:
            def checked() -> Any:
                if proc.poll() is not None:
                    pytest.fail(f"uvicorn exited during {load.phase}")
                if load.crashed is not None:
                    pytest.fail(f"the load client crashed: {load.crashed!r}")
                return predicate()

            return poll_until(checked, timeout=CEILING, interval=0.05, message=message)

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            done = _cli(env, *args)
            assert done.returncode == 0, f"oneiric {' '.join(args)}: {done.stderr}"
            return done

        def enough(phase: str, count: int, provider: str | None = None) -> None:
            poll(
                lambda: sum(1 for h in load.of(phase) if h.ok and
                            (provider is None or h.provider == provider)) >= count,
                f"{count} answers from {provider or 'the app'} in phase {phase!r}",
            )

        def swap(to: str) -> None:
            phase = f"swap {len(swap_phases) + 1} -> {to}"
            swap_phases.append(phase)
            load.phase = phase
            run("swap", "adapter", "cache", to)
            enough(phase, SETTLE, to)
            poll(lambda: _cache_status(env)["bound"] == to, f"status shows {to} bound")

        # (1) memory serves (the embedded default: nothing is selected)
        load.phase = "memory"
        enough("memory", SETTLE, "memory")
        assert {h.provider for h in load.of("memory")} == {"memory"}

        # (2)(3) memory -> redis -> memory, under load
        swap("redis")
        swap("memory")

        # (4) pause: 503 + Retry-After from the first refused request on; resume: 200
        load.phase = "pausing"
        run("pause", "adapter", "cache", "--note", "load test")
        poll(lambda: any(h.status == 503 for h in load.of("pausing")), "a 503 after pause")
        load.phase = "paused"  # requests started after the app refused one
        poll(lambda: len(load.of("paused")) >= 20, "requests while paused")
        load.phase = "resuming"
        run("resume", "adapter", "cache")
        poll(lambda: any(h.ok for h in load.of("resuming")), "a 200 after resume")
        load.phase = "resumed"
        enough("resumed", SETTLE, "memory")

        # (5) redis again, then kill it under load; health must report it, then recovery
        swap("redis")
        load.phase = "redis up"
        swapped_at = time.time()
        ok_before = poll(
            lambda: (c := _cache_health(env))["ok"] is True and c["provider"] == "redis"
            and _epoch(c["at"]) > swapped_at and c,
            "a healthy redis probe before the kill",
        )
        assert ok_before["exit"] == 0

        load.phase = "outage"
        private_redis.kill()
        killed_at = time.time()  # after the server is reaped: any later probe meets a dead port
        reported = poll(
            lambda: (c := _cache_health(env))["ok"] is False and c,
            "oneiric health reporting the killed redis",
        )
        reported_seen = time.time()
        private_redis.start()  # same port
        restarted_at = time.time()
        load.phase = "recovering"
        recovered = poll(
            lambda: (c := _cache_health(env))["ok"] is True and _epoch(c["at"]) > restarted_at
            and c,
            "oneiric health reporting redis back",
        )
        recovered_seen = time.time()
        load.phase = "recovered"
        enough("recovered", SETTLE, "redis")

        # (6) and back to memory
        swap("memory")
        final = _cache_status(env)

    # ------------------------------------------------------------ figures
    hits = list(load.hits)
    per_phase = Counter(h.phase for h in hits)
    failed_in_swaps = [h for h in hits if h.phase in swap_phases and not h.ok]
    paused = load.of("paused")
    outage = load.of("outage") + load.of("recovering")
    after_kill = health_log.after(killed_at)
    first_unhealthy = next((p for p in after_kill if not p.ok), None)
    figures.update(
        requests_total=len(hits),
        per_phase=dict(per_phase),
        swaps=len(swap_phases),
        failed_during_swaps=len(failed_in_swaps),
        answered_503_while_paused=sum(1 for h in paused if h.status == 503),
        outage_statuses=dict(Counter(h.status for h in load.of("outage"))),
        recovering_statuses=dict(Counter(h.status for h in load.of("recovering"))),
        kill_to_unhealthy_probe_s=(
            round(first_unhealthy.at - killed_at, 3) if first_unhealthy else None
        ),
        kill_to_cli_report_s=round(reported_seen - killed_at, 3),
        restart_to_healthy_probe_s=round(_epoch(recovered["at"]) - restarted_at, 3),
        restart_to_cli_report_s=round(recovered_seen - restarted_at, 3),
        probes_seen_after_kill=[(round(p.at - killed_at, 3), p.ok) for p in after_kill[:4]],
    )
    print("\nweb load figures:", json.dumps(figures, indent=2))

    # -------------------------------------------------------------- asserts
    assert load.crashed is None
    assert health_log.crashed is None, repr(health_log.crashed)
    # swaps: no failed request, every one of them served, and the app counted each swap
    assert len(swap_phases) == 4
    assert failed_in_swaps == [], failed_in_swaps[:5]
    for phase in swap_phases:
        assert {h.provider for h in load.of(phase)} <= {"memory", "redis"}
    assert final["bound"] == "memory"
    assert final["swaps"] == len(swap_phases)
    assert final["failures"] == 0
    # steady phases: every request served by the expected provider
    for phase, provider in (("memory", "memory"), ("resumed", "memory"),
                            ("recovered", "redis")):
        assert all(h.ok for h in load.of(phase)), [h for h in load.of(phase) if not h.ok][:5]
        assert {h.provider for h in load.of(phase)} == {provider}
    # paused: once the app refused one request, it refused every later one, with Retry-After
    assert paused and all(h.status == 503 for h in paused), Counter(h.status for h in paused)
    assert {h.retry_after for h in paused} == {RETRY_AFTER}
    assert all(h.retry_after == RETRY_AFTER for h in load.of("pausing") if h.status == 503)
    # outage: requests fail as "unavailable" (503 + Retry-After), never 500 or a dropped
    # connection; the app keeps serving its (failing) redis: a probe only reports
    assert all(h.status in (200, 503) for h in outage), Counter(h.status for h in outage)
    assert all(h.retry_after == RETRY_AFTER for h in outage if h.status == 503)
    # health: the CLI's unhealthy report comes from a probe made after the kill ...
    assert reported["provider"] == "redis"
    assert reported["exit"] == 5
    assert _epoch(reported["at"]) > killed_at
    assert "redis" in reported["detail"] and "unavailable" in reported["detail"]
    # ... and no probe after the kill said ok, except one whose PING was answered before
    # the kill and stamped just after it (then it is the very first one after the kill):
    # the first probe started after the kill is the one that reports the outage
    assert first_unhealthy is not None
    stale_ok = [p for p in after_kill if p.ok and p.at < first_unhealthy.at]
    assert stale_ok in ([], after_kill[:1]), after_kill[:4]
    # recovery: reported by a probe made after the restart, and requests succeed again
    assert recovered["provider"] == "redis" and recovered["exit"] == 0
