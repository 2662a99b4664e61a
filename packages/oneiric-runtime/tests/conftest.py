"""A real resolver, lifecycle and dead-letter file per test (no mocks).

``make_dispatcher(**kwargs)`` returns an ``EventDispatcher`` on a fresh
``LifecycleManager`` whose state dir and dead-letter store live in the test's
tmp dir; retries wait through an injected sleep that records the waits.
Everything made is closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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
