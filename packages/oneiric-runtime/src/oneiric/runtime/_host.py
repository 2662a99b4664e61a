"""The dispatcher of a running application, and the consumers a ``Host`` starts for it.

One dispatcher per resolver (``Resolver.extension``): the host's consumers,
the ``event.dispatch`` kit and application code all reach the same one, so a
handler's concurrency bound and the dedupe memory are shared, not per caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from oneiric.lifecycle import LifecycleManager

from ._automations import sync as sync_automations
from ._dispatcher import EventDispatcher

__all__ = ["dispatcher_for", "event_consumers"]

_OWNER = "oneiric.runtime.events"


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
