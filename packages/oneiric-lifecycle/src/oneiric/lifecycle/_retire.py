"""The manager's retire job: clean a replaced instance up once nothing uses it.

A swap retires the old binding (no new lease can take it); its cleanup runs
in the background once the last lease ends and the grace period has passed.
``shutdown()`` ends every grace period early and waits for the cleanups.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._slot import Binding, Slot
from ._statusjob import StatusJob
from ._swap import cleanup_instance

__all__ = ["RetireJob"]

_UNKNOWN = object()


class RetireJob(StatusJob):
    """Background cleanup of retired bindings."""

    def _retire(
        self, slot: Slot, binding: Binding, grace: float
    ) -> asyncio.Task[None] | None:
        """Retire ``binding``; return its cleanup task (None: nothing was left to do).

        With no lease held and no ``cleanup`` method there is nothing to run in
        the background; with no lease and no grace period the task runs the
        cleanup straight away (no event, no timer).
        """
        slot.retiring.add(binding)
        if binding.retire():  # no lease held: nothing to wait for but the grace period
            try:
                method = getattr(binding.instance, "cleanup", None)
            except Exception:  # a failing attribute: the cleanup task reports it
                method = _UNKNOWN
            if method is None or not callable(method):  # nothing to run, now or later
                if not binding.override:
                    binding.cleaned = True
                slot.retiring.discard(binding)
                self._dirty()
                return None
            if grace <= 0 or self._closed:
                body = self._cleanup(slot, binding)
            else:
                body = self._cleanup_after(slot, binding, grace)
        else:
            body = self._cleanup_after(slot, binding, grace)
        return self._spawn(body, f"oneiric-cleanup-{slot.domain}-{slot.key}")

    async def _cleanup_after(self, slot: Slot, binding: Binding, grace: float) -> None:
        """Clean ``binding`` up once no lease holds it and ``grace`` seconds have passed."""
        loop = asyncio.get_running_loop()
        idle = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(idle.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        if not binding.when_idle(wake):
            await idle.wait()
        if grace > 0 and not self._closed:
            # shutdown() ends every grace period early: it must not wait for them
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), grace)
        await self._cleanup(slot, binding)

    async def _cleanup(self, slot: Slot, binding: Binding) -> None:
        try:
            if binding.cleaned or binding.override:
                return
            binding.cleaned = True
            name = f"{slot.domain}/{slot.key}/{binding.provider}"
            error = await cleanup_instance(binding.instance, name, self.config.cleanup_timeout)
            if error is not None:
                slot.component_errors.append(error)
        finally:
            slot.retiring.discard(binding)
            self._dirty()
