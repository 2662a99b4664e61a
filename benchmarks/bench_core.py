"""oneiric-core: resolve, register, explain, discovery and cold start, each against a reference.

Every figure is a median of several repeats, interleaved with its reference
measured in the same run, and reported as a ratio against it:

1. ``resolve()`` of an unchanged key vs a plain function doing the same
   dict-of-dicts lookup (same call shape: positional domain, key);
2. ``register()`` per candidate at 100,000 candidates (single calls and one
   ``batch()``; 100k distinct keys and 1,000 keys x 100 providers) vs a plain
   dict-of-dicts insert; Candidate construction reported separately;
3. ``explain()`` of a 5-candidate key: cached, and the first one after an
   invalidating write (the fill) vs a plain sort of the same 5 rows;
4. ``resolve()`` of a key with 1,000 candidates vs a key with 1;
5. discovery of 200 generated, really installed plugin distributions in fresh
   processes: ``load_plugins`` (first and second call in a process) vs pluggy's
   ``load_setuptools_entrypoints`` on the same distributions;
6. cold path in a new process (import, ``load_plugins``, ``resolve``) vs
   ``python -c pass``.

Run: ``python benchmarks/bench_core.py [--json] [--quick]``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import textwrap
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, interleaved, median, parser, report, run_python

from oneiric.core import Candidate, Resolver, Source

US = 1e6
NS = 1e9


# ----------------------------------------------------------------- 1. resolve


def _per_call_ns(stmt_func: Callable[..., object], number: int) -> Callable[[], float]:
    """A sampler: ns per ``stmt_func("adapter", "cache")`` over ``number`` calls (GC off)."""
    timer = timeit.Timer("f('adapter', 'cache')", globals={"f": stmt_func})

    def sample() -> float:
        return timer.timeit(number) / number * NS

    return sample


def bench_resolve(repeats: int, number: int) -> list[Result]:
    """Hot path: a cached winner must cost about what a dict-of-dicts read costs."""
    resolver = Resolver()
    for i in range(100):  # a realistic registry, not a single-entry dict
        resolver.register(Candidate("adapter", f"key{i}", "p", "m:f"))
    resolver.register(Candidate("adapter", "cache", "redis", "m:f", priority=20))
    resolver.register(Candidate("adapter", "cache", "memory", "m:f"))
    winner = resolver.resolve("adapter", "cache")
    table = {"adapter": {f"key{i}": winner for i in range(100)}}
    table["adapter"]["cache"] = winner

    def lookup(domain: str, key: str) -> Candidate:
        return table[domain][key]

    assert lookup("adapter", "cache") is resolver.resolve("adapter", "cache")
    samples = interleaved(
        {
            "resolve": _per_call_ns(resolver.resolve, number),
            "dict": _per_call_ns(lookup, number),
        },
        repeats,
    )
    return [
        Result(
            "resolve() of an unchanged key",
            median(samples["resolve"]),
            "ns",
            median(samples["dict"]),
            "plain function, dict-of-dicts lookup",
            target="<= 1.5x the plain function",
            check=("ratio", 1.5),
            note=f"median of {repeats} x {number:,} calls; per-call times include the timeit loop",
            samples=samples["resolve"],
        )
    ]


# ------------------------------------------------------------ 2. registration


def _build(spread: str, n: int) -> list[Candidate]:
    if spread == "distinct":
        return [Candidate("adapter", f"k{i}", "p", "m:f") for i in range(n)]
    per_key = 100
    return [
        Candidate("adapter", f"k{i // per_key}", f"p{i % per_key}", "m:f") for i in range(n)
    ]


def _timed(func: Callable[[], object], *, gc_on: bool) -> float:
    """Seconds for one call after a full collection, with the cyclic GC on or off.

    On: what an application sees (100k live candidates make every full
    collection long).  Off: the resolver's own work, as ``timeit`` measures it.
    """
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        start = time.perf_counter()
        func()
        return time.perf_counter() - start
    finally:
        gc.enable()


def bench_register(repeats: int, n: int) -> list[Result]:
    """Registering a large plugin set must stay a few µs per candidate."""
    spreads = {"distinct": f"{n:,} distinct keys", "grid": f"{n // 100:,} keys x 100 providers"}
    build_samples: dict[str, list[float]] = {s: [] for s in spreads}
    candidates: dict[str, list[Candidate]] = {}
    for spread in spreads:
        for _ in range(max(2, repeats // 2)):
            build_samples[spread].append(
                _timed(lambda s=spread: candidates.__setitem__(s, _build(s, n)), gc_on=True)
            )

    def single(cands: list[Candidate], gc_on: bool) -> Callable[[], float]:
        def run() -> float:
            register = Resolver().register

            def go() -> None:
                for c in cands:
                    register(c)

            return _timed(go, gc_on=gc_on)

        return run

    def batched(cands: list[Candidate], gc_on: bool) -> Callable[[], float]:
        def run() -> float:
            resolver = Resolver()
            register = resolver.register

            def go() -> None:
                with resolver.batch():
                    for c in cands:
                        register(c)

            return _timed(go, gc_on=gc_on)

        return run

    def plain(cands: list[Candidate], gc_on: bool) -> Callable[[], float]:
        """Reference: the least a registry can do, one dict-of-dicts insert per candidate."""

        def run() -> float:
            store: dict[tuple[str, str], dict[object, tuple[Candidate, int]]] = {}

            def go() -> None:
                for seq, c in enumerate(cands, 1):
                    ref = (c.domain, c.key)
                    regs = store.get(ref)
                    if regs is None:
                        regs = store[ref] = {}
                    regs[c.identity] = (c, seq)

            return _timed(go, gc_on=gc_on)

        return run

    funcs: dict[str, Callable[[], float]] = {}
    for spread in spreads:
        for gc_on in (True, False):
            tag = f"{spread}-{'gc' if gc_on else 'nogc'}"
            funcs[f"single-{tag}"] = single(candidates[spread], gc_on)
            funcs[f"batch-{tag}"] = batched(candidates[spread], gc_on)
            funcs[f"plain-{tag}"] = plain(candidates[spread], gc_on)
    samples = interleaved(funcs, repeats)

    def per(name: str) -> float:
        return median(samples[name]) / n * US

    results: list[Result] = []
    for spread, label in spreads.items():
        for mode, what in (("single", "register() calls"), ("batch", "one batch()")):
            results.append(
                Result(
                    f"register, {what}, {label}",
                    per(f"{mode}-{spread}-gc"),
                    "µs/candidate",
                    per(f"plain-{spread}-gc"),
                    "plain dict-of-dicts insert",
                    target="<= 5 µs/candidate",
                    check=("value", 5.0),
                    note=(
                        f"GC off: {per(f'{mode}-{spread}-nogc'):.2f} µs vs "
                        f"{per(f'plain-{spread}-nogc'):.2f} µs plain"
                    ),
                    samples=[s / n * US for s in samples[f"{mode}-{spread}-gc"]],
                )
            )
        results.append(
            Result(
                f"Candidate() construction, {label}",
                median(build_samples[spread]) / n * US,
                "µs/candidate",
                note="built before the registration timings, not included in them",
            )
        )
    results[0].note += (
        f"; median of {repeats} runs of {n:,} registrations into a fresh Resolver, "
        "GC on unless said"
    )
    return results


# ----------------------------------------------------------------- 3. explain


def bench_explain(repeats: int, number: int, fills: int) -> list[Result]:
    """Explanations are precomputed at fill time: a cached one is a read, a fill is cheap."""
    resolver = Resolver()
    cands = [
        Candidate("adapter", "five", "redis", "m:f", priority=20),
        Candidate("adapter", "five", "memcached", "m:f", priority=20, stack_level=1),
        Candidate("adapter", "five", "memory", "m:f"),
        Candidate("adapter", "five", "disk", "m:f", source=Source("entry_point", "oneiric-disk")),
        Candidate("adapter", "five", "null", "m:f", source=Source("manifest", "acme", "7")),
    ]
    for c in cands:
        resolver.register(c)
    explain = resolver.explain
    resolve = resolver.resolve
    assert len(explain("adapter", "five").ranking) == 5

    samples = interleaved(
        {
            "explain": _per_call_ns(lambda d, k: explain(d, "five"), number),
            "resolve": _per_call_ns(lambda d, k: resolve(d, "five"), number),
        },
        repeats,
    )

    rows = [(c, i, c.priority or 0, "declared") for i, c in enumerate(cands)]

    def fill_sample() -> float:
        """Median of ``fills`` first-explains, each right after a write to the key."""
        times = []
        perf = time.perf_counter_ns
        for i in range(fills):
            resolver.register(cands[i % 5])  # same identity: replaces, invalidates the key
            start = perf()
            explain("adapter", "five")
            times.append(perf() - start)
        return median(times)

    def sort_sample() -> float:
        """Reference: sort the same 5 rows by (priority, stack_level, sequence)."""
        times = []
        perf = time.perf_counter_ns
        for _ in range(fills):
            start = perf()
            sorted(rows, key=lambda r: (r[2], r[0].stack_level, r[1]), reverse=True)
            times.append(perf() - start)
        return median(times)

    fill = interleaved({"fill": fill_sample, "sort": sort_sample}, repeats)
    return [
        Result(
            "explain(), 5 candidates, cached",
            median(samples["explain"]) / 1000,
            "µs",
            median(samples["resolve"]) / 1000,
            "resolve() of the same key",
            target="<= 20 µs",
            check=("value", 20.0),
            samples=samples["explain"],
        ),
        Result(
            "explain(), 5 candidates, first after a write (fill)",
            median(fill["fill"]) / 1000,
            "µs",
            median(fill["sort"]) / 1000,
            "sorted() of the same 5 rows",
            target="<= 20 µs",
            check=("value", 20.0),
            note=f"median over {repeats} x {fills} fills, each timed alone with perf_counter_ns",
            samples=fill["fill"],
        ),
    ]


# ------------------------------------------------------------ 4. big key


def bench_big_key(repeats: int, number: int) -> list[Result]:
    """O(1) resolve: the number of candidates of a key must not matter once cached."""
    resolver = Resolver()
    with resolver.batch():
        for i in range(1000):
            resolver.register(Candidate("adapter", "big", f"p{i}", "m:f", priority=i % 7))
        resolver.register(Candidate("adapter", "one", "p", "m:f"))
    resolve = resolver.resolve
    start = time.perf_counter()
    resolve("adapter", "big")  # first resolve fills the cache
    fill_1000 = time.perf_counter() - start
    resolve("adapter", "one")
    samples = interleaved(
        {
            "big": _per_call_ns(lambda d, k: resolve(d, "big"), number),
            "one": _per_call_ns(lambda d, k: resolve(d, "one"), number),
        },
        repeats,
    )
    return [
        Result(
            "resolve(), key with 1,000 candidates",
            median(samples["big"]),
            "ns",
            median(samples["one"]),
            "key with 1 candidate",
            target="<= 1.1x (as fast as 1 candidate)",
            check=("ratio", 1.1),
            note=(
                f"both through a lambda (same overhead); the one-off fill of the 1,000-candidate "
                f"key took {fill_1000 * 1000:.2f} ms"
            ),
            samples=samples["big"],
        )
    ]


# --------------------------------------------------------------- 5. discovery

PLUGIN_MODULE = '''\
"""Generated by benchmarks/bench_core.py."""

from oneiric.core import hookimpl


@hookimpl
def oneiric_register(registry):
    registry.register(
        domain="adapter", key="cache", provider="p{i:03d}", factory="{module}:make", priority={i}
    )
    registry.register(domain="service", key="svc-{i:03d}", provider="p", factory="{module}:make")


def make():
    return object()
'''


def make_site(root: Path, count: int) -> Path:
    """Install ``count`` plugin distributions into ``root`` the way a wheel installer would."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        dist = f"oneiric-benchplug-{i:03d}"
        module = f"oneiric_benchplug_{i:03d}"
        version = f"1.0.{i}"
        info = root / f"{module}-{version}.dist-info"
        info.mkdir()
        (root / f"{module}.py").write_text(PLUGIN_MODULE.format(i=i, module=module))
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
            "Requires-Dist: oneiric-core>=0.1,<0.2\n\nA generated benchmark plugin.\n"
        )
        (info / "entry_points.txt").write_text(f"[oneiric]\nbench{i:03d} = {module}\n")
        (info / "WHEEL").write_text(
            "Wheel-Version: 1.0\nGenerator: bench_core\nRoot-Is-Purelib: true\n"
        )
        (info / "INSTALLER").write_text("bench_core\n")
        (info / "RECORD").write_text(
            "".join(
                f"{name},,\n"
                for name in (
                    f"{module}.py",
                    *(f"{info.name}/{f}" for f in ("METADATA", "entry_points.txt", "WHEEL",
                                                   "INSTALLER", "RECORD")),
                )
            )
        )
    return root


