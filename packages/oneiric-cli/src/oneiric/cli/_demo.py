"""``oneiric demo``: the whole product on embedded defaults, one screen per step.

Why a guided tour in the CLI: the first thing a new user runs should show the
main job - pick a provider, say why, run it, hot-swap it under load without a
failed operation, roll back a bad swap, pause and drain, and (with
oneiric-remote) receive a new provider from a signed manifest - without a
server, a config file or a build tool.  Everything happens in a temporary
directory that is removed at the end, and ``sys.path``/``sys.modules`` are
restored, so the demo leaves nothing behind (``--json`` reports the check).

Steps (``--json`` gives ``{"steps": [{"step", "title", "text", "data"}], ...}``):
``plugins``, ``explain``, ``activate``, ``hot-swap``, ``rollback``,
``pause-drain-resume`` and, when installed, ``remote`` (oneiric-remote),
``actions`` (oneiric-actions), ``events`` and ``workflow`` (oneiric-runtime).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import shutil
import stat
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DemoResult", "run_demo"]

CEILING_S = 30.0  # every wait for an eventual state gives up after this
WORKERS = 8
MIN_OPS = 2000
_PROVIDERS = "oneiric.cli._demo_providers"


@dataclass
class DemoResult:
    """The transcript: one entry per step, plus the leave-nothing-behind check."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    temp_dir: str = ""
    left_behind: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "temp_dir": self.temp_dir,
            "temp_dir_removed": not os.path.exists(self.temp_dir),
            "left_behind": self.left_behind,
            "ok": not self.left_behind and all(s.get("ok", True) for s in self.steps),
        }


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Wait until ``predicate()``; fail after ``CEILING_S`` (never a fixed sleep)."""
    deadline = time.monotonic() + CEILING_S
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: gave up after {CEILING_S:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def _bound(lifecycle: Any) -> str | None:
    """The provider the lifecycle has bound to adapter/cache (global scope)."""
    for key in lifecycle.status("adapter")["keys"]:
        if key["key"] == "cache" and key["tenant"] is None:
            return key["bound"]  # type: ignore[no-any-return]
    return None


def _bound_is(lifecycle: Any, provider: str) -> bool:
    return _bound(lifecycle) == provider


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _ranking_text(explanation: Any) -> str:
    lines = []
    for i, r in enumerate(explanation.ranking, 1):
        mark = "*" if r.selected else " "
        lines.append(
            f" {mark}{i} {r.candidate.provider:<10} {r.candidate.source!s:<44} "
            f"priority {r.priority:>3} {'(' + r.priority_origin + ')':<13} {r.reason}"
        )
    return "\n".join(lines)


class _Load:
    """Concurrent workers using the cache through leases, counting every operation."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self.ops = 0
        self.failed = 0
        self.errors: list[str] = []
        self.providers_seen: set[str] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _worker(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                async with self.bridge.lease("cache") as cache:
                    self.providers_seen.add(type(cache).__name__)
                    await cache.set(f"w{n}:{i % 64}", b"value")
                    await cache.get(f"w{n}:{i % 64}")
                self.ops += 2
            except Exception as exc:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0)  # let the swap, the watcher and the other workers run

    def reached(self, count: int) -> bool:
        return self.ops >= count

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(WORKERS)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


