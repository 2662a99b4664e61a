"""The demo's action and event steps (oneiric-actions / oneiric-runtime installed).

Kept out of ``_demo`` so each module stays one screen of steps.  Both steps
run on the demo's own lifecycle (its resolver has every installed plugin),
so they show what an application gets: kits found through entry points,
invoked by key and swapped under load; events routed, explained,
dead-lettered and redriven.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["actions_step", "events_step"]

_WORKERS = 4
_TEXT = b"Oneiric demo: swapped while in use. " * 64


async def actions_step(demo: Any, lifecycle: Any) -> None:
    """Kits by key; compression.encode swapped gzip -> lzma -> gzip while 4 tasks invoke it."""
    import gzip
    import lzma

    from oneiric.actions import Actions

    actions = Actions(lifecycle)
    kits = actions.list()
    digest = await actions.invoke("compression.hash", {"data": _TEXT})
    cleaned = await actions.invoke(
        "data.sanitize", {"data": {"note": "mail ada@example.com", "card": "4111 1111 1111 1111"}}
    )
    decoders = {"gzip": gzip.decompress, "lzma": lzma.decompress}
    stop = asyncio.Event()
    results: list[tuple[str, bool]] = []
    failures: list[str] = []

    async def worker() -> None:
        while not stop.is_set():
            try:
                result = await actions.invoke("compression.encode", {"data": _TEXT})
            except Exception as exc:  # counted: the figure is how many
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            provider = result.provider or ""
            results.append((provider, decoders[provider](result.value["data"]) == _TEXT))
            await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(worker()) for _ in range(_WORKERS)]
    swaps = []
    try:
        for provider in ("lzma", "gzip"):
            target = len(results) + 100
            while len(results) < target and not failures:
                await asyncio.sleep(0.001)
            swaps.append((await lifecycle.swap("action", "compression.encode", provider)).as_dict())
        target = len(results) + 100
        while len(results) < target and not failures:
            await asyncio.sleep(0.001)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    by_provider = {p: sum(1 for q, _ in results if q == p) for p in decoders}
    decoded = all(ok for _, ok in results)
    demo.screen(
        "actions",
        "8. Actions: kits invoked by key, one swapped while 4 tasks invoke it",
        f"  {len(kits)} action keys from oneiric-actions, e.g. "
        f"compression.hash -> {digest.provider}: {digest.value['digest'][:16]}...\n"
        f"  data.sanitize -> {cleaned.value['data']}\n"
        f"  compression.encode gzip -> lzma -> gzip under load: {len(results)} invocations, "
        f"{len(failures)} failed, each decoded with the provider that produced it: {decoded}",
        {"kits": [k.key for k in kits], "hash_provider": digest.provider,
         "sanitized": cleaned.value["data"], "invocations": len(results),
         "by_provider": by_provider, "failed": len(failures), "decoded": decoded,
         "swaps": swaps},
        ok=not failures and decoded and all(by_provider.values()),
    )


async def events_step(demo: Any, lifecycle: Any) -> None:
    """Route and emit an event; a failing handler dead-letters; redrive once it is fixed."""
    from oneiric.runtime import DeadLetterStore, EventDispatcher

    async def no_wait(seconds: float) -> None:
        return None

    dispatcher = EventDispatcher(
        lifecycle, dead_letters=DeadLetterStore(demo.state / "dead-letters.sqlite"),
        state_dir=demo.state, sleep=no_wait,
    )
    mail_up = False
    invoiced: list[str] = []
    mailed: list[str] = []

    def invoice(event: Any, context: Any) -> None:
        invoiced.append(event.payload["order"]["id"])

    def mailer(event: Any, context: Any) -> None:
        if not mail_up:
            raise ConnectionError("smtp.example.com refused the connection")
        mailed.append(event.payload["order"]["id"])

    async with dispatcher:
        dispatcher.subscribe("invoice", invoice, topics="orders.created")
        dispatcher.subscribe("mailer", mailer, topics="orders.*",
                             retry={"max_attempts": 3, "initial": 0.1, "jitter": 0})
        dispatcher.subscribe("eu-vat", invoice, topics="orders.#",
                             filter={"order.region": {"equals": "eu"}})
        payload = {"order": {"id": "A-17", "region": "us", "total": 42}}
        plan = dispatcher.route("orders.created", payload)
        report = await dispatcher.emit("orders.created", payload)
        letters = dispatcher.dead_letters.list()
        mail_up = True
        redriven = await dispatcher.dead_letters.redrive(dispatcher)
        left = dispatcher.dead_letters.list()
    routing = "\n".join(f"    {'runs' if d.runs else 'skip'} {d.handler}: {d.reason}"
                        for d in plan.decisions)
    outcomes = "\n".join(f"    {o.handler}: {o.status} after {o.attempts} attempt(s)"
                         + (f" ({o.error})" if o.error else "") for o in report.outcomes)
    demo.screen(
        "events",
        "9. Events: route (explain), emit, a dead letter, redrive after the fix",
        f"  route orders.created:\n{routing}\n  emit:\n{outcomes}\n"
        f"  dead letters: {[(d.id, d.handler, d.attempts) for d in letters]}\n"
        f"  smtp back; redrive -> {[o.status for r in redriven for o in r.outcomes]}, "
        f"same event id: {all(r.event_id == report.event_id for r in redriven)}; "
        f"dead letters left: {len(left)}",
        {"route": plan.as_dict(), "emit": report.as_dict(),
         "dead_letters": [d.as_dict() for d in letters],
         "redriven": [r.as_dict() for r in redriven], "left": len(left),
         "invoiced": invoiced, "mailed": mailed},
        ok=(len(letters) == 1 and not left and mailed == ["A-17"]
            and all(r.event_id == report.event_id for r in redriven)),
    )


#: The demo's workflow (written to the settings dir's workflows/ before settings load).
WORKFLOW = """\
id = "demo-order"