def isolated_deps(dest: Path) -> Path:
    """Copy oneiric-core and what it imports at discovery (pluggy) into ``dest``, byte-compiled.

    Workers run with ``python -S`` and ``PYTHONPATH=<plugins>:<dest>``, so the only
    ``[oneiric]`` plugins they see are the generated ones, whatever else is installed
    in this interpreter (an example plugin importing pydantic would swamp the figure).
    Byte-compiling mirrors what pip does at install time.
    """
    import importlib
    import importlib.metadata
    import shutil

    for module, dist in (("oneiric.core", "oneiric-core"), ("pluggy", "pluggy")):
        src = Path(importlib.import_module(module).__file__ or "").parent
        target = dest.joinpath(*module.split("."))
        shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        info = getattr(importlib.metadata.distribution(dist), "_path", None)
        if info is not None and not (dest / Path(info).name).exists():
            shutil.copytree(info, dest / Path(info).name)
    compile_dir(dest)
    return dest


def compile_dir(path: Path) -> None:
    import compileall

    if not compileall.compile_dir(str(path), quiet=1, workers=1):
        raise RuntimeError(f"byte-compiling {path} failed")


def isolated_env(*dirs: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(map(str, dirs))}


OURS = textwrap.dedent(
    """
    import json, time
    import pluggy  # the plugin modules' @hookimpl needs it; the pluggy side imports it untimed too
    import oneiric.core as oc
    t0 = time.perf_counter()
    r1 = oc.Resolver()
    first = oc.load_plugins(r1)
    t1 = time.perf_counter()
    r2 = oc.Resolver()
    second = oc.load_plugins(r2)
    t2 = time.perf_counter()
    assert not first.errors and first.candidates >= {n2}, first.errors[:1]
    assert second.candidates == first.candidates
    assert r2.resolve("adapter", "cache").provider == "p{last:03d}"
    print(json.dumps({{"first": t1 - t0, "second": t2 - t1, "plugins": len(first.entries)}}))
    """
)

