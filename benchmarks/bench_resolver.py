"""oneiric-core off the cached path: tenants, requirements, refills, listings, memory.

Every figure is reported beside a reference measured in the same run:

1. ``resolve(..., tenant=...)`` (a tenant without a selection of its own for
   the key, and one with) and ``resolve(..., require=(...))`` repeated, each vs
   the cached global ``resolve(domain, key)`` (interleaved ``timeit``);
2. a write plus the first ``resolve`` after it, at 1, 10, 1,000 and 10,000
   candidates on the key, vs ``sorted()`` of the same candidates by
   (priority, stack_level, registration) plus a dict insert: a losing write
   (the cached winner stays; at 1 candidate, the candidate re-registered), and
   the winner re-registered with a lower stack level (a rescan of the key);
3. ``keys()`` and ``active()`` at 1,000,000 keys: the first call (builds the
   index), and a call after one write (the steady state), vs the sort the old
   ``keys()`` did per call;
4. memory per resolved candidate (tracemalloc): 100,000 candidates registered
   in one batch and every key resolved; the resolver's own memory (candidates
   built before tracing) and the total with the candidates, vs a plain
   dict-of-dicts registry holding the same candidates with a winners dict.

The original design (the predecessor of this product) does not install on
this machine, so it is not in these tables.

Run: ``python benchmarks/bench_resolver.py [--json] [--quick]``.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, interleaved, median, ns_per_call, parser, report

from oneiric.core import Candidate, Resolver

NS = 1e9
US = 1e6
MS = 1e3

# ------------------------------------------------------- 1. tenant and require


def bench_scoped(repeats: int, number: int) -> list[Result]:
    """A tenant or a repeated requirement must read a cache, not re-rank."""
    resolver = Resolver()
    for i in range(100):
        resolver.register(Candidate("adapter", f"key{i}", "p", "m:f"))
        resolver.register(Candidate("adapter", f"key{i}", "q", "m:f", priority=20))
    resolver.register(Candidate("adapter", "cache", "redis", "m:f", priority=20,
                                capabilities={"ttl"}))
    resolver.register(Candidate("adapter", "cache", "memory", "m:f"))
    resolver.set_selections("adapter", {"key1": "p"}, tenant="acme")
    resolve = resolver.resolve
    assert resolve("adapter", "key1", tenant="acme").provider == "p"
    assert resolve("adapter", "key1").provider == "q"
    assert resolve("adapter", "cache", require=("ttl",)).provider == "redis"

    def sampler(stmt: str) -> Callable[[], float]:
        return ns_per_call(stmt, {"r": resolve}, number)

    samples = interleaved(
        {
            "global": sampler("r('adapter', 'cache')"),
            "tenant": sampler("r('adapter', 'cache', tenant='acme')"),
            "own": sampler("r('adapter', 'key1', tenant='acme')"),
            "require": sampler("r('adapter', 'cache', require=('ttl',))"),
        },
        repeats,
    )
    base = median(samples["global"])
    note = f"median of {repeats} x {number:,} calls, interleaved; includes the timeit loop"
    return [
        Result("resolve(tenant=) of a key the tenant does not select", median(samples["tenant"]),
               "ns", base, "cached global resolve()", target="<= 1.5x", check=("ratio", 1.5),
               note=note, samples=samples["tenant"]),
        Result("resolve(tenant=) of a key the tenant selects", median(samples["own"]), "ns",
               base, "cached global resolve()", target="<= 1.5x", check=("ratio", 1.5),
               note="three dict reads more than the global read, plus the keyword argument",
               samples=samples["own"]),
        Result("resolve(require=('ttl',)), repeated", median(samples["require"]), "ns", base,
               "cached global resolve()", target="<= 2x", check=("ratio", 2.0),
               samples=samples["require"]),
    ]


# ------------------------------------------------------------------ 2. refill


def _refill_resolver(n: int) -> tuple[Resolver, list[Candidate]]:
    resolver = Resolver()
    cands = [Candidate("adapter", "k", f"p{i}", "m:f") for i in range(n)]
    with resolver.batch():
        for c in cands:
            resolver.register(c)
    resolver.resolve("adapter", "k")
    return resolver, cands


def bench_refill(repeats: int, ops: int, sizes: tuple[int, ...]) -> list[Result]:
    """Write + first resolve, against sorting the same candidates and a dict insert."""
    results: list[Result] = []
    for n in sizes:
        results += _refill_rows(n, repeats, ops)
    return results


def _refill_rows(n: int, repeats: int, ops: int) -> list[Result]:
    results: list[Result] = []
    perf = time.perf_counter_ns
    resolver, cands = _refill_resolver(n)
    register, resolve = resolver.register, resolver.resolve
    winner = cands[-1]
    demoted = winner.replace(stack_level=-1)
    # a losing write: a candidate below the winner (at n=1: the only candidate again)
    loser = cands[0].replace(stack_level=-1) if n > 1 else winner
    count = max(20, min(ops, ops * 10 // n))

    def losing() -> float:
        times = []
        for _ in range(count):
            start = perf()
            register(loser)
            resolve("adapter", "k")
            times.append(perf() - start)
        return median(times) / 1000

    def rescan() -> float:
        times = []
        for _ in range(count):
            start = perf()
            register(demoted)
            resolve("adapter", "k")
            times.append(perf() - start)
            register(winner)  # restore the winner (a settled write, untimed)
        return median(times) / 1000

    rows = [(c, i, c.priority or 0) for i, c in enumerate(cands)]
    table: dict[str, object] = {}

    def reference() -> float:
        times = []
        for _ in range(count):
            start = perf()
            ranked = sorted(rows, key=lambda r: (r[2], r[0].stack_level, r[1]), reverse=True)
            table["k"] = ranked[0]
            times.append(perf() - start)
        return median(times) / 1000

    assert resolve("adapter", "k") is winner
    gc.disable()
    try:
        samples = interleaved(
            {"losing": losing, "rescan": rescan, "sorted": reference}, repeats
        )
    finally:
        gc.enable()
    assert resolve("adapter", "k") is winner
    ref = median(samples["sorted"])
    check = ("ratio", 4.0) if n <= 10 else None
    target = "<= 4x" if n <= 10 else "O(n log n)"
    label = "the only candidate re-registered" if n == 1 else "a losing write"
    results.append(Result(
        f"write + first resolve, {n:,} candidates, {label}", median(samples["losing"]),
        "µs", ref, "sorted() of the same candidates + dict insert", target=target,
        check=check, note=f"median of {repeats} x {count} writes, each timed alone",
        samples=samples["losing"]))
    results.append(Result(
        f"write + first resolve, {n:,} candidates, winner demoted (rescan)",
        median(samples["rescan"]), "µs", ref,
        "sorted() of the same candidates + dict insert", target=target, check=check,
        samples=samples["rescan"]))
    return results


# ---------------------------------------------------------------- 3. listing


def bench_listing(n: int, repeats: int) -> list[Result]:
    """keys()/active() at a million keys: an index patched by writes, not a re-sort."""
    cands = [Candidate("adapter", f"k{i:07d}", "p", "m:f") for i in range(n)]
    resolver = Resolver()
    with resolver.batch():
        for c in cands:
            resolver.register(c)
    del cands
    perf = time.perf_counter

    def timed(func: Callable[[], object]) -> float:
        start = perf()
        func()
        return (perf() - start) * MS

    first_keys = timed(lambda: resolver.keys("adapter"))
    first_active = timed(lambda: resolver.active("adapter"))
    keys_after: list[float] = []
    active_after: list[float] = []
    active_all: list[float] = []
    resorts: list[float] = []
    present = set(resolver.keys("adapter"))
    for i in range(repeats):
        resolver.register(Candidate("adapter", f"new{i}", "p", "m:f"))
        keys_after.append(timed(lambda: resolver.keys("adapter")))
        resolver.register(Candidate("adapter", f"k{i:07d}", "q", "m:f"))
        active_after.append(timed(lambda: resolver.active("adapter")))
        active_all.append(timed(resolver.active))
        resorts.append(timed(lambda: sorted(present)))
    assert len(resolver.active()) == n + repeats
    ref = median(resorts)
    return [
        Result(f"keys() at {n:,} keys, after a new key", median(keys_after), "ms", ref,
               "sorted() of the keys (what keys() did per call)", target="<= 50 ms",
               check=("value", 50.0), note=f"first call (builds the index): {first_keys:.0f} ms",
               samples=keys_after),
        Result(f"active(domain) at {n:,} keys, after a write", median(active_after), "ms", ref,
               "sorted() of the keys", target="<= 50 ms", check=("value", 50.0),
               note=f"first call (resolves every key, builds the index): {first_active:.0f} ms",
               samples=active_after),
        Result(f"active() at {n:,} keys, after a write", median(active_all), "ms", ref,
               "sorted() of the keys", target="<= 50 ms", check=("value", 50.0),
               samples=active_all),
    ]


# ----------------------------------------------------------------- 4. memory


def _traced(build: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def bench_memory(n: int) -> list[Result]:
    """Bytes per resolved candidate: the resolver's own, and with the candidates."""
    return [_memory_row(n, per_key, label)
            for per_key, label in ((1, f"{n:,} keys x 1"), (10, f"{n // 10:,} keys x 10"),
                                   (100, f"{n // 100:,} keys x 100"))]


