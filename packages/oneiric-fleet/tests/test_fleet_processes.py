"""Issue 15 acceptance with real processes: ten instances, one Redis, the real CLI.

Each instance is a Python process running a ``Host`` whose settings select the
``redis`` control plane; it activates ``adapter/cache`` and holds a lease on it
until a gate file exists (so a drain has in-flight work to wait for).  The
test drives them with the real ``oneiric`` CLI and ``RedisControlPlane`` and
SIGKILLs, SIGSTOPs and restarts them.  Nothing asserts on time: waits poll
with generous ceilings; "returned because the instance was lost" is told
from "timed out" by the result (``lost`` versus ``pending``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.fleet._plane import RedisControlPlane
from oneiric.fleet._settings import RedisPlaneSettings
from oneiric.testing import PrivateRedis, poll_until

pytestmark = pytest.mark.live

CEILING = 120.0
N = 10

APP = textwrap.dedent("""
    from oneiric.core import Candidate


    class Cache:
        def __init__(self, name, healthy=True):
            self.name = name
            self.healthy = healthy

        def health(self):
            return self.healthy


    def register(resolver):
        resolver.register(Candidate("adapter", "cache", "memory", lambda: Cache("memory")))
        resolver.register(Candidate("adapter", "cache", "redis", lambda: Cache("redis")))
        resolver.register(Candidate("adapter", "cache", "broken",
                                    lambda: Cache("broken", healthy=False)))
""")

INSTANCE = textwrap.dedent("""
    import asyncio, signal, sys
    from pathlib import Path
    from oneiric.lifecycle import Host

    config, state, gate = sys.argv[1:4]

    async def hold(host):
        try:
            async with host.lease("adapter", "cache"):
                while not Path(gate).exists():
                    await asyncio.sleep(0.02)
        except Exception:
            pass  # paused meanwhile: nothing to hold

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with Host(config, state_dir=state, watch=False, app="fleetapp:register",
                        activate=["adapter/cache"]) as host:
            holder = asyncio.ensure_future(hold(host))
            print("ready", flush=True)
            await stop.wait()
            holder.cancel()

    asyncio.run(main())
""")


class Fleet:
    """Ten instance processes of one fleet, and the operator's view of them."""

    def __init__(self, tmp: Path, redis: PrivateRedis) -> None:
        self.tmp = tmp
        self.config = tmp / "settings"
        self.config.mkdir()
        (self.config / "oneiric.toml").write_text(textwrap.dedent(f"""
            [control.selections]
            plane = "redis"
            [control.provider_settings.plane.redis]
            url = "{redis.url}"
            fleet = "shop"
            heartbeat = 0.25
            [adapter.selections]
            cache = "memory"
            [lifecycle]
            grace_period = 0
        """))
        (tmp / "fleetapp.py").write_text(APP)
        (tmp / "instance.py").write_text(INSTANCE)
        self.gate = tmp / "gate"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(tmp), os.environ.get("PYTHONPATH", "")])}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.ops = RedisControlPlane(RedisPlaneSettings(url=redis.url, fleet="shop",
                                                        heartbeat=0.25))

    def start(self, name: str) -> None:
        old = self.procs.pop(name, None)
        if old is not None:  # a restart: the old process was reaped by the test
            old.wait(timeout=30)
            if old.stdout is not None:
                old.stdout.close()
        proc = subprocess.Popen(
            [sys.executable, str(self.tmp / "instance.py"), str(self.config),
             str(self.tmp / f"state-{name}"), str(self.gate)],
            env={**self.env, "ONEIRIC_INSTANCE_ID": name}, stdout=subprocess.PIPE, text=True)
        self.procs[name] = proc

    def ready(self, names: list[str]) -> None:
        for name in names:
            stdout = self.procs[name].stdout
            assert stdout is not None and stdout.readline().strip() == "ready", name

    def live(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.ops.instances().documents}

    def bound(self, name: str) -> str | None:
        doc = self.live().get(name)
        return doc["keys"][0]["bound"] if doc and doc.get("keys") else None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oneiric.cli", "--config", str(self.config),
             "--state-dir", str(self.tmp / "cli-state"), *args],
            env=self.env, capture_output=True, text=True, timeout=CEILING)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        self.ops.close()