PLUGGY = textwrap.dedent(
    """
    import json, time
    import pluggy
    import oneiric.core  # same imports as the other side: plugins import it
    from oneiric.core._hookspecs import OneiricHookSpecs
    t0 = time.perf_counter()
    pm = pluggy.PluginManager("oneiric")
    pm.add_hookspecs(OneiricHookSpecs)
    n = pm.load_setuptools_entrypoints("oneiric")
    t1 = time.perf_counter()
    pm2 = pluggy.PluginManager("oneiric")
    pm2.add_hookspecs(OneiricHookSpecs)
    pm2.load_setuptools_entrypoints("oneiric")
    t2 = time.perf_counter()
    assert n >= {n}, n
    print(json.dumps({{"first": t1 - t0, "second": t2 - t1, "plugins": n}}))
    """
)


def bench_discovery(site: Path, deps: Path, count: int, repeats: int) -> list[Result]:
    """Fresh processes, so each side imports the 200 plugin modules itself."""
    env = isolated_env(site, deps)
    ours = OURS.format(n2=2 * count, last=count - 1)
    theirs = PLUGGY.format(n=count)
    for code in (ours, theirs):  # warm the OS cache and write the plugins' .pyc once
        run_python(["-S", "-c", code], env=env)

    collected: dict[str, list[dict[str, float]]] = {"ours": [], "pluggy": []}

    def runner(name: str, code: str) -> Callable[[], float]:
        def run() -> float:
            _, out, _ = run_python(["-S", "-c", code], env=env)
            data = json.loads(out.strip().splitlines()[-1])
            collected[name].append(data)
            return float(data["first"])

        return run

    interleaved({"ours": runner("ours", ours), "pluggy": runner("pluggy", theirs)}, repeats)
    ours_first = median([d["first"] for d in collected["ours"]]) * 1000
    ours_second = median([d["second"] for d in collected["ours"]]) * 1000
    pl_first = median([d["first"] for d in collected["pluggy"]]) * 1000
    pl_second = median([d["second"] for d in collected["pluggy"]]) * 1000
    return [
        Result(
            f"load_plugins(), {count} distributions, first in a process",
            ours_first,
            "ms",
            pl_first,
            "pluggy load_setuptools_entrypoints",
            target="<= 2/3 of pluggy",
            check=("ratio", 2 / 3),
            note=(
                f"median of {repeats} fresh processes each; includes importing the {count} "
                f"plugin modules and registering {2 * count} candidates (pluggy registers none)"
            ),
            samples=[d["first"] * 1000 for d in collected["ours"]],
        ),
        Result(
            f"load_plugins(), {count} distributions, second (new Resolver, same process)",
            ours_second,
            "ms",
            pl_second,
            "pluggy, second PluginManager, same process",
            target="<= 2/3 of pluggy",
            check=("ratio", 2 / 3),
            note="discovery cached per process; still calls every oneiric_register",
            samples=[d["second"] * 1000 for d in collected["ours"]],
        ),
    ]


