"""oneiric-fleet on loopback: propagation, acknowledgements, status, takeover, import cost.

A throwaway ``redis-server`` on 127.0.0.1 (persistence off); every instance a
real process or a real ``Host``.  Figures (issue 15 targets):

1. A change propagated to 100 followers (10 processes x 10 tasks, each its
   own connection and blocking reader): write time to arrival, p50/p99 over
   the changes - target p99 <= 15 ms.
2. A swap acknowledged by all 100 instances (10 processes x 10 ``Host``s with
   the ``redis`` plane; ``select`` then ``wait``): p50/p99 - target p99 <= 250 ms.
3. ``fleet status`` for 100 and 1,000 instances (synthetic status documents of
   the size a one-key instance publishes): the plane's ``instances()`` in
   process - targets <= 100 ms and <= 500 ms - and the whole ``oneiric fleet
   status --json`` command (a new process) beside ``oneiric --help``.
4. Takeover of a dead worker's workflow node (``RedisRunQueue``, real worker
   processes, the first SIGKILLed mid-node): kill to restart by the other
   worker - target <= min_idle + 1 s.
5. ``import oneiric.core`` (target: unchanged, <= 50 ms) beside ``python -c pass``.

Run: ``python benchmarks/bench_fleet.py [--json] [--quick]`` (needs redis-server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RedisServer, Result, median, parser, report

MS = 1000.0
PROCESSES = 10
PER_PROCESS = 10

FOLLOWERS = textwrap.dedent("""
    import asyncio, json, sys, time
    from oneiric.fleet import Changed, FleetMember, Follower, Relisted

    url, count = sys.argv[1], int(sys.argv[2])
    latencies = []

    async def follow(n, ready):
        member = FleetMember(url, fleet="bench", instance=f"f{n}")
        async for event in Follower(member, block=1.0).events():
            if isinstance(event, Relisted):
                ready.set()
            elif isinstance(event, Changed):
                latencies.append(time.time() - event.change.at)

    async def main():
        events = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.ensure_future(follow(n, e)) for n, e in enumerate(events)]
        await asyncio.gather(*(e.wait() for e in events))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps(latencies), flush=True)

    asyncio.run(main())
""")

HOSTS = textwrap.dedent("""
    import asyncio, os, sys
    from contextlib import AsyncExitStack
    from oneiric.core import Candidate
    from oneiric.lifecycle import Host

    config, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Cache:
        def health(self):
            return True

    def register(resolver):
        for name in ("memory", "redis"):
            resolver.register(Candidate("adapter", "cache", name, Cache))

    async def main():
        async with AsyncExitStack() as stack:
            for n in range(count):
                os.environ["ONEIRIC_INSTANCE_ID"] = f"{prefix}-{n}"
                await stack.enter_async_context(Host(
                    config, state_dir=f"{config}/../state-{prefix}-{n}", watch=False,
                    app=register, activate=["adapter/cache"], health_interval=0))
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
""")

WORKER = textwrap.dedent("""
    import asyncio, os, sys, time
    from pathlib import Path
    from oneiric.actions import ActionSpec
    from oneiric.core import Candidate, Resolver
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager
    from oneiric.runtime import (Node, RedisCheckpointStore, RedisRunQueue, Workflow,
                                 WorkflowEngine)

    url, log, name, min_idle = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    class Step:
        spec = ActionSpec(side_effects=False, idempotent=True)

        async def invoke(self, payload, context):
            with open(log, "a") as f:
                f.write(f"{context.node_id} {name} {time.time()}\\n")
            if name == "A" and context.node_id == "slow":
                await asyncio.sleep(3600)
            return {}

    async def main():
        resolver = Resolver()
        resolver.register(Candidate("action", "b.step", "bench", Step))
        lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                     config=LifecycleConfig(grace_period=0, health_interval=0))
        engine = WorkflowEngine(lifecycle, store=RedisCheckpointStore(url, fleet="bench",
                                                                      lease=min_idle))
        engine.register(Workflow("takeover", [Node("first", "b.step"),
                                              Node("slow", "b.step", needs=["first"])]))
        queue = RedisRunQueue(engine, url, fleet="bench", consumer=name, min_idle=min_idle,
                              block=0.1)
        if name == "A":
            await queue.submit("takeover", None, run_id="bench-run")
        print("ready", flush=True)
        await queue.serve()

    asyncio.run(main())
