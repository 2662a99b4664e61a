"""One stream entry's way through a consumer: decode, dispatch, then ack, leave or dead-letter.

The entry is acknowledged only once its group's outcome is final - ok,
duplicate, no matching handler, or dead-lettered - so a process that dies
mid-handler leaves it pending and another consumer takes it over (at least
once).  A failed outcome leaves it pending too: after ``min_idle`` any
consumer (maybe one whose provider works) claims it again; the delivery
that reaches ``max_deliveries`` runs with the dispatcher's own dead-letter
store enabled and then moves the entry to ``...:dead:<group>``.  The move is
one Lua script (check it is still pending, XADD, XACK), so an entry is
never both dead and pending, and never neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidEventError
from ._event import Event
from ._reports import DispatchReport

__all__ = ["DEAD_LETTER_SCRIPT", "RENEW_SCRIPT", "Delivery", "decode", "encode", "handle"]

#: KEYS: stream, dead stream; ARGV: group, id, max dead length, field, value, ...
#: Returns 1 when moved, 0 when the entry was no longer pending (someone finished it).
DEAD_LETTER_SCRIPT = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: stream; ARGV: group, consumer, id, ...  Resets the idle time of the entries still
#: pending on *this* consumer (XCLAIM alone would take one back from its new owner).
RENEW_SCRIPT = """
local renewed = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""

Dispatch = Callable[..., Awaitable[DispatchReport]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """An entry as read for one group: its id, fields and how often it was delivered."""

    group: str
    id: str
    fields: dict[bytes, bytes]
    deliveries: int


def encode(event: Event) -> dict[str, bytes]:
    """The entry's fields: the event's own JSON form (``Event.as_dict``), nothing else."""
    return {"event": json.dumps(event.as_dict(), separators=(",", ":"),
                                ensure_ascii=False).encode()}


def decode(fields: dict[bytes, bytes]) -> Event:
    """The event of an entry; ``InvalidEventError`` for an entry that is not one."""
    raw = fields.get(b"event")
    if raw is None:
        raise InvalidEventError("stream entry has no 'event' field")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidEventError(f"stream entry is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEventError("stream entry's event is not a JSON object")
    return Event.from_dict(data)


async def handle(transport: Any, dispatch: Dispatch, delivery: Delivery) -> str:
    """Run one delivery; returns ``acked``, ``left`` (pending, will be claimed) or ``dead``."""
    limit = transport.settings.max_deliveries
    try:
        event = decode(delivery.fields)
    except InvalidEventError as exc:  # never runnable: dead at once, not N times
        return await dead_letter(transport, delivery, None, f"InvalidEventError: {exc}")
    if delivery.deliveries > limit:  # claimed again after dying N times mid-handler
        return await dead_letter(
            transport, delivery, event,
            f"delivered {delivery.deliveries} times without a final outcome")
    final = delivery.deliveries >= limit
    report = await dispatch(event, groups={delivery.group}, final=final)
    outcomes = report.final()
    if not outcomes or report.ok:
        await transport.ack(delivery)
        return "acked"
    if not final:
        return "left"
    last = outcomes[-1]
    text = last.error or last.status
    return await dead_letter(transport, delivery, event, text, handler=last.handler)


async def dead_letter(transport: Any, delivery: Delivery, event: Event | None, error: str,
                      *, handler: str | None = None) -> str:
    """Move the entry to the group's dead-letter stream and ack it, in one script."""
    keys = transport.keys
    fields: list[Any] = [
        "event", delivery.fields.get(b"event", b""), "group", delivery.group,
        "entry", delivery.id, "deliveries", str(delivery.deliveries),
        "handler", handler or "", "error", error[:2000],
        "time", f"{time.time():.3f}", "consumer", transport.consumer,
    ]
    if event is not None:
        fields += ["event_id", event.id, "topic", event.topic]
    moved = await transport.script("dead")(
        keys=[keys.events, keys.dead(delivery.group)],
        args=[keys.group(delivery.group), delivery.id, transport.settings.max_length, *fields],
    )
    if moved:
        transport.counts["dead_lettered"] += 1
        return "dead"
    return "acked"  # another consumer finished it first