# --------------------------------------------------------------- 6. cold path

COLD = (
    "import oneiric.core as oc; r = oc.Resolver(); oc.load_plugins(r); "
    "r.resolve('adapter', 'cache')"
)


def bench_cold(sites: dict[int, Path], deps: Path, repeats: int) -> list[Result]:
    """A serverless-style cold start: a new interpreter, import, discover, resolve once."""
    funcs: dict[str, Callable[[], float]] = {
        "pass": lambda: run_python(["-S", "-c", "pass"])[0],
    }
    for count, site in sites.items():
        env = isolated_env(site, deps)
        run_python(["-S", "-c", COLD], env=env)  # warm-up: OS cache
        funcs[f"cold-{count}"] = lambda env=env: run_python(["-S", "-c", COLD], env=env)[0]
    samples = interleaved(funcs, repeats)
    base = median(samples["pass"]) * 1000
    results = []
    for count in sites:
        results.append(
            Result(
                f"cold path: new process, import + load_plugins + resolve, {count} plugin(s)",
                median(samples[f"cold-{count}"]) * 1000,
                "ms",
                base,
                "python -S -c pass",
                note=f"wall time of the whole process, median of {repeats}",
                samples=[s * 1000 for s in samples[f"cold-{count}"]],
            )
        )
    results[0].note += f"; so oneiric adds {results[0].value - base:.1f} ms to a bare start"
    return results


# ------------------------------------------------------------------- main


def main() -> int:
    args = parser(__doc__).parse_args()
    quick = args.quick
    repeats = 3 if quick else 9
    number = 100_000 if quick else 500_000
    results: list[Result] = []
    results += bench_resolve(repeats, number)
    results += bench_big_key(repeats, number)
    results += bench_explain(repeats, number // 10, 500 if quick else 2000)
    results += bench_register(3 if quick else 5, 100_000)
    gc.collect()
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-") as tmp:
        deps = isolated_deps(Path(tmp) / "deps")
        site200 = make_site(Path(tmp) / "site200", 200)
        site1 = make_site(Path(tmp) / "site1", 1)
        for site in (site200, site1):
            compile_dir(site)
        results += bench_discovery(site200, deps, 200, 3 if quick else 7)
        results += bench_cold({1: site1, 200: site200}, deps, 3 if quick else 5)
    return report("oneiric-core", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
