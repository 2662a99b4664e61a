"""The dispatcher and workflow engine of a running application, and the host's services.

One dispatcher and one engine per resolver (``Resolver.extension``): the
host's services, the kits and application code all reach the same ones, so a
handler's concurrency bound, the dedupe memory and a run's single executor are
shared, not per caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from oneiric.lifecycle import LifecycleManager

from ._automations import sync as sync_automations
from ._definitions import register_workflow_files
from ._dispatcher import EventDispatcher
from ._engine import WorkflowEngine

__all__ = ["dispatcher_for", "engine_for", "event_consumers", "workflow_service"]

_OWNER = "oneiric.runtime.events"
_ENGINE = "oneiric.runtime.workflows"


def dispatcher_for(
    lifecycle: LifecycleManager, *, state_dir: str | os.PathLike[str] | None = None
) -> EventDispatcher:
    """The ``EventDispatcher`` of ``lifecycle``'s resolver, created on first use.

    Also registers ``lifecycle.settings``' ``[automations]`` as handlers (once
    per settings object; ``ConfigError`` if one is invalid) and lets the
    runtime's kits bound in ``lifecycle`` find it.
    """
    sync_automations(lifecycle)
    return lifecycle.resolver.extension(
        _OWNER, lambda: EventDispatcher(lifecycle, state_dir=state_dir)
    )


@contextlib.asynccontextmanager
async def event_consumers(host: Any, workers: int = 4) -> AsyncIterator[EventDispatcher]:
    """Serve the host dispatcher's inbox while the host runs; close it when the host stops."""
    dispatcher = dispatcher_for(host.lifecycle, state_dir=host.state_dir)
    task = asyncio.ensure_future(dispatcher.consume(workers))
    try:
        yield dispatcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dispatcher.aclose()


def engine_for(
    lifecycle: LifecycleManager, *, state_dir: str | os.PathLike[str] | None = None
) -> WorkflowEngine:
    """The ``WorkflowEngine`` of ``lifecycle``'s resolver, created on first use.

    Also registers the settings dir's ``workflows/`` files as candidates of
    domain ``workflow`` (once per settings object; ``WorkflowDefinitionError``
    if one is invalid), so the CLI and a host run the same definitions.
    """
    settings = lifecycle.settings
    resolver = lifecycle.resolver
    loaded: dict[str, object] = resolver.extension(_ENGINE + ".files", dict)
    config_dir = settings.config_dir if settings is not None else None
    if config_dir is not None and loaded.get("of") is not settings:
        register_workflow_files(resolver, config_dir)
        loaded["of"] = settings
    return resolver.extension(
        _ENGINE, lambda: WorkflowEngine(lifecycle, state_dir=state_dir)
    )


@contextlib.asynccontextmanager
async def workflow_service(host: Any) -> AsyncIterator[WorkflowEngine]:
    """Recover interrupted runs in the background while the host runs; close the store after.

    Recovery does not hold up the host's start: a resumed run may take long.
    Leaving cancels what is still running (its nodes are checkpointed as
    cancelled, so the next start resumes them) and closes the store.
    """
    engine = engine_for(host.lifecycle, state_dir=host.state_dir)
    task = asyncio.ensure_future(engine.recover())
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.aclose()

