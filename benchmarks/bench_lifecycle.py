"""oneiric-lifecycle: the per-request cost of handles and leases, swap latency, status cost.

1. ``handle.instance`` (a ``Handle`` kept by the application) vs the same attribute
   read on a plain object; target <= 1.2x.  Also ``bridge.handle(key).instance``
   (lookup + read) for code that does not keep the handle, vs a plain function
   doing the same lookup (``lookup(key).instance``, ``def lookup(key): return
   table[key]``); target <= 1.5x (issue 16).
2. ``async with bridge.lease(key)`` enter+exit vs an empty ``async with`` of a
   minimal async context manager class; ``with bridge.lease_sync(key)`` vs a
   minimal sync context manager.
3. ``await lifecycle.swap(...)`` of a memory provider (async init/health/cleanup
   that do nothing), grace period 0: p50 and p99 over 1,000 swaps, beside a
   hand-written swap (build, init, health, bind, cleanup) timed in the same
   loop; target p50 <= 30x (issue 16).
4. ``lifecycle.status()`` with 10 active keys, and one status snapshot write.
5. ``register()`` of another key with 10,000 active lifecycle keys: the
   registration plus the manager's processing of the change, beside the same
   registration with no lifecycle subscribed (issue 16: <= 10 µs over it).
   Beside it ``with resolver.batch():`` of N = 1, 10, 100 registrations vs N
   single ``register()`` calls (both with the manager's processing; target: the
   batch never slower), and the same pair with no lifecycle subscribed (the
   resolver's own share).

Run: ``python benchmarks/bench_lifecycle.py [--json] [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, interleaved, median, ns_per_call, parser, report

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import DomainBridge, LifecycleConfig, LifecycleManager

NS = 1e9
US = 1e6


class Memory:
    """A memory provider with the full (no-op) lifecycle surface."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def init(self) -> None:
        pass

    async def health(self) -> bool:
        return True

    async def cleanup(self) -> None:
        self.data.clear()


class Plain:
    def __init__(self, instance: Any) -> None:
        self.instance = instance


class NullAsync:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class NullSync:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _setup(keys: int = 10) -> tuple[Resolver, LifecycleManager]:
    resolver = Resolver(stack_order={})
    for i in range(keys):
        resolver.register(Candidate("adapter", f"key{i}", "memory", Memory))
        resolver.register(Candidate("adapter", f"key{i}", "other", Memory, priority=-1))
    manager = LifecycleManager(
        resolver, config=LifecycleConfig(grace_period=0), write_status=False
    )
    for i in range(keys):
        await manager.activate("adapter", f"key{i}")
    return resolver, manager