class Demo:
    """One run of the demo in ``root`` (a fresh temporary directory)."""

    def __init__(self, root: Path, emit: Callable[[dict[str, Any]], None]) -> None:
        self.root = root
        self.config = root / "settings"
        self.state = root / "state"
        self.emit = emit
        self.steps: list[dict[str, Any]] = []
        self.has_cache_adapter = _installed("oneiric.adapters.cache")
        self.has_storage_adapter = _installed("oneiric.adapters.storage")
        self.has_remote = _installed("oneiric.remote") and _installed("nacl")
        self.has_actions = _installed("oneiric.actions")
        self.has_runtime = _installed("oneiric.runtime")

    def screen(self, step: str, title: str, text: str, data: Any, *, ok: bool = True) -> None:
        entry = {"step": step, "title": title, "text": text, "data": data, "ok": ok}
        self.steps.append(entry)
        self.emit(entry)

    # --------------------------------------------------------------- setup

    def _write_settings(self) -> None:
        self.config.mkdir()
        self.state.mkdir(mode=0o700)
        text = ""
        if self.has_storage_adapter:
            root = (self.root / "objects").as_posix()
            text = textwrap.dedent(f"""\
                [adapter.selections]
                storage = "local"

                [adapter.provider_settings.storage.local]
                root = "{root}"
                fsync = false
            """)
        if self.has_runtime and self.has_actions:  # the workflow step's definition
            from ._demo_runtime import WORKFLOW

            (self.config / "workflows").mkdir()
            (self.config / "workflows" / "demo-order.toml").write_text(WORKFLOW,
                                                                        encoding="utf-8")
        text += textwrap.dedent("""
            [lifecycle]
            grace_period = 0.1
            activity_poll_interval = 0.05
            status_interval = 0.05
            watch_poll_interval = 0.05
        """)
        (self.config / "oneiric.toml").write_text(text, encoding="utf-8")

    def _register_app(self, resolver: Any) -> None:
        """What an application registers in code (source ``code:demo-app``)."""
        from oneiric.core import Candidate, Source

        app = Source("code", "demo-app")
        resolver.register(Candidate(
            "adapter", "cache", "inhouse", f"{_PROVIDERS}:DemoCache", source=app,
            capabilities=frozenset({"local"}), description="the application's own dict cache",
        ))
        resolver.register(Candidate(
            "adapter", "cache", "flaky", f"{_PROVIDERS}:FlakyCache", source=app, priority=1,
            description="starts, then fails its health check",
        ))
        if self.has_runtime and self.has_actions:  # a slow workflow step, to kill mid-node
            resolver.register(Candidate("action", "demo.slow", "demo",
                                        f"{_PROVIDERS}:SlowStep", source=app))
        if not self.has_cache_adapter:
            resolver.register(Candidate(
                "adapter", "cache", "memory", f"{_PROVIDERS}:DemoCache", priority=0,
                source=Source("code", "oneiric-demo-builtin"),
                description="built-in stand-in for oneiric-adapters-cache's memory provider",
            ))

    # ----------------------------------------------------------------- run

    async def run(self) -> None:
        from oneiric.core import Resolver, load_plugins, load_settings
        from oneiric.lifecycle import (
            ActivityStore,
            DomainBridge,
            LifecycleManager,
            SelectionWatcher,
        )

        self._write_settings()
        resolver = Resolver()
        report = load_plugins(resolver)
        self._register_app(resolver)
        self.screen(
            "plugins",
            "1. Plugins found through entry points (plus what the app registers in code)",
            "\n".join(
                f"  {e.distribution}=={e.version} [{e.entry_point}] -> {e.module}: "
                f"{e.candidates} candidate(s)" + (f"  ERROR {e.error}" if e.error else "")
                for e in report.entries
            ) or "  (no plugin distributions installed; the demo uses built-in providers)",
            {"plugins": [e.as_dict() for e in report.entries],
             "app_candidates": ["adapter/cache/inhouse", "adapter/cache/flaky"]},
        )

        settings = load_settings(self.config, state_dir=self.state)
        settings.apply(resolver)
        explanation = resolver.explain("adapter", "cache")
        self.screen(
            "explain", "2. Explain adapter/cache: the winner first, every loser with its rule",
            f"  {explanation.why}\n{_ranking_text(explanation)}",
            explanation.as_dict(),
        )

        store = ActivityStore(self.state / "activity.sqlite")
        operator = ActivityStore(self.state / "activity.sqlite", actor="operator (demo)")
        lifecycle = LifecycleManager(
            resolver, settings=settings, activity_store=store, state_dir=self.state
        )
        watcher = SelectionWatcher(
            self.config, None, resolver, lifecycle=lifecycle, state_dir=self.state,
            use_watchfiles=False,
        )
        try:
            await watcher.start()
            bridge: DomainBridge[Any] = DomainBridge("adapter", lifecycle)
            await self._activate(lifecycle, bridge)
            await self._hot_swap(lifecycle, bridge)
            await self._rollback(lifecycle, bridge)
            await self._pause_drain(lifecycle, bridge, operator)
            if self.has_remote:
                await self._remote(resolver, lifecycle, bridge)
            else:
                self.screen("remote", "7. Signed remote manifests",
                            "  skipped: install oneiric-remote to see a provider delivered by a "
                            "signed manifest", {"skipped": True})
            from ._demo_runtime import actions_step, events_step, workflow_step

            if self.has_actions:
                await actions_step(self, lifecycle)
            else:
                self.screen("actions", "8. Actions",
                            "  skipped: install oneiric-actions to invoke and swap action kits",
                            {"skipped": True})
            if self.has_runtime and self.has_actions:
                await events_step(self, lifecycle)
            else:
                self.screen("events", "9. Events",
                            "  skipped: install oneiric-runtime to route, emit and redrive events",
                            {"skipped": True})
            if self.has_runtime and self.has_actions:
                await workflow_step(self, lifecycle)
            else:
                self.screen("workflow", "10. Durable workflows",
                            "  skipped: install oneiric-runtime to run a workflow, kill it and "
                            "resume it", {"skipped": True})
        finally:
            await watcher.stop()
            await lifecycle.shutdown()
            operator.close()
            store.close()

    async def _activate(self, lifecycle: Any, bridge: Any) -> None:
        cache = await lifecycle.activate("adapter", "cache")
        await cache.set("greeting", b"hello")
        value = await cache.get("greeting")
        lines = [f"  adapter/cache   -> {type(cache).__name__}: set/get 'greeting' = {value!r}"]
        data: dict[str, Any] = {"cache": {"provider": bridge.handle("cache").instance.__class__
                                          .__name__, "roundtrip": value == b"hello"}}
        if self.has_storage_adapter:
            storage = await lifecycle.activate("adapter", "storage")
            info = await storage.put("hello.txt", b"hello from oneiric")
            body = await storage.get("hello.txt")
            lines.append(f"  adapter/storage -> local: put/get hello.txt ({info.size} bytes) "
                         f"under {self.root / 'objects'}")
            data["storage"] = {"provider": "local", "roundtrip": body == b"hello from oneiric"}
        status = lifecycle.status()
        bound = {f"{k['domain']}/{k['key']}": k["bound"] for k in status["keys"]}
        data["bound"] = bound
        self.screen("activate", "3. Activate: build -> init -> health -> bind",
                    "\n".join(lines), data)

    async def _hot_swap(self, lifecycle: Any, bridge: Any) -> None:
        from oneiric.core import write_overlay

        load = _Load(bridge)
        load.start()
        swaps = []
        try:
            await _until(lambda: load.ops >= MIN_OPS // 4, "the load to start")
            for target in ("memory", "inhouse"):
                # exactly what `oneiric swap adapter cache <target>` writes
                write_overlay(self.state, "adapter", "cache", target)
                await _until(
                    functools.partial(_bound_is, lifecycle, target),
                    f"the watcher to swap adapter/cache to {target}",
                )
                swaps.append(target)
                await _until(functools.partial(load.reached, load.ops + MIN_OPS // 4),
                             "more operations on the new provider")
        finally:
            await load.stop()
        data = {"swaps": swaps, "operations": load.ops, "failed_operations": load.failed,
                "errors": load.errors, "workers": WORKERS,
                "providers_used": sorted(load.providers_seen)}
        self.screen(
            "hot-swap", "4. Hot swap under load (as `oneiric swap` does: the overlay -> watcher)",
            f"  {WORKERS} workers, {load.ops} cache operations through leases while swapping "
            f"to {' then '.join(swaps)}\n  failed operations: {load.failed}",
            data, ok=load.failed == 0,
        )

    async def _rollback(self, lifecycle: Any, bridge: Any) -> None:
        from oneiric.core import SwapError

        before = _bound(lifecycle)
        try:
            await lifecycle.swap("adapter", "cache", "flaky")
            reason, kind = "unexpected: the swap succeeded", None
        except SwapError as exc:
            reason, kind = str(exc), type(exc).__name__
        after = _bound(lifecycle)
        async with bridge.lease("cache") as cache:
            await cache.set("still", b"serving")
            serving = await cache.get("still") == b"serving"
        self.screen(
            "rollback", "5. A failing provider's swap is rolled back",
            f"  swap to 'flaky' refused: {kind}: {reason}\n  bound before: {before}, "
            f"after: {after}; still serving: {serving}",
            {"provider": "flaky", "error_type": kind, "reason": reason, "bound_before": before,
             "bound_after": after, "still_serving": serving},
            ok=kind is not None and before == after and serving,
        )

    async def _pause_drain(self, lifecycle: Any, bridge: Any, operator: Any) -> None:
        from oneiric.core import ComponentDraining, ComponentPaused

        async def refused(kind: type[Exception]) -> bool:
            try:
                async with bridge.lease("cache"):
                    return False
            except kind:
                return True

        events: list[str] = []
        # `oneiric pause adapter cache --note ...` writes this store from another process
        operator.pause("adapter", "cache", note="demo: maintenance window")
        await _until(lambda: lifecycle.activity("adapter", "cache") == "paused", "the pause")
        paused_refused = await refused(ComponentPaused)
        events.append(f"paused: new lease refused with ComponentPaused = {paused_refused}")

        operator.resume("adapter", "cache")
        await _until(lambda: lifecycle.activity("adapter", "cache") == "active", "the resume")
        held = bridge.lease("cache")
        await held.__aenter__()  # in-flight work that started before the drain
        operator.drain("adapter", "cache", note="demo: drain before maintenance")
        await _until(lambda: lifecycle.activity("adapter", "cache") == "draining", "the drain")
        draining_refused = await refused(ComponentDraining)
        drained_while_held = lifecycle.drained("adapter", "cache")
        await held.__aexit__(None, None, None)
        await _until(lambda: lifecycle.drained("adapter", "cache"), "the key to drain")
        events.append(f"draining: new lease refused with ComponentDraining = {draining_refused}; "
                      f"drained while a lease was held = {drained_while_held}, after = True")

        operator.resume("adapter", "cache", note="demo: done")
        await _until(lambda: lifecycle.activity("adapter", "cache") == "active", "the resume")
        async with bridge.lease("cache") as cache:
            await cache.set("after-resume", b"ok")
        events.append("resumed: leases accepted again")
        history = [r.as_dict() for r in operator.history(10)]
        ok = paused_refused and draining_refused and not drained_while_held
        self.screen(
            "pause-drain-resume", "6. Pause, drain, resume (the activity store `oneiric pause` "
            "writes)", "\n".join(f"  {e}" for e in events),
            {"paused_refused": paused_refused, "draining_refused": draining_refused,
             "drained_while_lease_held": drained_while_held, "history": history}, ok=ok,
        )

    async def _remote(self, resolver: Any, lifecycle: Any, bridge: Any) -> None:
        from oneiric.core import write_overlay
        from oneiric.remote import RemoteSource, RemoteSync

        from ._demo_remote import publish_edge

        publish = self.root / "publish"
        published = publish_edge(publish)  # the publisher's side: keygen, build, sign
        wheel, trusted = published.wheel, published.trusted
        source = RemoteSource(
            str(published.envelope), repository="demo-edge", trusted_keys=[trusted],
            cache_dir=self.state / "remote", allow_local_artifacts=True,
        )
        result = await RemoteSync(resolver, source).sync()  # `oneiric remote sync`
        # The operator's overlay selection from step 4 still wins; clearing it (as
        # an operator would) lets precedence decide, and because the selection
        # changed, the running lifecycle swaps to the new winner by itself.
        before = _bound(lifecycle)
        write_overlay(self.state, "adapter", "cache", None)
        await _until(lambda: _bound(lifecycle) == "edge",
                     "the lifecycle to swap adapter/cache to the manifest's provider")
        explanation = resolver.explain("adapter", "cache")
        async with bridge.lease("cache") as cache:
            await cache.set("edge", b"delivered")
            served_by = type(cache).__name__
        winner = explanation.selected
        self.screen(
            "remote", "7. A provider delivered by a signed manifest (keygen -> sign -> sync)",
            f"  built {wheel.name}, signed manifest demo-edge v1 with key "
            f"{trusted.keyid[:12]}..., synced from {publish}\n"
            f"  registered {result.registered} component(s); new winner:\n"
            f"  {explanation.why}\n{_ranking_text(explanation)}\n"
            f"  selection cleared: the lifecycle swapped {before} -> edge; served by {served_by}",
            {"sync": result.as_dict(), "keyid": trusted.keyid, "wheel": wheel.name,
             "winner": winner.provider if winner else None,
             "winner_source": str(winner.source) if winner else None,
             "explain": explanation.as_dict(), "swapped_from": before, "served_by": served_by},
            ok=winner is not None and winner.source.kind == "manifest",
        )


def _make_writable(path: Path) -> None:
    """Vendor dirs of synced artifacts are read-only; the temp dir must still go."""
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            target = Path(dirpath) / name
            try:
                target.chmod(target.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
            except OSError:
                pass
    try:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    except OSError:
        pass


def run_demo(emit: Callable[[dict[str, Any]], None]) -> DemoResult:
    """Run every step, calling ``emit(step)`` as each finishes; always clean up."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    root = Path(tempfile.mkdtemp(prefix="oneiric-demo-"))
    result = DemoResult(temp_dir=str(root))
    demo = Demo(root, emit)
    try:
        _run(demo.run())
    finally:
        result.steps = demo.steps
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            module = sys.modules.get(name)
            where = getattr(module, "__file__", None) or ""
            if where.startswith(str(root)):
                del sys.modules[name]
        _make_writable(root)
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            result.left_behind.append(str(root))
        stray = [p for p in sys.path if p.startswith(str(root))]
        result.left_behind.extend(stray)
    return result


def _run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]