""")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def _spawn(script: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    proc = subprocess.Popen([sys.executable, str(script), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc


def _ready(procs: list[Any]) -> None:
    for proc in procs:
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a benchmark process did not start (said {line!r})")


def propagation(url: str, tmp: Path, changes: int) -> list[Result]:
    from oneiric.fleet import FleetAdmin, LoggedChange

    script = tmp / "followers.py"
    script.write_text(FOLLOWERS)
    procs = [_spawn(script, url, str(PER_PROCESS)) for _ in range(PROCESSES)]
    _ready(procs)
    admin = FleetAdmin(url, fleet="bench")
    for i in range(changes):
        admin.write(LoggedChange(0, "", "activity", "adapter", "cache",
                                 state="paused" if i % 2 else "active", actor="bench"))
        time.sleep(0.02)
    time.sleep(1.0)
    latencies: list[float] = []
    for proc in procs:
        out, _ = proc.communicate("", timeout=60)
        latencies += json.loads(out.strip().splitlines()[-1])
    admin.close()
    expected = changes * PROCESSES * PER_PROCESS
    values = [v * MS for v in latencies]
    note = (f"{len(values)} of {expected} arrivals ({changes} changes x "
            f"{PROCESSES * PER_PROCESS} followers), write to arrival")
    return [
        Result("change propagated to 100 followers, p50", median(values), "ms", note=note),
        Result("change propagated to 100 followers, p99", _percentile(values, 99), "ms",
               target="<= 15 ms", check=("value", 15.0)),
    ]


def acknowledgements(url: str, tmp: Path, swaps: int) -> list[Result]:
    from oneiric.fleet._plane import RedisControlPlane
    from oneiric.fleet._settings import RedisPlaneSettings

    config = tmp / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(textwrap.dedent(f"""
        [control.selections]
        plane = "redis"
        [control.provider_settings.plane.redis]
        url = "{url}"
        fleet = "acks"
        heartbeat = 1.0
        [lifecycle]
        grace_period = 0
    """))
    script = tmp / "hosts.py"
    script.write_text(HOSTS)
    procs = [_spawn(script, str(config), f"p{p}", str(PER_PROCESS)) for p in range(PROCESSES)]
    _ready(procs)
    plane = RedisControlPlane(RedisPlaneSettings(url=url, fleet="acks", heartbeat=1.0),
                              sleep=lambda s: time.sleep(0.002))
    deadline = time.monotonic() + 120
    while len(plane.instances().documents) < PROCESSES * PER_PROCESS:
        if time.monotonic() > deadline:
            raise RuntimeError("the 100 hosts did not all report")
        time.sleep(0.1)
    times: list[float] = []
    for i in range(swaps):
        start = time.perf_counter()
        change = plane.select("adapter", "cache", "redis" if i % 2 == 0 else "memory")
        results = plane.wait(change, timeout=30)
        elapsed = (time.perf_counter() - start) * MS
        if len(results) != 100 or any(r.result != "swapped" for r in results):
            raise RuntimeError(f"swap {i}: not acknowledged by all: {results[:3]}")
        times.append(elapsed)
    for proc in procs:
        proc.communicate("", timeout=60)
    plane.close()
    note = f"{swaps} swaps, each select -> every one of 100 instances acked 'swapped'"
    return [
        Result("swap acked by all 100 instances, p50", median(times), "ms", note=note),
        Result("swap acked by all 100 instances, p99", _percentile(times, 99), "ms",
               target="<= 250 ms", check=("value", 250.0)),
    ]


def fleet_status(url: str, tmp: Path, repeats: int) -> list[Result]:
    import redis

    from oneiric.fleet import FleetKeys
    from oneiric.fleet._plane import RedisControlPlane
    from oneiric.fleet._settings import RedisPlaneSettings

    client = redis.Redis.from_url(url)
    doc_keys = [{"domain": "adapter", "key": "cache", "tenant": None, "winner": "redis",
                 "bound": "redis", "activity": {"state": "active", "in_flight": 0},
                 "last_health": {"ok": True, "detail": "", "at": "2026-11-30T10:00:00Z"},
                 "swaps": 3, "failures": 0, "recent_failures": []}]
    config = tmp / "status-settings"
    config.mkdir()
    results: list[Result] = []
    for count, target in ((100, 100.0), (1000, 500.0)):
        fleet = f"status{count}"
        keys = FleetKeys(fleet)
        pipe = client.pipeline(transaction=False)
        now = time.time()
        for n in range(count):
            instance = f"web-{n}"
            body = {"id": instance, "host": "vm", "pid": n, "applied_revision": 7,
                    "keys": doc_keys, "control_plane": {"state": "ok", "revision": 7}}
            pipe.set(keys.status(instance), json.dumps(body), ex=600)
            pipe.zadd(keys.seen, {instance: now})
        pipe.execute()
        plane = RedisControlPlane(RedisPlaneSettings(url=url, fleet=fleet))
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            listed = plane.instances(include_lost=True).documents
            json.dumps({"control_plane": plane.describe(), "instances": list(listed)})
            samples.append((time.perf_counter() - start) * MS)
        assert len(listed) == count
        plane.close()
        results.append(Result(f"fleet status, {count} instances (in process)", median(samples),
                              "ms", target=f"<= {target:g} ms", check=("value", target),
                              samples=samples, note=f"median of {repeats}"))
        (config / "oneiric.toml").write_text(textwrap.dedent(f"""
            [control.selections]
            plane = "redis"
            [control.provider_settings.plane.redis]
            url = "{url}"
            fleet = "{fleet}"
        """))
        cli, helped = [], []
        for _ in range(max(3, repeats // 3)):
            for sink, args in ((cli, ["--config", str(config), "fleet", "status", "--json"]),
                               (helped, ["--help"])):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "oneiric.cli", *args], check=True,
                               capture_output=True)
                sink.append((time.perf_counter() - start) * MS)
        results.append(Result(f"oneiric fleet status --json, {count} instances (a process)",
                              median(cli), "ms", reference=median(helped),
                              reference_name="oneiric --help", samples=cli))
    client.close()
    return results


def takeover(url: str, tmp: Path) -> list[Result]:
    min_idle = 1.0
    script, log = tmp / "worker.py", tmp / "nodes.log"
    script.write_text(WORKER)
    first = _spawn(script, url, str(log), "A", str(min_idle))
    _ready([first])
    deadline = time.monotonic() + 60
    while "slow A" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError("worker A never started the slow node")
        time.sleep(0.01)
    second = _spawn(script, url, str(log), "B", str(min_idle))
    _ready([second])
    killed_at = time.time()
    first.send_signal(signal.SIGKILL)
    first.wait()
    while "slow B" not in log.read_text():
        if time.monotonic() > deadline + 60:
            raise RuntimeError("worker B never took the node over")
        time.sleep(0.01)
    restarted = float(next(line.split()[2] for line in log.read_text().splitlines()
                           if line.startswith("slow B")))
    second.kill()
    second.wait()
    for proc in (first, second):
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    return [Result("takeover of a dead worker's node (kill -> restart elsewhere)",
                   restarted - killed_at, "s", target=f"<= {min_idle + 1:g} s (min_idle + 1)",
                   check=("value", min_idle + 1), note="min_idle = lease = 1 s")]


def import_core(repeats: int) -> list[Result]:
    def timed(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return (time.perf_counter() - start) * MS

    core, bare = [], []
    for _ in range(repeats):
        core.append(timed("import oneiric.core"))
        bare.append(timed("pass"))
    return [Result("import oneiric.core (a process)", median(core), "ms",
                   reference=median(bare), reference_name="python -c pass",
                   samples=core, note="issue 15: unchanged by oneiric-fleet")]


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-fleet-") as tmp_name:
        tmp = Path(tmp_name)
        server = RedisServer.start(tmp)
        if server is None:
            print("bench_fleet: needs redis-server on PATH and redis-py", file=sys.stderr)
            return 1
        try:
            results = propagation(server.url, tmp, 20 if args.quick else 100)
            results += acknowledgements(server.url, tmp, 10 if args.quick else 40)
            results += fleet_status(server.url, tmp, 5 if args.quick else 15)
            results += takeover(server.url, tmp)
            results += import_core(5 if args.quick else 15)
        finally:
            server.stop()
    results[0].note += f"; load average {os.getloadavg()[0]:.2f} at the end"
    return report("oneiric-fleet (loopback)", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
