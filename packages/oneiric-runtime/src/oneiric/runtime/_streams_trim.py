"""Trimming the fleet's event stream by ``MINID``, never past what any consumer group still needs.

``XTRIM MAXLEN`` would drop entries by count alone - including ones a slow
or dead group has not read yet, or read and not acknowledged.  So the cut is
computed: the retention (and ``max_length``) give a target id, and the floor
is, over *every* group on the stream (not only this process's), its oldest
pending entry, else the entry after its last-delivered id.  The cut is the
lower of the two.  Reading the floor and trimming are two commands: a group
only moves its floor forward (acks, reads), so a floor read earlier is a
lower, safer one; groups are only ever created at ``$`` (or at ``0`` on a
stream that was wiped), never behind the floor.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StreamId", "trim_floor", "trim_stream"]

#: Entries the ``max_length`` cut looks at per step (the excess a step can remove).
MAX_CUT_STEP = 10_000


class StreamId(tuple[int, int]):
    """A stream entry id (``<ms>-<seq>``) that sorts like Redis sorts them."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str | bytes) -> StreamId:
        raw = text.decode() if isinstance(text, bytes) else text
        ms, _, seq = raw.partition("-")
        return cls((int(ms), int(seq or 0)))

    def next(self) -> StreamId:
        return StreamId((self[0], self[1] + 1))

    def __str__(self) -> str:
        return f"{self[0]}-{self[1]}"


async def trim_floor(client: Any, stream: str) -> StreamId | None:
    """The lowest id any group still needs (``None``: the stream has no group)."""
    floor: StreamId | None = None
    for group in await client.xinfo_groups(stream):
        name = group["name"]
        pending = await client.xpending(stream, name)
        if pending["pending"]:
            low = StreamId.parse(pending["min"])
        else:
            low = StreamId.parse(group["last-delivered-id"]).next()
        if floor is None or low < floor:
            floor = low
    return floor


async def trim_stream(
    client: Any, stream: str, *, retention: float, max_length: int, now: float
) -> int:
    """Trim ``stream`` to the retention and length, above the groups' floor; entries removed."""
    if not await client.exists(stream):
        return 0
    target = StreamId((max(0, int((now - retention) * 1000)), 0))
    excess = await client.xlen(stream) - max_length
    if excess > 0:
        oldest = await client.xrange(stream, "-", "+", count=min(excess, MAX_CUT_STEP) + 1)
        if oldest:
            target = max(target, StreamId.parse(oldest[-1][0]))
    floor = await trim_floor(client, stream)
    cut = target if floor is None else min(target, floor)
    if cut <= StreamId((0, 1)):
        return 0
    return int(await client.xtrim(stream, minid=str(cut), approximate=False))
