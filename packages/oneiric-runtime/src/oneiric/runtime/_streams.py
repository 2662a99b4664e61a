"""``RedisStreamsTransport``: the dispatcher's transport over one Redis stream per fleet.

``publish`` is an ``XADD`` that returns once Redis acknowledged it.  Each
handler group ``g`` this process's dispatcher subscribes is the consumer
group ``<fleet>:g`` and this process one consumer in it (its instance id):
a reader per group (``XREADGROUP ... BLOCK``) feeds ``workers`` tasks that
dispatch to that group only and ack when the outcome is final (see
``_streams_entry``).  A maintenance step renews this consumer's in-flight
entries, takes over entries idle longer than ``min_idle`` (``XAUTOCLAIM``;
``min_idle`` must exceed every handler's timeout, so a live call is never
taken), refreshes the stats and trims the stream (``_streams_trim``).

Redis unreachable: each loop logs once (the transport's state), backs off
with jitter (``RetryPolicy`` delays) and goes on; whatever was not acked
stays pending in Redis and is claimed again.  redis-py is imported when a
transport is built, never by ``import oneiric.runtime``.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from oneiric.core import ConfigError, RetryPolicy, get_logger
from oneiric.core.helpers import instance_id, one_line, redis_client, scrub_credentials

from ._errors import EventTransportError
from ._event import Event
from ._streams_dedupe import RedisDedupe
from ._streams_entry import DEAD_LETTER_SCRIPT, RENEW_SCRIPT, Delivery, encode, handle
from ._streams_settings import StreamSettings
from ._streams_trim import trim_stream

__all__ = ["RedisStreamsTransport"]

_log = get_logger("oneiric.runtime.streams")
#: The waits between attempts while Redis is unreachable (the last one repeats).
BACKOFF = RetryPolicy(max_attempts=8, initial=0.05, multiplier=2.0, max_interval=2.0, jitter=0.5)


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError:
        raise ConfigError(
            "the redis event transport needs redis-py: pip install 'oneiric-runtime[redis]'"
        ) from None
    return redis


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each is done, cancelling again where one went on.

    On Python 3.11 ``asyncio.wait_for`` (which redis-py uses for socket
    writes) can swallow a cancellation that lands as its inner call ends; a
    worker would then wait on the queue forever and stop the shutdown.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:  # retrieve what each ended with, so none is reported as lost
        if not task.cancelled():
            task.exception()


class RedisStreamsTransport:
    """``EventDispatcher(lifecycle, transport=RedisStreamsTransport(url, fleet=...))``.

    Options are ``StreamSettings`` fields (durations as seconds or ``"30s"``);
    ``settings=`` passes a validated ``StreamSettings`` instead.  ``clock``
    (POSIX seconds) and ``rng`` are injectable for trimming and jitter.
    """

    def __init__(self, url: str | None = None, *, settings: StreamSettings | None = None,
                 clock: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random, **options: Any) -> None:
        if settings is None:
            fields = dict(options, **({"url": url} if url is not None else {}))
            settings = StreamSettings.from_mapping(fields, where="RedisStreamsTransport")
        elif url is not None or options:
            raise ConfigError("RedisStreamsTransport: pass settings= or options, not both")
        self._redis = _import_redis()
        self.settings = settings
        self.keys = settings.keys
        self.consumer = settings.consumer or instance_id()
        self.location = scrub_credentials(settings.url)
        self.dedupe = RedisDedupe(self)
        self.counts: collections.Counter[str] = collections.Counter()
        self.state = "ok"
        self._clock = clock
        self._rng = rng
        self._dispatcher: Any = None
        self._client_: Any = None
        self._scripts: dict[str, Any] = {}
        self._groups: set[str] = set()  # consumer groups known to exist
        self._in_flight: dict[str, set[str]] = collections.defaultdict(set)
        self._group_stats: dict[str, tuple[int, int]] = {}  # group -> (pending, lag)

    def __repr__(self) -> str:
        return f"<RedisStreamsTransport {self.location} fleet={self.keys.fleet!r}>"

    def attach(self, dispatcher: Any) -> None:
        """Called by ``EventDispatcher``: its subscriptions say which groups to consume."""
        self._dispatcher = dispatcher

    # ------------------------------------------------------------ connection

    @property
    def client(self) -> Any:
        if self._client_ is None:
            s = self.settings
            self._client_ = redis_client(s.url, asyncio=True, socket_timeout=s.block + 10.0)
        return self._client_

    def script(self, name: str) -> Any:
        held = self._scripts.get(name)
        if held is None:
            text = {"dead": DEAD_LETTER_SCRIPT, "renew": RENEW_SCRIPT}[name]
            held = self._scripts[name] = self.client.register_script(text)
        return held

    @property
    def unreachable(self) -> tuple[type[BaseException], ...]:
        """The exceptions that mean "Redis is not there right now" (back off, go on)."""
        e = self._redis.exceptions
        return (e.ConnectionError, e.TimeoutError, OSError, e.BusyLoadingError)

    async def aclose(self) -> None:
        client, self._client_ = self._client_, None
        self._scripts.clear()
        if client is not None:
            await client.aclose()

    def _down(self, exc: BaseException) -> None:
        if self.state == "ok":
            self.state = "unreachable"
            _log.warning("redis unreachable; event consumers retry with backoff",
                         url=self.location, error=one_line(scrub_credentials(str(exc))))

    def _up(self) -> None:
        if self.state != "ok":
            self.state = "ok"
            _log.info("redis reachable again; event consumers resume", url=self.location)

    async def _backoff(self, failures: int) -> None:
        waits = list(BACKOFF.delays(self._rng))
        await asyncio.sleep(waits[min(failures, len(waits) - 1)])

    # --------------------------------------------------------------- publish

    async def put(self, event: Event) -> None:
        """``XADD`` to the fleet's stream; returns once Redis acknowledged the entry."""
        try:
            await self.ensure_groups(self._wanted())
            await self.client.xadd(self.keys.events, encode(event))
        except self.unreachable as exc:
            self._down(exc)
            raise EventTransportError(
                f"event {event.id} not published: redis at {self.location} is unreachable "
                f"({one_line(scrub_credentials(str(exc)))}); retry, or check the server"
            ) from None
        except self._redis.exceptions.ResponseError as exc:
            raise EventTransportError(
                f"event {event.id} not published: redis at {self.location} refused it: "
                f"{one_line(exc)}"
            ) from None
        self._up()

    # ---------------------------------------------------------------- groups

    def _wanted(self) -> dict[str, list[Any]]:
        """This dispatcher's subscriptions by group (the groups it consumes)."""
        groups: dict[str, list[Any]] = {}
        if self._dispatcher is not None:
            for sub in self._dispatcher.subscriptions():
                groups.setdefault(sub.group, []).append(sub)
        return groups

    def check(self, groups: dict[str, list[Any]] | None = None) -> None:
        """Every handler's timeout under ``min_idle``, or one-line ``ConfigError``."""
        min_idle = self.settings.min_idle
        if groups is None:
            groups = self._wanted()
        for group, subs in sorted(groups.items()):
            for sub in subs:
                if sub.timeout is None:
                    raise ConfigError(
                        f"event handler {sub.name!r} (group {group!r}) has no timeout; with the "
                        f"redis transport each handler needs one under min_idle ({min_idle:g}s) "
                        "so a live call is never taken over"
                    )
                if sub.timeout >= min_idle:
                    raise ConfigError(
                        f"event handler {sub.name!r} timeout {sub.timeout:g}s is not under the "
                        f"redis transport's min_idle ({min_idle:g}s); raise min_idle or lower "
                        "the timeout, or a live call could be taken over"
                    )

    async def ensure_groups(self, groups: Iterable[str], start: str = "$") -> None:
        """``XGROUP CREATE ... MKSTREAM`` for groups not known to exist (one exists: fine)."""
        for group in groups:
            if group in self._groups:
                continue
            try:
                await self.client.xgroup_create(self.keys.events, self.keys.group(group),
                                                id=start, mkstream=True)
            except self._redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(group)

    # ----------------------------------------------------------------- serve

    async def serve(self, dispatch: Callable[..., Awaitable[Any]], workers: int) -> None:
        """Consume this dispatcher's groups until cancelled (then every task is awaited)."""
        wanted = self._wanted()
        self.check(wanted)
        queue: asyncio.Queue[Delivery] = asyncio.Queue(max(1, workers))
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            for n in range(max(1, workers)):
                tasks[f"worker-{n}"] = asyncio.ensure_future(self._work(dispatch, queue))
            tasks["maintain"] = asyncio.ensure_future(self._maintain(queue, tasks))
            tasks["renew"] = asyncio.ensure_future(self._renew_loop())
            await asyncio.gather(*list(tasks.values()))
        finally:
            await _cancel_all(list(tasks.values()))

    async def _read(self, group: str, queue: asyncio.Queue[Delivery]) -> None:
        """New entries of one group (``>``), handed to the workers as they are read."""
        failures = 0
        name, stream = self.keys.group(group), self.keys.events
        while True:
            try:
                await self.ensure_groups([group])
                reply = await self.client.xreadgroup(
                    name, self.consumer, {stream: ">"}, count=self.settings.batch,
                    block=int(self.settings.block * 1000))
            except self.unreachable as exc:
                self._down(exc)
                await self._backoff(failures)
                failures += 1
                continue
            except self._redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups.discard(group)  # Redis was wiped: every entry there is new
                await self._recreate(group)
                continue
            failures = 0
            self._up()
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    await self._enqueue(queue, Delivery(group, entry_id.decode(), fields, 1))

    async def _recreate(self, group: str) -> None:
        try:
            await self.ensure_groups([group], start="0")
        except self.unreachable as exc:
            self._down(exc)

    async def _enqueue(self, queue: asyncio.Queue[Delivery], delivery: Delivery) -> None:
        self._in_flight[delivery.group].add(delivery.id)  # renewed from now on
        await queue.put(delivery)

    async def _work(self, dispatch: Callable[..., Awaitable[Any]],
                    queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            self.counts["delivered"] += 1
            try:
                result = await handle(self, dispatch, delivery)
                if result == "left":
                    self.counts["left_pending"] += 1
            except self.unreachable as exc:  # not acked: it stays pending and is claimed again
                self._down(exc)
            except Exception as exc:  # a routing bug must not stop the consumer
                _log.error("stream entry not handled", entry=delivery.id, group=delivery.group,
                           error=one_line(exc))
            finally:
                self._in_flight[delivery.group].discard(delivery.id)

    async def ack(self, delivery: Delivery) -> None:
        await self.client.xack(self.keys.events, self.keys.group(delivery.group), delivery.id)
        self.counts["acked"] += 1

    # ----------------------------------------------------------- maintenance

    async def _maintain(self, queue: asyncio.Queue[Delivery],
                        tasks: dict[str, asyncio.Task[None]]) -> None:
        """Readers for new groups, renewal, takeover, stats and trimming, every claim_every."""
        failures = 0
        trimmed_at = 0.0
        while True:
            wanted = self._wanted()
            for group in wanted:
                if f"read:{group}" not in tasks:
                    try:
                        self.check({group: wanted[group]})
                    except ConfigError as exc:
                        _log.error("event group not consumed", group=group, error=str(exc))
                        continue
                    tasks[f"read:{group}"] = asyncio.ensure_future(self._read(group, queue))
            try:
                for group in wanted:
                    await self._claim(group, queue)
                await self._refresh_stats()
                if time.monotonic() - trimmed_at >= self.settings.trim_every:
                    await self.trim()
                    trimmed_at = time.monotonic()
                failures = 0
            except self.unreachable as exc:
                self._down(exc)
                await self._backoff(failures)
                failures += 1
                continue
            except self._redis.exceptions.ResponseError as exc:  # NOGROUP after a wipe
                _log.warning("event stream maintenance skipped", error=one_line(exc))
            await asyncio.sleep(self.settings.claim_every)

    async def _renew_loop(self) -> None:
        """Reset the idle time of this consumer's in-flight entries, every ``claim_every``.

        A task of its own: claiming may wait for a free worker, renewal must not.
        """
        while True:
            try:
                for group, held in list(self._in_flight.items()):
                    ids = sorted(held)
                    if ids:
                        await self.script("renew")(
                            keys=[self.keys.events],
                            args=[self.keys.group(group), self.consumer, *ids])
            except self.unreachable as exc:
                self._down(exc)
            except self._redis.exceptions.ResponseError as exc:  # NOGROUP after a wipe
                _log.warning("event entries not renewed", error=one_line(exc))
            await asyncio.sleep(self.settings.claim_every)

    async def _claim(self, group: str, queue: asyncio.Queue[Delivery]) -> None:
        """``XAUTOCLAIM`` entries idle over ``min_idle`` (a dead or failing consumer's)."""
        name = self.keys.group(group)
        reply = await self.client.xautoclaim(
            self.keys.events, name, self.consumer, int(self.settings.min_idle * 1000),
            "0-0", count=max(1, min(self.settings.batch, queue.maxsize - queue.qsize())))
        claimed = [(i, f) for i, f in reply[1] if i.decode() not in self._in_flight[group]]
        if not claimed:
            return
        counts = {p["message_id"]: p["times_delivered"] for p in await self.client.xpending_range(
            self.keys.events, name, claimed[0][0], claimed[-1][0], len(claimed) * 2,
            consumername=self.consumer)}
        for entry_id, fields in claimed:
            self.counts["claimed"] += 1
            delivery = Delivery(group, entry_id.decode(), fields, counts.get(entry_id, 1))
            await self._enqueue(queue, delivery)

    async def _refresh_stats(self) -> None:
        try:
            groups = await self.client.xinfo_groups(self.keys.events)
        except self._redis.exceptions.ResponseError:  # no stream yet
            return
        prefix = f"{self.keys.fleet}:"
        self._group_stats = {
            g["name"].decode()[len(prefix):]: (int(g["pending"]), int(g.get("lag") or 0))
            for g in groups if g["name"].decode().startswith(prefix)
        }

    async def trim(self) -> int:
        """One trimming step now (the consumer loop runs it every ``trim_every``)."""
        removed = await trim_stream(self.client, self.keys.events,
                                    retention=self.settings.retention,
                                    max_length=self.settings.max_length, now=self._clock())
        self.counts["trimmed"] += removed
        return removed

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """For ``/metrics`` and status: totals since start, pending and lag as last read."""
        wanted = set(self._group_stats) & set(self._wanted()) or set(self._group_stats)
        return {
            "transport": "redis", "redis": self.state,
            "pending": sum(self._group_stats[g][0] for g in wanted),
            "lag": sum(self._group_stats[g][1] for g in wanted),
            **{k: self.counts[k] for k in ("delivered", "acked", "claimed", "dead_lettered",
                                           "left_pending", "trimmed")},
        }

    async def dead_letters(self, group: str, count: int = 100) -> list[dict[str, str]]:
        """The newest ``count`` entries of ``group``'s dead-letter stream, as text fields."""
        entries = await self.client.xrevrange(self.keys.dead(group), count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}}
                for i, f in entries]
