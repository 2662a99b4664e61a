"""oneiric-runtime: what a durable workflow run costs per node, beside the original design.

Three 100-node DAGs of a no-op action (sync, returns ``None``): a chain, a
layered DAG (10 layers of 10, each node needing every node of the layer
before) and a wide one (100 independent nodes).  Per node the engine renders
the node's input, invokes the action through ``Actions.invoke`` (lease, spec,
idempotency key ``run_id/node_id``) and checkpoints its start and end.

1. ``WorkflowEngine.run`` with ``MemoryCheckpointStore`` - target <= 10 µs/node.
2. ``WorkflowEngine.run`` with ``SQLiteCheckpointStore`` (WAL, synchronous=NORMAL,
   a file in a temp dir) - target <= 60 µs/node.
3. ``WorkflowEngine.run`` with ``RedisCheckpointStore`` on a throwaway
   ``redis-server`` (loopback): a checkpointed step across processes - target
   <= 1 ms/node (issue 15).  Skipped with a note without redis-server/redis-py.
4. The original design, same run, same action through ``Actions.invoke``: a
   networkx ``DiGraph`` built per run, ``topological_generations`` and one
   ``asyncio.TaskGroup`` per level (a barrier per level, no checkpoints, no
   outputs passed on).  Skipped with a note when networkx is not installed
   (``pip install networkx``).

Interleaved repeats, same run, µs per node (a run's wall time / 100).  Finished runs
are pruned between samples (not timed), so every sample runs on a heap, a file and a
Redis of the same size: kept runs would make the cyclic GC scan more at every sample,
slowing whatever runs next - the reference included.
Run: ``python benchmarks/bench_workflows.py [--json] [--quick] [--profile]``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RedisServer, Result, median, parser, report

from oneiric.actions import Actions, ActionSpec
from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import (
    MemoryCheckpointStore,
    Node,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowEngine,
)

US = 1e6
N = 100


class Noop:
    spec = ActionSpec(side_effects=False, idempotent=True)

    def invoke(self, payload: Any, context: Any) -> None:
        return None


def shapes() -> dict[str, Workflow]:
    chain = [Node("n0", "b.noop")] + [Node(f"n{i}", "b.noop", needs=[f"n{i - 1}"])
                                      for i in range(1, N)]
    layered = [Node(f"l{layer}_{i}", "b.noop",
                    needs=[f"l{layer - 1}_{j}" for j in range(10)] if layer else [])
               for layer in range(10) for i in range(10)]
    wide = [Node(f"w{i}", "b.noop") for i in range(N)]
    return {"chain": Workflow("chain", chain), "layered 10x10": Workflow("layered", layered),
            "wide": Workflow("wide", wide)}


def networkx_runner(actions: Actions, workflow: Workflow) -> Callable[[], Awaitable[None]] | None:
    """The original design: a graph per run, its generations, a task group per level."""
    try:
        import networkx as nx
    except ImportError:
        return None
    edges = [(need, node.id) for node in workflow.nodes for need in node.needs]
    ids = [node.id for node in workflow.nodes]

    async def run() -> None:
        graph = nx.DiGraph()
        graph.add_nodes_from(ids)
        graph.add_edges_from(edges)
        for level in nx.topological_generations(graph):
            async with asyncio.TaskGroup() as group:
                for _node_id in level:
                    group.create_task(actions.invoke("b.noop", None))

    return run


async def _measure(quick: bool, profile: bool) -> list[Result]:
    resolver = Resolver()
    resolver.register(Candidate("action", "b.noop", "bench", Noop))
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    await lifecycle.activate("action", "b.noop")
    tmp = tempfile.TemporaryDirectory(prefix="oneiric-bench-wf-")
    memory = WorkflowEngine(lifecycle, store=MemoryCheckpointStore())
    sqlite = WorkflowEngine(lifecycle, store=SQLiteCheckpointStore(Path(tmp.name) / "wf.sqlite"))
    actions = Actions(lifecycle)
    ids = itertools.count()
    workflows = shapes()
    redis_server = RedisServer.start(Path(tmp.name))
    remote = (WorkflowEngine(lifecycle, store=RedisCheckpointStore(redis_server.url))
              if redis_server is not None else None)
    for workflow in workflows.values():
        memory.register(workflow)
        sqlite.register(workflow)
        if remote is not None:
            remote.register(workflow)

    def timed(run: Callable[[], Awaitable[Any]], runs: int,
              engine: WorkflowEngine | None = None) -> Callable[[], Awaitable[float]]:
        async def sample() -> float:
            start = time.perf_counter()
            for _ in range(runs):
                await run()
            elapsed = (time.perf_counter() - start) / runs / N * US
            if engine is not None:  # finished runs pruned between samples (not timed): the
                engine.store.prune(time.time() + 1)  # heap, file and keys stay the same size
            return elapsed

        return sample

    def engine_run(engine: WorkflowEngine, workflow_id: str) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            result = await engine.run(workflow_id, None, run_id=f"b{next(ids)}")
            assert result.ok, result.error
            return result

        return run

    runs = 3 if quick else 10
    repeats = 3 if quick else 9
    results: list[Result] = []
    for name, workflow in workflows.items():
        funcs: dict[str, Callable[[], Awaitable[float]]] = {
            "memory": timed(engine_run(memory, workflow.id), runs, memory),
            "sqlite": timed(engine_run(sqlite, workflow.id), runs, sqlite),
        }
        if remote is not None:
            funcs["redis"] = timed(engine_run(remote, workflow.id), runs, remote)
        original = networkx_runner(actions, workflow)
        if original is not None:
            funcs["networkx"] = timed(original, runs)
        for func in funcs.values():  # warm up: activation, first-use paths, the file
            await func()
        samples: dict[str, list[float]] = {k: [] for k in funcs}
        keys = list(funcs)
        for i in range(repeats):
            k = i % len(keys)
            for key in keys[k:] + keys[:k]:
                samples[key].append(await funcs[key]())
        how = f"{repeats} interleaved repeats of {runs} runs"
        base = median(samples["networkx"]) if "networkx" in samples else None
        ref_name = "networkx levels + TaskGroup per level" if base is not None else ""
        results += [
            Result(f"{name}: run, MemoryCheckpointStore", median(samples["memory"]), "µs/node",
                   reference=base, reference_name=ref_name, target="<= 10 µs",
                   check=("value", 10.0), samples=samples["memory"], note=how),
            Result(f"{name}: run, SQLiteCheckpointStore", median(samples["sqlite"]), "µs/node",
                   reference=base, reference_name=ref_name, target="<= 60 µs",
                   check=("value", 60.0), samples=samples["sqlite"]),
        ]
        if remote is not None:
            results.append(Result(
                f"{name}: run, RedisCheckpointStore (redis-server on loopback)",
                median(samples["redis"]), "µs/node", target="<= 1000 µs",
                check=("value", 1000.0), samples=samples["redis"],
                note="a checkpointed step across processes: Redis is another process"))
        else:
            results.append(Result(f"{name}: run, RedisCheckpointStore", float("nan"), "µs/node",
                                  note="not measured: redis-server or redis-py is missing"))
        if base is not None:
            results.append(Result(f"{name}: original design (networkx + TaskGroup per level)",
                                  base, "µs/node", samples=samples["networkx"],
                                  note="no checkpoints, no outputs passed, a barrier per level; "
                                       "networkx import not counted"))
        else:
            results.append(Result(f"{name}: original design", float("nan"), "µs/node",
                                  note="not measured: networkx is not installed "
                                       "(pip install networkx)"))
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        run = engine_run(memory, "layered")
        profiler.enable()
        for _ in range(20):
            await run()
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    await memory.aclose()
    await sqlite.aclose()
    if remote is not None:
        await remote.aclose()
    if redis_server is not None:
        redis_server.stop()
    await lifecycle.shutdown()
    tmp.cleanup()
    return results


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--profile", action="store_true",
                   help="cProfile 20 in-memory layered runs (stats on stderr)")
    args = p.parse_args()
    results = asyncio.run(_measure(args.quick, args.profile))
    return report("oneiric-runtime workflows", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