def _memory_row(n: int, per_key: int, label: str) -> Result:
    def make() -> list[Candidate]:
        return [Candidate("adapter", f"k{i // per_key}", f"p{i % per_key}", "m:f")
                for i in range(n)]

    def ours(cands: list[Candidate]) -> Resolver:
        resolver = Resolver()
        with resolver.batch():
            for c in cands:
                resolver.register(c)
        for key in resolver.keys("adapter"):
            resolver.resolve("adapter", key)
        return resolver

    def plain(cands: list[Candidate]) -> object:
        store: dict[tuple[str, str], dict[object, Candidate]] = {}
        for c in cands:
            store.setdefault((c.domain, c.key), {})[c.identity] = c
        winners: dict[str, dict[str, Candidate]] = {}
        for (d, k), regs in store.items():
            winners.setdefault(d, {})[k] = next(reversed(regs.values()))
        return store, winners

    cands = make()
    own, _ = _traced(lambda c=cands: ours(c))
    ref, _ = _traced(lambda c=cands: plain(c))
    del cands
    total, _ = _traced(lambda: ours(make()))
    total_ref, _ = _traced(lambda: plain(make()))
    return Result(
        f"memory per resolved candidate, {label}", own / n, "bytes", ref / n,
        "plain dict-of-dicts + winners dict", target="<= 800 bytes", check=("value", 800.0),
        note=(f"with the Candidate objects themselves: {total / n:.0f} bytes "
              f"vs {total_ref / n:.0f} plain; tracemalloc, after resolving every key"))


def main() -> int:
    args = parser(__doc__).parse_args()
    quick = args.quick
    results: list[Result] = []
    results += bench_scoped(3 if quick else 9, 100_000 if quick else 500_000)
    results += bench_refill(3 if quick else 7, 300 if quick else 2000, (1, 10, 1000, 10_000))
    results += bench_memory(20_000 if quick else 100_000)
    results += bench_listing(100_000 if quick else 1_000_000, 3 if quick else 7)
    return report("oneiric-core: off the cached path", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
