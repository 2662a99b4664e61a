"""oneiric-runtime: what ``EventDispatcher.emit`` costs over running the handlers by hand.

One event to 3 isolated, bounded handlers: 3 groups, each handler with its
own ``max_concurrency``, async no-op handlers (each counts its call, so no
variant can skip work), default subscriptions (non-idempotent: deduplicated
on (event id, group)), no dead-letter store needed (nothing fails).

1. ``await dispatcher.emit(topic, payload)`` vs ``await asyncio.gather(h1(e), h2(e), h3(e))``
   of the same 3 coroutines - the isolation-free floor.  Target (issue #13):
   <= 2.5x, i.e. <= ~60 µs per event on this machine's class.
2. For reference only (neither isolates a failing handler from its siblings
   nor bounds concurrency): blinker's ``Signal.send_async`` (awaits receivers
   one after the other) and pyee's ``AsyncIOEventEmitter.emit`` (schedules one
   task per handler and returns; measured until every handler has run).
   Skipped with a note when the library is not importable.

Interleaved repeats, same run, µs per event.
Run: ``python benchmarks/bench_events.py [--json] [--quick]``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, median, parser, report

from oneiric.core import Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import Event, EventDispatcher

US = 1e6
TOPIC = "orders.created"
PAYLOAD = {"order": {"id": 42, "region": "us"}}
HANDLERS = ("audit", "billing", "mailer")


async def _measure(quick: bool) -> list[Result]:
    calls = [0]

    def make_handler() -> Callable[..., Awaitable[None]]:
        async def handle(event: Any, context: Any = None) -> None:
            calls[0] += 1

        return handle

    handlers = [make_handler() for _ in HANDLERS]
    manager = LifecycleManager(
        Resolver(), activity_store=False, write_status=False,
        config=LifecycleConfig(grace_period=0, health_interval=0),
    )
    dispatcher = EventDispatcher(manager, dead_letters=False)
    for name, handler in zip(HANDLERS, handlers, strict=True):
        dispatcher.subscribe(name, handler, topics=["orders.*"], max_concurrency=8)
    for name in HANDLERS:  # activation is a one-off, not what is measured
        await manager.activate("event", name)
    first = await dispatcher.emit(TOPIC, PAYLOAD)
    assert first.ok and len(first.outcomes) == 3, first
    event = Event(TOPIC, PAYLOAD)

    number = 1_000 if quick else 5_000
    repeats = 5 if quick else 15

    async def emit() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await dispatcher.emit(TOPIC, PAYLOAD)
        return (time.perf_counter() - start) / number * US

    h1, h2, h3 = handlers

    async def gather() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await asyncio.gather(h1(event, None), h2(event, None), h3(event, None))
        return (time.perf_counter() - start) / number * US

    funcs: dict[str, Callable[[], Awaitable[float]]] = {"emit": emit, "gather": gather}
    notes: dict[str, str] = {}

    try:
        from blinker import Signal
    except ImportError as exc:
        notes["blinker"] = f"not measured: {exc} (pip install blinker)"
    else:
        signal = Signal()
        receivers = []
        for handler in handlers:
            async def receiver(sender: Any, _h: Any = handler, **kwargs: Any) -> None:
                await _h(sender)

            receivers.append(receiver)
            signal.connect(receiver, weak=False)

        async def blinker_send() -> float:
            start = time.perf_counter()
            for _ in range(number):
                await signal.send_async(event)
            return (time.perf_counter() - start) / number * US

        funcs["blinker"] = blinker_send

    try:
        from pyee.asyncio import AsyncIOEventEmitter
    except ImportError as exc:
        notes["pyee"] = f"not measured: {exc} (pip install pyee)"
    else:
        emitter = AsyncIOEventEmitter()
        for handler in handlers:
            emitter.on(TOPIC, handler)

        async def pyee_emit() -> float:
            start = time.perf_counter()
            target = calls[0] + 3 * number
            for _ in range(number):
                emitter.emit(TOPIC, event)
            while calls[0] < target:  # emit only schedules: wait for every handler
                await asyncio.sleep(0)
            return (time.perf_counter() - start) / number * US

        funcs["pyee"] = pyee_emit

    samples: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for i in range(repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(await funcs[name]())
    await dispatcher.aclose()
    await manager.shutdown()

    base = median(samples["gather"])
    how = f"{repeats} interleaved repeats of {number:,} events"
    results = [
        Result("emit, 3 groups x 1 bounded async no-op handler", median(samples["emit"]),
               "µs/event", reference=base,
               reference_name="asyncio.gather of the same 3 coroutines",
               target="<= 2.5x", check=("ratio", 2.5), samples=samples["emit"], note=how),
        Result("emit, absolute", median(samples["emit"]), "µs/event",
               target="<= 60 µs", check=("value", 60.0)),
    ]
    for name, label in (("blinker", "blinker Signal.send_async, same 3 handlers (reference)"),
                        ("pyee", "pyee AsyncIOEventEmitter.emit, same 3 handlers (reference)")):
        if name in samples:
            results.append(Result(label, median(samples[name]), "µs/event", reference=base,
                                  reference_name="asyncio.gather", samples=samples[name],
                                  note="no isolation, no bounds; informative"))
        else:
            results.append(Result(label, float("nan"), "µs/event", note=notes[name]))
    return results


def main() -> int:
    args = parser(__doc__).parse_args()
    results = asyncio.run(_measure(args.quick))
    return report("oneiric-runtime events", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
