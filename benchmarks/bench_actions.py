"""oneiric-actions: what ``Actions.invoke`` adds over calling the provider, and hash throughput.

1. A no-op async action (``invoke`` returns its payload): ``await actions.invoke(key, p)``
   vs ``await provider.invoke(p, context)`` with a context built once - the
   provider call an application would write by hand.  Targets (issue #12):
   <= 1.5x and <= 5 µs added per call.
2. ``compression.hash`` sha256 on 1 MiB through ``Actions.invoke`` vs
   ``hashlib.sha256(data).hexdigest()`` directly; target <= 1.1x.

Both in one coroutine, interleaved repeats, same run.
Run: ``python benchmarks/bench_actions.py [--json] [--quick]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, median, parser, report

from oneiric.actions import ActionContext, Actions, ActionSpec
from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager

NS = 1e9


class Noop:
    spec = ActionSpec(idempotent=True, side_effects=False)

    async def invoke(self, payload: Any, context: ActionContext) -> Any:
        return payload


def _manager(resolver: Resolver) -> LifecycleManager:
    return LifecycleManager(
        resolver, activity_store=False, write_status=False,
        config=LifecycleConfig(grace_period=0, health_interval=0),
    )


async def _measure(quick: bool) -> list[Result]:
    resolver = Resolver()
    resolver.register(Candidate("action", "bench.noop", "noop", Noop))
    try:
        from oneiric.actions import _plugin
        from oneiric.core import PluginRegistry, Source

        registry = PluginRegistry(Source("entry_point", "oneiric-actions", "bench"))
        _plugin.oneiric_register(registry)
        for candidate in registry.candidates:
            if candidate.key == "compression.hash":
                resolver.register(candidate)
    except ImportError:
        pass
    manager = _manager(resolver)
    actions = Actions(manager)
    provider = await manager.activate("action", "bench.noop")
    context = ActionContext("bench.noop", "noop", 1, float("inf"), "k")
    payload = {"x": 1}
    number = 2_000 if quick else 20_000
    repeats = 5 if quick else 15

    async def via_actions() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await actions.invoke("bench.noop", payload)
        return (time.perf_counter() - start) / number * NS

    async def direct() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await provider.invoke(payload, context)
        return (time.perf_counter() - start) / number * NS

    samples: dict[str, list[float]] = {"actions": [], "direct": []}
    for i in range(repeats):
        order = ["actions", "direct"] if i % 2 == 0 else ["direct", "actions"]
        for name in order:
            samples[name].append(await (via_actions() if name == "actions" else direct()))
    a, d = median(samples["actions"]), median(samples["direct"])
    results = [
        Result("Actions.invoke, no-op async action", a, "ns", reference=d,
               reference_name="provider.invoke(payload, context) directly",
               target="<= 1.5x", check=("ratio", 1.5), samples=samples["actions"],
               note=f"{repeats} interleaved repeats of {number:,} calls"),
        Result("Actions.invoke added time per call", (a - d) / 1000, "µs",
               target="<= 5 µs", check=("value", 5.0)),
    ]

    data = bytes(range(256)) * 4096  # 1 MiB
    hash_number = 20 if quick else 100
    if "compression.hash" in resolver.keys("action"):
        try:
            await manager.activate("action", "compression.hash")
        except Exception as exc:  # the kit is missing from this install: say so, go on
            print(f"compression.hash not measured: {exc}", file=sys.stderr)
            await manager.shutdown()
            return results

        async def hashed() -> float:
            start = time.perf_counter()
            for _ in range(hash_number):
                await actions.invoke("compression.hash", {"data": data})
            return (time.perf_counter() - start) / hash_number * 1e6

        async def plain() -> float:
            start = time.perf_counter()
            for _ in range(hash_number):
                hashlib.sha256(data).hexdigest()
            return (time.perf_counter() - start) / hash_number * 1e6

        hs: dict[str, list[float]] = {"action": [], "hashlib": []}
        for i in range(repeats):
            order = ["action", "hashlib"] if i % 2 == 0 else ["hashlib", "action"]
            for name in order:
                hs[name].append(await (hashed() if name == "action" else plain()))
        results.append(
            Result("compression.hash sha256, 1 MiB, via Actions.invoke", median(hs["action"]),
                   "µs", reference=median(hs["hashlib"]),
                   reference_name="hashlib.sha256(data).hexdigest()", target="<= 1.1x",
                   check=("ratio", 1.1), samples=hs["action"],
                   note=f"{repeats} interleaved repeats of {hash_number} hashes"))
    await manager.shutdown()
    return results


def main() -> int:
    args = parser(__doc__).parse_args()
    results = asyncio.run(_measure(args.quick))
    return report("oneiric-actions", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())

