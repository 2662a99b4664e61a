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
from ._definitions import sync_workflow_files
from ._dispatcher import EventDispatcher
from ._engine import WorkflowEngine

__all__ = ["background_runs", "dispatcher_for", "engine_for", "event_consumers",
           "workflow_service"]

_OWNER = "oneiric.runtime.events"
_ENGINE = "oneiric.runtime.workflows"
#: How often the host's workflow service prunes finished runs past the engine's retention.
PRUNE_EVERY = 86400.0


def dispatcher_for(
    lifecycle: LifecycleManager, *, state_dir: str | os.PathLike[str] | None = None
) -> EventDispatcher:
    """The ``EventDispatcher`` of ``lifecycle``'s resolver, created on first use.

    Also registers ``lifecycle.settings``' ``[automations]`` as handlers (once
    per settings object; ``ConfigError`` if one is invalid) and lets the
    runtime's kits bound in ``lifecycle`` find it.  Its transport is what
    ``[host.events]`` chooses: the local inbox by default, or Redis Streams
    (``transport = "redis"``; validated here, a bad setting one ``ConfigError``).
    """
    sync_automations(lifecycle.resolver, lifecycle.settings)
    if state_dir is None:  # the lifecycle's own (a Host's, the CLI's): the first caller may be
        state_dir = lifecycle.state_dir  # a kit, and files must not land in the process default
    return lifecycle.resolver.extension(
        _OWNER, lambda: EventDispatcher(lifecycle, state_dir=state_dir,
                                        transport=_transport(lifecycle.settings))
    )


def _transport(settings: Any) -> Any:
    """``[host.events]``'s transport: ``None`` (the local inbox) or a Redis Streams one."""
    from ._streams_settings import transport_settings

    chosen = transport_settings(getattr(settings, "host", None))
    if chosen is None:
        return None
    from ._streams import RedisStreamsTransport

    return RedisStreamsTransport(settings=chosen)


@contextlib.asynccontextmanager
async def event_consumers(host: Any, workers: int = 4) -> AsyncIterator[EventDispatcher]:
    """Serve the host dispatcher's transport while the host runs; close both when it stops.

    A Redis transport checks its handlers' timeouts against ``min_idle`` first,
    so a configuration that could take over live calls stops the start.
    """
    dispatcher = dispatcher_for(host.lifecycle, state_dir=host.state_dir)
    transport = dispatcher.transport
    if hasattr(transport, "check"):
        transport.check()
    task = asyncio.ensure_future(dispatcher.consume(workers))
    try:
        yield dispatcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dispatcher.aclose()
        if hasattr(transport, "aclose"):
            await transport.aclose()


def engine_for(
    lifecycle: LifecycleManager, *, state_dir: str | os.PathLike[str] | None = None
) -> WorkflowEngine:
    """The ``WorkflowEngine`` of ``lifecycle``'s resolver, created on first use.

    Also registers the settings dir's ``workflows/`` files as candidates of
    domain ``workflow`` (once per settings object; ``WorkflowDefinitionError``
    if one is invalid), so the CLI and a host run the same definitions.
    """
    resolver = lifecycle.resolver
    sync_workflow_files(resolver, lifecycle.settings)
    if state_dir is None:  # the lifecycle's own (a Host's, the CLI's): the first caller may be
        state_dir = lifecycle.state_dir  # a kit, and checkpoints must not land elsewhere
    return resolver.extension(
        _ENGINE, lambda: WorkflowEngine(lifecycle, state_dir=state_dir)
    )


def background_runs(lifecycle: LifecycleManager) -> set[asyncio.Task[Any]]:
    """The runs ``workflow.orchestrate`` started without waiting, per resolver.

    Held here, by the engine's owner, so a run's task is not garbage collected
    while it runs; the host's workflow service cancels what is left at shutdown.
    """
    held: set[asyncio.Task[Any]] = lifecycle.resolver.extension(_ENGINE + ".background", set)
    return held


async def _prune_daily(engine: WorkflowEngine) -> None:
    """Finished runs older than the engine's retention: at start, then once a day."""
    from oneiric.core import OneiricError, get_logger
    from oneiric.core.helpers import one_line

    while True:
        try:
            await asyncio.to_thread(engine.prune)
        except OneiricError as exc:  # a locked or unwritable file: try again tomorrow
            get_logger("oneiric.runtime.workflows").warning(
                "workflow runs not pruned", error=one_line(exc))
        await asyncio.sleep(PRUNE_EVERY)


@contextlib.asynccontextmanager
async def workflow_service(host: Any) -> AsyncIterator[WorkflowEngine]:
    """Recover interrupted runs and prune old ones in the background; close the store after.

    Recovery does not hold up the host's start: a resumed run may take long.
    Leaving cancels what is still running - recovered runs and runs started
    with ``workflow.orchestrate`` ``wait: false`` (their nodes are checkpointed
    as cancelled, so the next start resumes them) - and closes the store.
    """
    engine = engine_for(host.lifecycle, state_dir=host.state_dir)
    tasks = [asyncio.ensure_future(engine.recover()), asyncio.ensure_future(_prune_daily(engine))]
    try:
        yield engine
    finally:
        tasks += background_runs(host.lifecycle)
        for task in tasks:
            task.cancel()
        for task in tasks:  # a background run's own error was logged by its task
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await engine.aclose()

