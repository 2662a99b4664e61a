"""Real resolver, lifecycle and settings files for the action tests (no mocks).

``make_actions(toml)`` writes ``toml`` as ``oneiric.toml`` in a fresh settings
directory, registers the package's catalog through its real entry-point hook,
applies the settings and returns an ``Actions`` on a ``LifecycleManager``;
every manager it made is shut down after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from oneiric.actions import Actions
from oneiric.core import PluginRegistry, Resolver, Source, load_settings
from oneiric.lifecycle import LifecycleConfig, LifecycleManager

MakeActions = Callable[..., Awaitable[Actions]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def registered_resolver() -> Resolver:
    """A resolver holding exactly this package's catalog (its real ``oneiric_register``)."""
    from oneiric.actions import _plugin

    registry = PluginRegistry(Source("entry_point", "oneiric-actions", "test"))
    _plugin.oneiric_register(registry)
    resolver = Resolver()
    with resolver.batch():
        for candidate in registry.candidates:
            resolver.register(candidate)
    return resolver


@pytest.fixture
async def make_actions(tmp_path: Path) -> AsyncIterator[MakeActions]:
    managers: list[LifecycleManager] = []

    async def make(toml: str = "", *, resolver: Resolver | None = None) -> Actions:
        config = tmp_path / f"settings-{len(managers)}"
        config.mkdir()
        (config / "oneiric.toml").write_text(toml)
        resolver = resolver or registered_resolver()
        settings = load_settings(config, state_dir=tmp_path / "state")
        settings.apply(resolver)
        manager = LifecycleManager(
            resolver,
            settings=settings,
            activity_store=False,
            write_status=False,
            config=LifecycleConfig(grace_period=0, health_interval=0),
        )
        managers.append(manager)
        return Actions(manager)

    yield make
    for manager in managers:
        await manager.shutdown()
