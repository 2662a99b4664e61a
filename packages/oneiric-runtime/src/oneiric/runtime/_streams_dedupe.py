"""Dedupe marks in Redis: a non-idempotent handler's success on (event id, group), fleet-wide.

The same semantics as ``_dedupe.Dedupe`` - recorded only when a call
succeeds, so a failed or dead-lettered event runs again, and forgotten after
a TTL (``SET NX EX``: Redis expires them, no bound by count is needed) - but
shared by every process of the fleet, so an entry redelivered to another
consumer does not run a non-idempotent handler twice.  The calls are
awaited by the dispatcher (its in-memory ``Dedupe`` answers synchronously).

If Redis cannot answer, ``seen`` says no and ``record`` logs: the guarantee
is at least once, and dedupe must not turn an outage into a lost event.
"""

from __future__ import annotations

from typing import Any

from oneiric.core import get_logger
from oneiric.core.helpers import one_line

__all__ = ["RedisDedupe"]

_log = get_logger("oneiric.runtime.streams")


class RedisDedupe:
    """``await seen(event_id, group)`` and ``await record(...)`` on the transport's Redis."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    async def seen(self, event_id: str, group: str) -> bool:
        t = self._transport
        try:
            return bool(await t.client.exists(t.keys.dedupe(group, event_id)))
        except t.unreachable as exc:
            _log.warning("dedupe not checked; the handler runs", event_id=event_id,
                         group=group, error=one_line(exc))
            return False

    async def record(self, event_id: str, group: str) -> None:
        t = self._transport
        try:
            await t.client.set(t.keys.dedupe(group, event_id), b"1", nx=True,
                               ex=max(1, int(t.settings.dedupe_ttl)))
        except t.unreachable as exc:
            _log.warning("dedupe not recorded; a redelivery may run the handler again",
                         event_id=event_id, group=group, error=one_line(exc))