def main() -> int:
    args = parser(__doc__).parse_args()
    repeats = 3 if args.quick else 9
    number = 200_000 if args.quick else 1_000_000
    swaps = 300 if args.quick else 1000
    results: list[Result] = []
    os.environ.setdefault("ONEIRIC_STATE_DIR", tempfile.mkdtemp(prefix="oneiric-bench-"))

    runner = asyncio.Runner()
    _, manager = runner.run(_setup())
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    handle = bridge.handle("key0")
    plain = Plain(handle.instance)

    # 1. handle reads
    table = {"key0": plain}

    def lookup(key: str) -> Plain:
        return table[key]

    env = {"h": handle, "p": plain, "bridge": bridge, "lookup": lookup}
    samples = interleaved(
        {
            "handle": ns_per_call("h.instance", env, number),
            "plain": ns_per_call("p.instance", env, number),
            "bridge": ns_per_call("bridge.handle('key0').instance", env, number // 2),
            "function": ns_per_call("lookup('key0').instance", env, number // 2),
        },
        repeats,
    )
    results.append(
        Result(
            "handle.instance read", median(samples["handle"]), "ns", median(samples["plain"]),
            "plain object attribute read", target="<= 1.2x a plain attribute read",
            check=("ratio", 1.2),
            note=f"timeit, {repeats} interleaved repeats of {number:,} reads; "
            "includes the timeit loop on both sides",
            samples=samples["handle"],
        )
    )
    results.append(
        Result(
            "bridge.handle(key).instance (lookup + read)", median(samples["bridge"]), "ns",
            median(samples["function"]), "lookup(key).instance, a plain function's dict lookup",
            target="<= 1.5x the plain function", check=("ratio", 1.5),
            note=f"timeit, {repeats} interleaved repeats of {number // 2:,} calls; the "
            "reference is `def lookup(key): return table[key]` returning an object with an "
            "`instance` attribute, same call shape; for code that does not keep the Handle",
            samples=samples["bridge"],
        )
    )

    # 2. leases
    lease_number = number // 10

    def async_sampler(make: Any) -> Any:
        async def loop() -> float:
            start = time.perf_counter()
            for _ in range(lease_number):
                async with make():
                    pass
            return (time.perf_counter() - start) / lease_number * NS

        return lambda: runner.run(loop())

    def sync_sampler(make: Any) -> Any:
        def loop() -> float:
            start = time.perf_counter()
            for _ in range(lease_number):
                with make():
                    pass
            return (time.perf_counter() - start) / lease_number * NS

        return loop

    samples = interleaved(
        {
            "lease": async_sampler(lambda: bridge.lease("key0")),
            "null async": async_sampler(NullAsync),
            "lease_sync": sync_sampler(lambda: bridge.lease_sync("key0")),
            "null sync": sync_sampler(NullSync),
        },
        repeats,
    )
    results.append(
        Result(
            "async with bridge.lease(key) (enter + exit)", median(samples["lease"]), "ns",
            median(samples["null async"]), "empty async with of a minimal class",
            note=f"{repeats} interleaved repeats of {lease_number:,} leases in one coroutine",
            samples=samples["lease"],
        )
    )
    results.append(
        Result(
            "with bridge.lease_sync(key) (enter + exit)", median(samples["lease_sync"]), "ns",
            median(samples["null sync"]), "empty with of a minimal class",
            note="takes and releases the binding's lock once each",
            samples=samples["lease_sync"],
        )
    )

    # 3. swap latency, beside a hand-written swap measured in the same loop (interleaved)
    holder = Plain(Memory())

    async def hand_swap() -> float:
        start = time.perf_counter()
        new = Memory()
        await new.init()
        ok = await new.health()
        old, holder.instance = holder.instance, new
        await old.cleanup()
        elapsed = time.perf_counter() - start
        assert ok
        return elapsed

    async def swap_loop() -> tuple[list[float], list[float]]:
        ours: list[float] = []
        reference: list[float] = []
        for i in range(swaps):
            if i % 2:  # alternate which goes first
                reference.append(await hand_swap())
                await asyncio.sleep(0)
            start = time.perf_counter()
            await manager.swap("adapter", "key0", ("other", "memory")[i % 2])
            ours.append(time.perf_counter() - start)
            await asyncio.sleep(0)  # let the background cleanup run (not timed)
            if not i % 2:
                reference.append(await hand_swap())
                await asyncio.sleep(0)
        return ours, reference

    ours, reference = runner.run(swap_loop())
    ours = [t * US for t in sorted(ours)]
    reference = [t * US for t in sorted(reference)]

    def pct(data: list[float], q: float) -> float:
        return data[min(len(data) - 1, int(len(data) * q))]

    note = (f"{swaps} swaps of adapter/key0 alternating two providers, grace period 0, no "
            "hooks registered; the reference is `new = Memory(); await new.init(); ok = await "
            "new.health(); old, holder.instance = holder.instance, new; await old.cleanup()`, "
            "timed in the same loop, alternately before and after each swap")
    results.append(Result("swap() latency p50, memory provider", pct(ours, 0.5), "µs",
                          pct(reference, 0.5), "hand-written swap (build, bind, retire) p50",
                          target="<= 30x the hand-written swap", check=("ratio", 30.0),
                          note=note, samples=ours))
    results.append(Result("swap() latency p99, memory provider", pct(ours, 0.99), "µs",
                          pct(reference, 0.99), "hand-written swap p99"))

    # 4. status
    status_number = 200 if args.quick else 1000
    samples = interleaved(
        {
            "status": lambda: timeit.timeit(manager.status, number=status_number)
            / status_number * US,
        },
        repeats,
    )
    results.append(
        Result("status() with 10 active keys", median(samples["status"]), "µs",
               note="off the request path; the snapshot is rewritten at most every "
               "status_interval (0.5 s) after a change")
    )
    manager._status_file = Path(os.environ["ONEIRIC_STATE_DIR"]) / "status" / "bench.json"
    writes = [timeit.timeit(manager.write_status, number=50) / 50 * US for _ in range(repeats)]
    results.append(Result("status snapshot write (10 keys, atomic rename)", median(writes), "µs"))

    runner.run(manager.shutdown())

    # 5. a registration's event-loop cost with 10,000 active keys (issue 16)
    results += runner.run(_registration_with_active_keys(10 if args.quick else 50))
    runner.close()
    return report("oneiric-lifecycle", results, as_json=args.json)


async def _registration_with_active_keys(rounds: int) -> list[Result]:
    """``register()`` of another key plus the manager's processing of the change (its hop to
    the loop and the evaluation), with 10,000 active keys, beside the same registration on a
    resolver without a lifecycle subscriber (both followed by the same two loop turns)."""
    class Component:
        pass

    def resolver_with_keys() -> Resolver:
        resolver = Resolver()
        with resolver.batch():
            for i in range(10_000):
                resolver.register(Candidate("adapter", f"k{i}", "a", Component))
        return resolver

    busy = resolver_with_keys()
    manager = LifecycleManager(busy, activity_store=False, write_status=False,
                               config=LifecycleConfig(grace_period=0, health_interval=0))
    for i in range(10_000):
        await manager.activate("adapter", f"k{i}")
    bare = resolver_with_keys()

    async def sample(resolver: Resolver, n: int) -> float:
        start = time.perf_counter()
        resolver.register(Candidate("other", f"x{n}", "a", Component))
        await asyncio.sleep(0)  # the manager's call_soon_threadsafe hop, then its work
        await asyncio.sleep(0)
        return (time.perf_counter() - start) * US

    with_lifecycle, without = [], []
    for n in range(rounds):
        with_lifecycle.append(await sample(busy, n))
        without.append(await sample(bare, n))
    results = [Result("register() + the lifecycle's processing, 10,000 active keys",
                      median(with_lifecycle), "µs", median(without),
                      "the same register() with no lifecycle subscribed",
                      target="<= 10 µs of event-loop time over the reference",
                      check=("value", median(without) + 10.0), samples=with_lifecycle,
                      note=f"median of {rounds}; both include two event-loop turns")]

    # ``with resolver.batch():`` of N registrations vs N single register() calls, each
    # followed by the same two loop turns (the manager's processing of the change)
    serial = iter(range(10**9))

    async def singles(resolver: Resolver, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            resolver.register(Candidate("other", f"y{next(serial)}", "a", Component))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return (time.perf_counter() - start) * US

    async def batched(resolver: Resolver, count: int) -> float:
        start = time.perf_counter()
        with resolver.batch():
            for _ in range(count):
                resolver.register(Candidate("other", f"y{next(serial)}", "a", Component))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return (time.perf_counter() - start) * US

    for count in (1, 10, 100):
        repeats = max(5, rounds // (1 if count < 100 else 5))
        got: dict[str, list[float]] = {"batch": [], "single": [], "bare batch": [],
                                       "bare single": []}
        for i in range(repeats):
            order = [("batch", batched, busy), ("single", singles, busy),
                     ("bare batch", batched, bare), ("bare single", singles, bare)]
            for name, run, resolver in order[i % 4:] + order[:i % 4]:
                got[name].append(await run(resolver, count))
        results.append(Result(
            f"batch() of {count} register() + the lifecycle's processing, 10,000 active keys",
            median(got["batch"]), "µs", median(got["single"]),
            f"{count} single register() calls + the lifecycle's processing",
            target="<= 1x the single calls", check=("ratio", 1.0), samples=got["batch"],
            note=f"median of {repeats}, interleaved; both end with two event-loop turns",
        ))
        results.append(Result(
            f"batch() of {count} register(), no lifecycle subscribed",
            median(got["bare batch"]), "µs", median(got["bare single"]),
            f"{count} single register() calls, no lifecycle",
            note="the resolver's own share (oneiric-core's batch publish)",
        ))
    await manager.shutdown()
    return results


if __name__ == "__main__":
    raise SystemExit(main())
