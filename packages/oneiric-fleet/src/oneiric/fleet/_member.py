"""``FleetMember``: one application instance's connection to its fleet (asyncio).

An instance relists the whole desired state, then reads the log from the
revision it applied (one blocking ``XREAD`` at a time - Streams, never
pub/sub, so nothing published while it was away is lost); it publishes its
status with a TTL and acknowledges what took effect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from oneiric.core import ConfigError
from oneiric.core.helpers import instance_id, redis_target

from ._codec import FleetState, LoggedChange, decode_desired, decode_entry, text
from ._keys import FleetKeys
from ._redis import INSTALL, redis_errors

__all__ = ["ACK_TTL", "FleetMember", "Meta"]

#: Acknowledgements of a revision are kept this long (seconds) for ``--wait`` and status.
ACK_TTL = 24 * 3600


class Meta:
    """The fleet's ``revision``, ``epoch`` and ``adopted`` epoch as last read."""

    __slots__ = ("adopted", "epoch", "revision")

    def __init__(self, raw: dict[Any, Any]) -> None:
        values = {text(k): text(v) for k, v in raw.items()}
        self.revision = int(values.get("revision", "0"))
        self.epoch = values.get("epoch")
        self.adopted = values.get("adopted")


class FleetMember:
    """Relist, read changes, publish status, acknowledge - for one instance."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        fleet: str = "default",
        instance: str | None = None,
        heartbeat: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or not (
                heartbeat > 0):
            raise ConfigError(f"fleet heartbeat must be more than 0 seconds, got {heartbeat!r}")
        # reads time out after 5 s (a blocking XREAD waits 1 s at most): a frozen Redis is
        # noticed, and reported unreachable, within that
        self._client, self._where = redis_target("FleetMember", url, client, fleet,
                                                 install=INSTALL, asyncio=True,
                                                 socket_timeout=5.0)
        self.keys = FleetKeys(fleet)
        self.fleet = fleet
        self.instance = instance or instance_id()
        self.heartbeat = float(heartbeat)
        self._clock = clock

    @property
    def status_ttl(self) -> float:
        """A status not refreshed for three heartbeats has expired: the instance is lost."""
        return 3 * self.heartbeat

    async def relist(self) -> FleetState:
        """The whole desired state and its revision (one MULTI: a consistent snapshot)."""
        with redis_errors(self._where, "read the desired state"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.keys.meta)
                pipe.hgetall(self.keys.desired)
                meta, desired = await pipe.execute()
        return decode_desired(meta, desired)

    async def meta(self) -> Meta:
        with redis_errors(self._where, "read the fleet's revision"):
            return Meta(await self._client.hgetall(self.keys.meta))

    async def read(self, after: int, *, block: float, count: int = 100) -> list[LoggedChange]:
        """Changes after revision ``after``, waiting up to ``block`` seconds for one."""
        with redis_errors(self._where, "read the change log"):
            reply = await self._client.xread({self.keys.log: f"{after}-1"}, count=count,
                                             block=max(1, int(block * 1000)))
        return [decode_entry(i, f) for _stream, entries in reply or [] for i, f in entries]

    async def oldest_revision(self) -> int | None:
        """The oldest revision still in the log (None: empty); below it, relist."""
        with redis_errors(self._where, "read the change log"):
            first = await self._client.xrange(self.keys.log, count=1)
        return decode_entry(*first[0]).revision if first else None

    async def entry(self, revision: int) -> LoggedChange | None:
        """The change of ``revision`` if the log still has it."""
        with redis_errors(self._where, "read the change log"):
            found = await self._client.xrange(self.keys.log, min=f"{revision}-1",
                                              max=f"{revision}-1")
        return decode_entry(*found[0]) if found else None

    async def publish(self, document: dict[str, Any]) -> None:
        """This instance's status, expiring after three heartbeats, and its last-seen time."""
        now = float(self._clock())
        body = json.dumps({**document, "id": self.instance, "published_at": now},
                          sort_keys=True, default=str)
        with redis_errors(self._where, "publish status"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.status(self.instance), body,
                         px=int(self.status_ttl * 1000))
                pipe.zadd(self.keys.seen, {self.instance: now})
                await pipe.execute()

    async def ack(self, revision: int, result: str, detail: str = "") -> None:
        """Acknowledge that ``revision`` took effect here (``result``: swapped, paused, ...)."""
        body = json.dumps({"result": result, "detail": detail, "at": float(self._clock())},
                          sort_keys=True)
        with redis_errors(self._where, "acknowledge"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.acks(revision), self.instance, body)
                pipe.expire(self.keys.acks(revision), ACK_TTL)
                await pipe.execute()

    async def leave(self) -> None:
        """A clean stop: remove this instance's status and last-seen entry (gone, not lost)."""
        with redis_errors(self._where, "leave the fleet"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.status(self.instance))
                pipe.zrem(self.keys.seen, self.instance)
                await pipe.execute()

    async def aclose(self) -> None:
        await self._client.aclose()