@pytest.fixture
def fleet(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[Fleet]:
    made = Fleet(tmp_path, private_redis)
    try:
        yield made
    finally:
        made.stop()


def _results(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    document = json.loads(done.stdout)
    return {r["instance"]: r["result"] for r in document["wait"]["instances"]}


def test_ten_instances_swap_drain_freeze_restart_and_trim(
    fleet: Fleet, private_redis: PrivateRedis,
) -> None:
    names = [f"i{n}" for n in range(N)]
    for name in names:
        fleet.start(name)
    fleet.ready(names)
    poll_until(lambda: len(fleet.live()) == N, timeout=CEILING, message="ten instances report")

    # a swap with --wait, acknowledged by all ten
    swapped = fleet.cli("--app", "fleetapp:register", "swap", "adapter", "cache", "redis",
                        "--wait", "--timeout", "60", "--json")
    assert swapped.returncode == 0, swapped.stderr
    assert _results(swapped) == dict.fromkeys(names, "swapped")
    assert all(fleet.bound(n) == "redis" for n in names)  # status is published before acks

    # SIGKILL one instance mid-drain: the command lists it lost, never waits for it
    draining = subprocess.Popen(
        [sys.executable, "-m", "oneiric.cli", "--config", str(fleet.config), "--state-dir",
         str(fleet.tmp / "cli-state"), "drain", "adapter", "cache", "--force", "--wait",
         "--timeout", "100", "--json"],
        env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poll_until(lambda: all(d["keys"][0]["activity"]["state"] == "draining"
                           for d in fleet.live().values()), timeout=CEILING,
               message="every instance is draining (its lease still held)")
    fleet.procs["i3"].send_signal(signal.SIGKILL)
    fleet.gate.touch()  # the other nine finish their in-flight work
    out, err = draining.communicate(timeout=CEILING)
    assert draining.returncode == 5, err
    results = {r["instance"]: r["result"] for r in json.loads(out)["wait"]["instances"]}
    assert results == {**dict.fromkeys([n for n in names if n != "i3"], "drained"),
                       "i3": "lost"}
    assert "lost" in err and "\n" not in err.strip()
    assert fleet.cli("resume", "adapter", "cache", "--force").returncode == 0

    # one instance frozen (SIGSTOP) and one restarted catch up: no change lost
    live = [n for n in names if n != "i3"]
    fleet.procs["i4"].send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    fleet.procs["i5"].send_signal(signal.SIGKILL)
    fleet.procs["i5"].wait(timeout=30)
    first = fleet.ops.select("adapter", "cache", "memory")
    fleet.ops.set_activity("adapter", "cache", "paused", note="freeze test")
    last = fleet.ops.set_activity("adapter", "cache", "active")
    fleet.start("i5")
    fleet.ready(["i5"])
    # frozen for 5 s (its status expires meanwhile: 'lost', then live again) - a wait, not
    # an assertion on speed
    poll_until(lambda: time.monotonic() - frozen_at >= 5.0, timeout=CEILING, message="5 s")
    fleet.procs["i4"].send_signal(signal.SIGCONT)
    poll_until(lambda: all(fleet.live().get(n, {}).get("applied_revision") == last.revision
                           for n in live), timeout=CEILING, message="all caught up")
    poll_until(lambda: all(fleet.bound(n) == "memory" for n in live), timeout=CEILING,
               message="every live instance swapped back to memory")
    assert first.revision is not None and last.revision == first.revision + 2
    # the frozen one read on (or relisted, if its reads timed out while frozen) and
    # acknowledged the latest revision: nothing it missed was lost
    poll_until(lambda: "i4" in fleet.ops.admin.acks(last.revision), timeout=CEILING,
               message="i4 acknowledges the latest revision")
    assert fleet.ops.admin.acks(last.revision)["i4"]["result"] == "resumed"

    # the log trimmed below a stopped instance's cursor: it relists, acks the latest
    import redis

    fleet.procs["i6"].send_signal(signal.SIGSTOP)
    fleet.ops.select("adapter", "cache", "redis")
    latest = fleet.ops.select("adapter", "cache", "memory")
    assert latest.revision is not None
    redis.Redis.from_url(private_redis.url).xtrim(
        fleet.ops.admin.keys.log, minid=f"{latest.revision}-1", approximate=False)
    fleet.procs["i6"].send_signal(signal.SIGCONT)
    poll_until(lambda: "i6" in fleet.ops.admin.acks(latest.revision), timeout=CEILING,
               message="i6 relists and acknowledges the latest revision")
    assert fleet.ops.admin.acks(latest.revision)["i6"]["result"] == "swapped"


def test_a_stale_write_is_refused_and_a_flushed_redis_unbinds_nothing(
    fleet: Fleet, private_redis: PrivateRedis,
) -> None:
    import redis

    names = ["a", "b", "c"]
    for name in names:
        fleet.start(name)
    fleet.ready(names)
    poll_until(lambda: len(fleet.live()) == 3, timeout=CEILING, message="three report")
    first = fleet.cli("--app", "fleetapp:register", "swap", "adapter", "cache", "redis",
                      "--expect-revision", "0", "--wait", "--json")
    assert first.returncode == 0, first.stderr
    stale = fleet.cli("--app", "fleetapp:register", "swap", "adapter", "cache", "memory",
                      "--expect-revision", "0")
    assert stale.returncode == 6 and "not 0; nothing was written" in stale.stderr
    redis.Redis.from_url(private_redis.url).flushall()
    poll_until(lambda: len(fleet.live()) == 3 and all(
        d["control_plane"]["state"] == "regressed" for d in fleet.live().values()),
        timeout=CEILING, message="every instance reports regressed")
    assert all(fleet.bound(n) == "redis" for n in names)  # nothing unbound
    status = fleet.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["control_plane"]["provider"] == "redis"
    listed = fleet.cli("fleet", "status", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert {i["id"]: i["control_plane"]["state"] for i in document["instances"]} == dict.fromkeys(
        names, "regressed")
    assert all(i["keys"][0]["bound"] == "redis" and not i["lost"]
               for i in document["instances"])

    # an operator adopts: the bindings become the desired state, instances follow again
    adopted = fleet.cli("fleet", "adopt", "--json")
    assert adopted.returncode == 0, adopted.stderr
    assert json.loads(adopted.stdout)["seeded"] == [
        {"domain": "adapter", "key": "cache", "tenant": None, "provider": "redis"}]
    poll_until(lambda: all(d["control_plane"]["state"] == "ok" for d in fleet.live().values())
               and len(fleet.live()) == 3, timeout=CEILING, message="instances follow again")
    history = fleet.cli("fleet", "history", "--json")
    (change,) = json.loads(history.stdout)["changes"]
    assert (change["provider"], change["note"], change["revision"]) == ("redis", "fleet adopt", 1)
    text = fleet.cli("fleet", "status")
    assert text.returncode == 0 and "adapter/cache: bound redis" in text.stdout


def test_fleet_commands_refuse_the_local_plane(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "oneiric.cli", "--state-dir",
                           str(tmp_path / "state"), "fleet", "status"],
                          capture_output=True, text=True, timeout=CEILING)
    assert done.returncode == 2 and "not a fleet" in done.stderr


def test_canary_rolls_back_a_failing_provider_survives_its_controller_and_promotes(
    fleet: Fleet,
) -> None:
    from oneiric.fleet._rollout import cohort_of

    names = [f"i{n}" for n in range(N)]
    for name in names:
        fleet.start(name)
    fleet.ready(names)
    poll_until(lambda: len(fleet.live()) == N, timeout=CEILING, message="ten instances report")
    app = ("--app", "fleetapp:register")

    # a 10% canary whose provider fails health: rolled back, no other instance touched
    failing = fleet.cli(*app, "swap", "adapter", "cache", "broken", "--canary", "10%",
                        "--bake", "1s", "--wait", "--json")
    assert failing.returncode == 5, failing.stderr
    report = json.loads(failing.stdout)
    assert report["state"] == "rolled_back" and "health_failed" in report["detail"]
    (member,) = report["cohort"]
    assert report["cohort"] == cohort_of("adapter", "cache", "broken", names, 10)
    canary_acks = fleet.ops.admin.acks(report["revision"])
    assert set(canary_acks) == {member}  # nobody else even saw a change to apply
    others = [n for n in names if n != member]
    assert all(fleet.live()[n]["keys"][0]["swaps"] == 0 for n in others)
    assert all(fleet.bound(n) == "memory" for n in names)

    # the controller SIGKILLed mid-bake: the rollout is in Redis; abort rolls the cohort back
    controller = subprocess.Popen(
        [sys.executable, "-m", "oneiric.cli", "--config", str(fleet.config), "--state-dir",
         str(fleet.tmp / "cli-state"), *app, "swap", "adapter", "cache", "redis", "--canary",
         "20%", "--bake", "600s", "--wait"],
        env=fleet.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    poll_until(lambda: (fleet.ops.admin.rollout() or {}).get("state") == "baking",
               timeout=CEILING, message="the cohort swapped; the bake runs")
    controller.kill()
    controller.wait(timeout=30)
    status = fleet.cli("fleet", "rollout", "status", "--json")
    record = json.loads(status.stdout)["rollout"]
    cohort = cohort_of("adapter", "cache", "redis", names, 20)
    assert record["cohort"] == cohort and record["state"] == "baking"
    assert all(fleet.bound(n) == "redis" for n in cohort)
    aborted = fleet.cli("fleet", "rollout", "abort", "--json")
    assert aborted.returncode == 0, aborted.stderr
    assert json.loads(aborted.stdout)["rollout"]["state"] == "aborted"
    poll_until(lambda: all(fleet.bound(n) == "memory" for n in cohort), timeout=CEILING,
               message="the cohort swaps back")
    assert all(fleet.live()[n]["keys"][0]["swaps"] == 0 for n in names if n not in cohort)
    assert fleet.cli("fleet", "rollout", "promote").returncode == 3  # nothing in progress

    # a healthy canary bakes and is promoted to all
    promoted = fleet.cli(*app, "swap", "adapter", "cache", "redis", "--canary", "10%",
                         "--bake", "1s", "--wait", "--json")
    assert promoted.returncode == 0, promoted.stderr
    final = json.loads(promoted.stdout)
    assert final["state"] == "promoted"
    assert {r["instance"]: r["result"] for r in final["instances"]} == dict.fromkeys(
        names, "swapped")
    assert fleet.ops.desired().selection("adapter", "cache") == "redis"
