"""Real components for the lifecycle tests (no mocks): they record what happened to them.

Fixtures rather than importable helpers: with ``--import-mode=importlib`` test
folders are not packages.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from oneiric.core import Candidate, Resolver, get_plugin_manager, hookimpl
from oneiric.lifecycle import HealthReport, LifecycleConfig, LifecycleManager

_ids = itertools.count(1)


class UsedAfterCleanup(AssertionError):
    """A component was called after its cleanup(): the bug the lifecycle must prevent."""


class Ledger:
    """Everything that happened to every component built in one test."""

    def __init__(self) -> None:
        self.built: list[Component] = []
        self.cleanups: Counter[int] = Counter()
        self.misuse: list[str] = []
        # per provider: how the next build behaves
        self.behaviour: dict[str, dict[str, Any]] = {}

    def factory(self, provider: str) -> Any:
        def build() -> Component:
            return Component(self, provider, **self.behaviour.get(provider, {}))

        build.__name__ = f"build_{provider.replace('-', '_')}"
        return build

    def live(self) -> list[Component]:
        return [c for c in self.built if c.cleaned == 0]

    def all_cleaned_once(self) -> bool:
        return all(self.cleanups[c.id] == 1 for c in self.built)


class Component:
    """A provider that records init/cleanup and refuses any call after cleanup."""

    def __init__(
        self,
        ledger: Ledger,
        provider: str,
        *,
        init_error: BaseException | None = None,
        init_gate: asyncio.Event | None = None,
        health: Any = True,
        health_gate: asyncio.Event | None = None,
        cleanup_error: BaseException | None = None,
    ) -> None:
        self.id = next(_ids)
        self.ledger = ledger
        self.provider = provider
        self.init_error = init_error
        self.init_gate = init_gate
        self.health_value = health
        self.health_gate = health_gate
        self.cleanup_error = cleanup_error
        self.init_started = False
        self.inited = False
        self.cleaned = 0
        self.paused = 0
        self.resumed = 0
        ledger.built.append(self)

    async def init(self) -> None:
        self.init_started = True
        await asyncio.sleep(0)  # like real I/O: let other tasks run during init
        if self.init_gate is not None:
            await self.init_gate.wait()
        if self.init_error is not None:
            raise self.init_error
        self.inited = True

    async def health(self) -> Any:
        if self.health_gate is not None:
            await self.health_gate.wait()
        return self.health_value

    async def cleanup(self) -> None:
        self.cleaned += 1
        self.ledger.cleanups[self.id] += 1
        if self.cleanup_error is not None:
            raise self.cleanup_error

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.resumed += 1

    def call(self) -> str:
        if self.cleaned:
            self.ledger.misuse.append(f"{self.provider}#{self.id} called after cleanup")
            raise UsedAfterCleanup(f"{self.provider}#{self.id} used after cleanup")
        return self.provider

    async def acall(self) -> str:
        first = self.call()
        await asyncio.sleep(0)
        second = self.call()
        assert first == second
        return first

    def __repr__(self) -> str:
        return f"<Component {self.provider}#{self.id} cleaned={self.cleaned}>"


class SyncComponent:
    """A component whose optional methods are plain functions."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def init(self) -> None:
        self.events.append("init")

    def health(self) -> HealthReport:
        return HealthReport(True, "fine")

    def cleanup(self) -> None:
        self.events.append("cleanup")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state directory (snapshots, overlay, activity store)."""
    directory = tmp_path / "state"
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(directory))
    monkeypatch.delenv("ONEIRIC_CONFIG", raising=False)
    monkeypatch.delenv("ONEIRIC_STACK_ORDER", raising=False)
    return directory


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def resolver(ledger: Ledger) -> Resolver:
    """``adapter/cache`` with providers a, b (b wins on priority) and ``adapter/queue`` x."""
    r = Resolver(stack_order={})
    r.register(Candidate("adapter", "cache", "a", ledger.factory("a"), priority=1))
    r.register(Candidate("adapter", "cache", "b", ledger.factory("b"), priority=2))
    r.register(Candidate("adapter", "queue", "x", ledger.factory("x")))
    return r


@pytest.fixture
def config() -> LifecycleConfig:
    """Short deadlines and no grace period so tests finish fast (never asserted on)."""
    return LifecycleConfig(
        grace_period=0,
        health_timeout=0.2,
        init_timeout=5,
        pre_swap_timeout=0.2,
        activity_poll_interval=0.02,
        status_interval=0.02,
        watch_poll_interval=0.05,
    )


@pytest.fixture
def make_manager(
    resolver: Resolver, config: LifecycleConfig, state: Path
) -> Iterator[Any]:
    managers: list[LifecycleManager] = []

    def make(**kwargs: Any) -> LifecycleManager:
        kwargs.setdefault("config", config)
        manager = LifecycleManager(kwargs.pop("resolver", resolver), **kwargs)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        assert manager._closed or not manager._slots or manager._loop is None, (
            "a test left a LifecycleManager running; await manager.shutdown()"
        )


class PreSwapPlugin:
    """A pre/post-swap plugin whose behaviour each test sets."""

    def __init__(self) -> None:
        self.veto: str | None = None
        self.raise_post: BaseException | None = None
        self.pre: list[Any] = []
        self.post: list[Any] = []
        self.hang: asyncio.Event | None = None

    @hookimpl
    def oneiric_pre_swap(self, transition: Any) -> Any:
        from oneiric.core import SwapVetoed

        self.pre.append(transition)
        if self.veto is not None:
            raise SwapVetoed(self.veto)
        if self.hang is not None:
            return self.hang.wait()
        return None

    @hookimpl
    def oneiric_post_swap(self, transition: Any) -> None:
        self.post.append(transition)
        if self.raise_post is not None:
            raise self.raise_post


@pytest.fixture
def swap_plugin() -> Iterator[PreSwapPlugin]:
    plugin = PreSwapPlugin()
    manager = get_plugin_manager()
    manager.register(plugin, name="test-swap-plugin")
    yield plugin
    manager.unregister(name="test-swap-plugin")


@pytest.fixture
def kit() -> SimpleNamespace:
    return SimpleNamespace(
        Component=Component,
        SyncComponent=SyncComponent,
        Ledger=Ledger,
        UsedAfterCleanup=UsedAfterCleanup,
    )


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """A settings directory whose ``oneiric.toml`` selects provider ``a`` for adapter/cache."""
    directory = tmp_path / "conf"
    directory.mkdir()
    (directory / "oneiric.toml").write_text('[adapter.selections]\ncache = "a"\n')
    return directory
