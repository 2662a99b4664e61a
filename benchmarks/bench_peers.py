"""Oneiric next to its peers: cached lookup and plugin discovery (optional, not run by CI).

``nox -s benchmarks`` installs the peers and runs this script (through
``run.py``); CI's default run does not.  A peer that is not installed is
reported as skipped with the reason, never as a failure.

1. Cached lookup of a registered singleton/provider.  Every peer runs in a
   fresh interpreter of its own (so no peer's imports affect another's
   figure), at low load (one measuring process at a time; the load average
   is printed), and is compared with a plain function doing the same lookup
   (a dict read with the same arguments) measured in that same process,
   interleaved, median of the repeats, in ns per call including the
   ``timeit`` loop:

   - Oneiric: ``resolver.resolve("adapter", "cache")``, the cached winner
     among two candidates of a key (a ``Candidate``: resolve returns the
     provider's description, it instantiates nothing) in a registry of
     100 keys; plain: ``table[domain][key]``;
   - dependency-injector: a ``providers.Singleton(Cache)`` called, and the
     same provider called as a ``DeclarativeContainer`` attribute
     (``container.cache()``), its instance already created; plain:
     ``table["cache"]``;
   - svcs: ``container.get(Cache)`` on a ``Registry`` holding a value
     (``register_value``); plain: ``table[Cache]``;
   - dishka: the sync container's ``get(Cache)``, an ``APP``-scoped factory,
     already resolved once; plain: ``table[Cache]``;
   - lagom: ``container[Cache]`` with ``Singleton(Cache)`` registered;
     plain: ``table[Cache]``;
   - punq: ``container.resolve(Cache)`` with an instance registered; plain:
     ``table[Cache]``.

2. Discovery of the same N generated plugin distributions, really
   installed (the plugins of ``bench_discovery.py``: an ``oneiric_register``
   adding two candidates and an ``oneiric_post_swap``), each sample a fresh
   ``python -S`` process seeing only those plugins and the library measured;
   interleaved, median; reference: pluggy.  Each side, timed, ends with every
   plugin module imported and held by its manager, every plugin's
   ``oneiric_register`` called once with its own ``PluginRegistry`` and the
   2N candidates registered in one ``Resolver.batch()``:

   - Oneiric: ``load_plugins(Resolver(hooks=new_plugin_manager(builtins=False)))``
     (reads ``entry_points.txt`` directly, imports, ``pm.register``, calls the
     hook, registers the candidates);
   - pluggy: ``load_setuptools_entrypoints`` on a fresh manager
     (``importlib.metadata``, imports, ``pm.register``), then the hooks called
     and the candidates registered as Oneiric does;
   - stevedore: ``ExtensionManager("oneiric", invoke_on_load=False)``
     (``importlib.metadata`` behind stevedore's on-disk entry-point cache,
     warm after the first process, as in production; imports), then the
     hooks called and the candidates registered likewise.  stevedore has no
     hook registry, so it does no ``pm.register`` (the other two do);
   - Oneiric again on plugins that implement ``oneiric_register`` only: it
     calls that hook directly and does no ``pm.register`` either, the
     like-for-like figure next to stevedore.

The project's original design (the predecessor Oneiric was re-designed from)
is not measured: it cannot be installed here (pip finds no such distribution
on this machine's package index); the tables say so.

Run: ``python benchmarks/bench_peers.py [--json] [--quick]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Result,
    copy_packages_script,
    interleaved,
    machine,
    median,
    parser,
    report,
    run_python,
)
from bench_discovery import make_site

ORIGINAL_DESIGN = (
    "the original design (the product's predecessor) is not measured: it is not "
    "installable here (pip finds no such distribution on this machine's index)"
)

# ----------------------------------------------------------------- 1. lookup

#: Run in a fresh interpreter per peer: {setup} builds the peer and ``plain``,
#: then the peer statement and the plain one are timed interleaved.
LOOKUP_WORKER = textwrap.dedent(
    """
    import json, statistics, sys, timeit
    sys.path.insert(0, {bench!r})
    from _common import interleaved

    class Cache:
        pass

    {setup}

    repeats, number = {repeats}, {number}
    peer = timeit.Timer({stmt!r}, globals=globals())
    ref = timeit.Timer({plain!r}, globals=globals())
    assert eval({stmt!r}) is not None and eval({plain!r}) is not None
    samples = interleaved(
        {{"peer": lambda: peer.timeit(number) / number * 1e9,
          "plain": lambda: ref.timeit(number) / number * 1e9}},
        repeats,
    )
    print(json.dumps({{"peer": statistics.median(samples["peer"]),
                       "plain": statistics.median(samples["plain"]),
                       "samples": samples["peer"]}}))
    """
)

CLASS_TABLE = "table = {Cache: Cache()}\ndef plain(t):\n    return table[t]\n"
NAME_TABLE = "table = {'cache': Cache()}\ndef plain():\n    return table['cache']\n"

#: name: (module that must be importable, setup, statement, plain statement)
LOOKUPS: dict[str, tuple[str, str, str, str]] = {
    "Oneiric resolver.resolve(domain, key)": (
        "oneiric.core",
        textwrap.dedent(
            """
            from oneiric.core import Candidate, Resolver
            r = Resolver()
            for i in range(100):
                r.register(Candidate("adapter", f"key{i}", "p", "m:f"))
            r.register(Candidate("adapter", "cache", "redis", "m:f", priority=20))
            r.register(Candidate("adapter", "cache", "memory", "m:f"))
            winner = r.resolve("adapter", "cache")
            table = {"adapter": {f"key{i}": winner for i in range(100)}}
            table["adapter"]["cache"] = winner
            def plain(domain, key):
                return table[domain][key]
            """
        ),
        "r.resolve('adapter', 'cache')",
        "plain('adapter', 'cache')",
    ),
    "dependency-injector providers.Singleton()": (
        "dependency_injector",
        "from dependency_injector import providers\n"
        "provider = providers.Singleton(Cache)\nprovider()\n" + NAME_TABLE,
        "provider()",
        "plain()",
    ),
    "dependency-injector Container attribute call": (
        "dependency_injector",
        "from dependency_injector import containers, providers\n"
        "class Container(containers.DeclarativeContainer):\n"
        "    cache = providers.Singleton(Cache)\n"
        "container = Container()\ncontainer.cache()\n" + NAME_TABLE,
        "container.cache()",
        "plain()",
    ),
    "svcs container.get(T), registered value": (
        "svcs",
        "import svcs\nregistry = svcs.Registry()\nregistry.register_value(Cache, Cache())\n"
        "container = svcs.Container(registry)\ncontainer.get(Cache)\n" + CLASS_TABLE,
        "container.get(Cache)",
        "plain(Cache)",
    ),
    "dishka sync container.get(T), APP scope": (
        "dishka",
        "from dishka import Provider, Scope, make_container\n"
        "provider = Provider(scope=Scope.APP)\nprovider.provide(Cache)\n"
        "container = make_container(provider)\ncontainer.get(Cache)\n" + CLASS_TABLE,
        "container.get(Cache)",
        "plain(Cache)",
    ),
    "lagom container[T], Singleton": (
        "lagom",
        "from lagom import Container, Singleton\ncontainer = Container()\n"
        "container[Cache] = Singleton(Cache)\ncontainer[Cache]\n" + CLASS_TABLE,
        "container[Cache]",
        "plain(Cache)",
    ),
    "punq container.resolve(T), instance": (
        "punq",
        "import punq\ncontainer = punq.Container()\ncontainer.register(Cache, instance=Cache())\n"
        "container.resolve(Cache)\n" + CLASS_TABLE,
        "container.resolve(Cache)",
        "plain(Cache)",
    ),
}


def _missing(module: str) -> str:
    try:
        found = find_spec(module) is not None
    except ImportError:
        found = False
    dist = module.split(".")[0].replace("_", "-")
    return "" if found else f"{dist} is not installed (pip install {dist})"


def bench_lookup(repeats: int, number: int) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    skipped: list[str] = []
    bench = str(Path(__file__).resolve().parent)
    for name, (module, setup, stmt, plain) in LOOKUPS.items():
        why = _missing(module)
        if why:
            skipped.append(f"{name}: skipped, {why}")
            continue
        code = LOOKUP_WORKER.format(bench=bench, setup=setup, stmt=stmt, plain=plain,
                                    repeats=repeats, number=number)
        try:
            _, out, _ = run_python(["-c", code])
        except RuntimeError as exc:
            skipped.append(f"{name}: skipped, failed: {str(exc).splitlines()[-1]}")
            continue
        data = json.loads(out.strip().splitlines()[-1])
        results.append(Result(
            f"lookup: {name}", data["peer"], "ns", data["plain"], "plain function",
            note=f"`{stmt}` vs `{plain}`", samples=data["samples"],
        ))
    return results, skipped


# -------------------------------------------------------------- 2. discovery

SETUP = textwrap.dedent(
    """
    import json, time
    import pluggy  # every side: the same untimed imports
    import oneiric.core as oc
    from oneiric.core import PluginRegistry, Resolver, Source, load_plugins, new_plugin_manager
    {extra_import}
    def register_all(resolver, plugins):
        # (plugin, distribution, version, entry point): call each hook, register the candidates
        with resolver.batch():
            for plugin, dist, version, ep in plugins:
                registry = PluginRegistry(Source("entry_point", dist, version, detail=ep))
                plugin.oneiric_register(registry=registry)
                for candidate in registry.candidates:
                    resolver.register(candidate)
    """
)

DISCOVER = {
    "Oneiric load_plugins": (
        "oneiric.core",
        "",
        """
        resolver = Resolver(hooks=new_plugin_manager(builtins=False))
        found = len(load_plugins(resolver).entries)
        """,
    ),
    "Oneiric load_plugins, register-only plugins (no pm.register, as stevedore)": (
        "oneiric.core",
        "",
        """
        resolver = Resolver(hooks=new_plugin_manager(builtins=False))
        found = len(load_plugins(resolver).entries)
        """,
    ),
    "pluggy load_setuptools_entrypoints": (
        "pluggy",
        "",
        """
        pm = new_plugin_manager(builtins=False)
        found = pm.load_setuptools_entrypoints("oneiric")
        resolver = Resolver(hooks=pm)
        register_all(resolver, [(p, d.project_name, d.version, pm.get_name(p))
                                for p, d in pm.list_plugin_distinfo()])
        """,
    ),
    "stevedore ExtensionManager": (
        "stevedore",
        "from stevedore import ExtensionManager",
        """
        manager = ExtensionManager("oneiric", invoke_on_load=False)
        resolver = Resolver()
        # stevedore's cached entry points carry no distribution: the module stands for it
        register_all(resolver, [(e.plugin, e.module_name, None, e.name) for e in manager])
        found = len(manager.extensions)
        """,
    ),
}

DISCOVER_WORKER = SETUP + textwrap.dedent(
    """
    t0 = time.perf_counter()
    {body}
    elapsed = time.perf_counter() - t0
    assert found == {n}, found
    assert len(resolver.candidates("adapter", "cache")) == {n}
    assert resolver.resolve("adapter", "cache").provider == "p{last:03d}"
    print(json.dumps({{"elapsed": elapsed}}))
    """
)

COPY_DEPS = copy_packages_script(
    [("oneiric.core", "oneiric-core"), ("pluggy", "pluggy"), ("stevedore", "stevedore")]
)


def bench_discover(count: int, repeats: int) -> tuple[list[Result], list[str]]:
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-peers-") as name:
        tmp = Path(name)
        site = make_site(tmp / "site", count, second_hook=True)
        only = make_site(tmp / "register-only", count, second_hook=False)
        deps = tmp / "deps"
        run_python(["-c", COPY_DEPS, str(deps), str(site), str(only)])
        funcs: dict[str, Callable[[], float]] = {}
        for label, (module, extra, body) in DISCOVER.items():
            why = _missing(module)
            if why:
                skipped.append(f"discovery: {label}: skipped, {why}")
                continue
            code = DISCOVER_WORKER.format(extra_import=extra, body=textwrap.dedent(body).strip(),
                                          n=count, last=count - 1)

            env = {"PYTHONPATH": os.pathsep.join(map(str, (
                       only if "register-only" in label else site, deps))),
                   "XDG_CACHE_HOME": str(tmp / "cache")}  # stevedore's entry-point cache

            def run(code: str = code, env: dict[str, str] = env) -> float:
                _, out, _ = run_python(["-S", "-c", code], env=env)
                return float(json.loads(out.strip().splitlines()[-1])["elapsed"]) * 1000

            try:
                run()  # warm-up: OS cache, .pyc, stevedore's cache file
            except RuntimeError as exc:
                skipped.append(f"discovery: {label}: skipped, failed: "
                               f"{str(exc).splitlines()[-1]}")
                continue
            funcs[label] = run
        samples = interleaved(funcs, repeats) if funcs else {}
    ref_name = "pluggy load_setuptools_entrypoints"
    ref = median(samples[ref_name]) if ref_name in samples else None
    results = [
        Result(f"discovery: {label}, {count} plugins, first call in a process",
               median(values), "ms", ref if label != ref_name else None,
               "pluggy" if label != ref_name and ref is not None else "",
               note=f"median of {repeats} fresh processes", samples=values)
        for label, values in samples.items()
    ]
    return results, skipped


def main() -> int:
    args = parser(__doc__).parse_args()
    quick = args.quick
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lookups, skipped = bench_lookup(3 if quick else 9, 100_000 if quick else 500_000)
    discovered, skipped_d = bench_discover(200, 3 if quick else 9)
    results = lookups + discovered
    notes = [*skipped, *skipped_d, ORIGINAL_DESIGN,
             f"load average (1 min) when the run started: {load:.2f}"]
    if args.json:
        print(json.dumps({"benchmark": "peers", "machine": machine(), "notes": notes,
                          "results": [r.as_dict() for r in results]}, indent=2))
        return 0
    report("peers", results, as_json=False)
    print("\n".join(f"- {n}" for n in notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