[[nodes]]
id = "fingerprint"
action = "compression.hash"
input = { data = "${input.order}" }

[[nodes]]
id = "reserve"
action = "demo.slow"
needs = ["fingerprint"]
input = { digest = "${nodes.fingerprint.output.digest}" }

[[nodes]]
id = "charge"
action = "demo.slow"
needs = ["reserve"]
input = { reserved = "${nodes.reserve.output.step}" }

[[nodes]]
id = "receipt"
action = "compression.encode"
needs = ["charge"]
input = { data = "${input.order}", encoding = "base64" }
"""

#: What the killed process runs: the same plugins, settings and state dir as the demo.
_CHILD = """
import asyncio, sys
from oneiric.core import Candidate, Resolver, load_plugins, load_settings
from oneiric.lifecycle import LifecycleConfig, LifecycleManager
from oneiric.runtime import engine_for

async def main(config, state):
    resolver = Resolver()
    load_plugins(resolver)
    resolver.register(Candidate("action", "demo.slow", "demo",
                                "oneiric.cli._demo_providers:SlowStep"))
    settings = load_settings(config, state_dir=state)
    settings.apply(resolver)
    lifecycle = LifecycleManager(resolver, settings=settings, state_dir=state,
                                 activity_store=False, write_status=False,
                                 config=LifecycleConfig(health_interval=0))
    await engine_for(lifecycle).run("demo-order", {"order": "order 17: 3 books"},
                                    run_id="demo-run")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def workflow_step(demo: Any, lifecycle: Any) -> None:
    """Run a workflow in another process, SIGKILL it mid-node, resume it here."""
    import os
    import signal
    import subprocess
    import sys

    from oneiric.runtime import SQLiteCheckpointStore, engine_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(demo.config), str(demo.state)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = SQLiteCheckpointStore(demo.state / "workflows.sqlite")
    try:
        def mid_run() -> bool:
            if child.poll() is not None:
                raise RuntimeError(f"the workflow process ended early: "
                                   f"{(child.stderr.read() if child.stderr else b'').decode()}")
            if store.get_run("demo-run") is None:
                return False
            nodes = store.nodes("demo-run")
            return nodes["reserve"].status == "succeeded" and nodes["charge"].status == "running"

        deadline = asyncio.get_running_loop().time() + 60
        while not mid_run():
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the workflow did not reach its second slow node in 60 s")
            await asyncio.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        before = {n: (s.status, s.attempts) for n, s in store.nodes("demo-run").items()}
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
        store.close()
    engine = engine_for(lifecycle)
    result = await engine.resume("demo-run")
    after = {n: (s.status, s.attempts) for n, s in result.nodes.items()}
    rerun = [n for n in after if before[n][1] and after[n][1] != before[n][1]]
    first = [n for n in after if not before[n][1] and after[n][1]]
    demo.screen(
        "workflow",
        "10. A workflow killed with SIGKILL mid-node, resumed in another process",
        "  killed with: " + ", ".join(f"{n} {s} (attempt {a})" for n, (s, a) in before.items())
        + f"\n  resumed here: {result.status}; in flight at the kill, ran once more: "
        f"{', '.join(rerun) or 'nothing'}; never started before: {', '.join(first) or 'none'}; "
        "finished nodes did not run again",
        {"before": {n: {"status": s, "attempts": a} for n, (s, a) in before.items()},
         "after": {n: {"status": s, "attempts": a} for n, (s, a) in after.items()},
         "rerun": rerun, "first_run": first, "status": result.status},
        ok=result.ok and rerun == ["charge"] and first == ["receipt"],
    )
