"""A real resolver, lifecycle and dead-letter file per test (no mocks).

``make_runtime(toml)`` (below) builds the full stack from a settings file.
``make_dispatcher(**kwargs)`` returns an ``EventDispatcher`` on a fresh
``LifecycleManager`` whose state dir and dead-letter store live in the test's
tmp dir; retries wait through an injected sleep that records the waits.
Everything made is closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Resolver
from oneiric.lifecycle import ActivityStore, LifecycleConfig, LifecycleManager
from oneiric.runtime import DeadLetterStore, EventDispatcher

MakeDispatcher = Callable[..., EventDispatcher]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def waits() -> list[float]:
    """The retry waits dispatchers asked for (the injected sleep records, never waits)."""
    return []


@pytest.fixture
def activity(tmp_path: Path) -> ActivityStore:
    return ActivityStore(tmp_path / "activity.sqlite")


@pytest.fixture
async def make_dispatcher(
    tmp_path: Path, waits: list[float], activity: ActivityStore
) -> AsyncIterator[MakeDispatcher]:
    made: list[EventDispatcher] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    def make(resolver: Resolver | None = None, **kwargs: Any) -> EventDispatcher:
        manager = LifecycleManager(
            resolver or Resolver(),
            activity_store=activity,
            write_status=False,
            state_dir=tmp_path / "state",
            config=LifecycleConfig(grace_period=0, health_interval=0,
                                   activity_poll_interval=0.05),
        )
        kwargs.setdefault("dead_letters", DeadLetterStore(tmp_path / "dead.sqlite"))
        kwargs.setdefault("sleep", no_wait)
        dispatcher = EventDispatcher(manager, state_dir=tmp_path / "state", **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.aclose()
        await dispatcher.lifecycle.shutdown()
    activity.close()


class Runtime:
    """What ``make_runtime`` built: the lifecycle, its dispatcher and ``Actions``."""

    def __init__(self, lifecycle: LifecycleManager, dispatcher: EventDispatcher) -> None:
        from oneiric.actions import Actions

        self.lifecycle = lifecycle
        self.dispatcher = dispatcher
        self.actions = Actions(lifecycle)
        self.resolver = lifecycle.resolver


MakeRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[MakeRuntime]:
    """``make_runtime(toml, app=register)``: the real actions and runtime catalogs (their
    ``oneiric_register`` hooks), ``toml`` as oneiric.toml, settings applied, a
    ``LifecycleManager`` and ``dispatcher_for`` it (which registers ``[automations]``);
    ``app(resolver)`` registers test providers first.  Everything is closed after the test.
    """
    from oneiric.actions import _plugin as actions_plugin
    from oneiric.core import PluginRegistry, Source, load_settings
    from oneiric.runtime import _plugin as runtime_plugin
    from oneiric.runtime import dispatcher_for

    managers: list[LifecycleManager] = []

    async def make(toml: str = "", *, app: Callable[[Resolver], object] | None = None
                   ) -> Runtime:
        config = tmp_path / f"settings-{len(managers)}"
        config.mkdir()
        (config / "oneiric.toml").write_text(toml)
        resolver = Resolver()
        for plugin, dist in ((actions_plugin, "oneiric-actions"),
                             (runtime_plugin, "oneiric-runtime")):
            registry = PluginRegistry(Source("entry_point", dist, "test"))
            plugin.oneiric_register(registry)
            with resolver.batch():
                for candidate in registry.candidates:
                    resolver.register(candidate)
        if app is not None:
            app(resolver)
        settings = load_settings(config, state_dir=tmp_path / "state")
        settings.apply(resolver)
        manager = LifecycleManager(
            resolver, settings=settings, activity_store=False, write_status=False,
            state_dir=tmp_path / "state",
            config=LifecycleConfig(grace_period=0, health_interval=0),
        )
        managers.append(manager)
        return Runtime(manager, dispatcher_for(manager, state_dir=tmp_path / "state"))

    yield make
    for manager in managers:
        from oneiric.runtime._host import _OWNER

        dispatcher = manager.resolver.extension(_OWNER, lambda: None)
        if dispatcher is not None:
            await dispatcher.aclose()
        await manager.shutdown()
