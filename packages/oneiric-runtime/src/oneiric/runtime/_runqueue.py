"""``RedisRunQueue``: workflow runs queued on a Redis Stream, claimed by any worker.

``submit`` appends ``{workflow, input, run_id}`` to the fleet's run stream;
every worker serving the queue reads it through one consumer group, so each
run goes to one worker, which executes it with its ``WorkflowEngine`` (over a
``RedisCheckpointStore``: nodes are checkpointed where every worker sees them).

**Live work is never taken; dead work is.**  While a worker executes a run it
re-claims its own stream entry every third of ``min_idle`` (``XCLAIM`` resets
the entry's idle time), and the store renews the run's executor lease.  A
worker that dies stops both: after ``min_idle`` another worker's
``XAUTOCLAIM`` takes the entry and calls ``engine.run`` with the same run id,
which resumes the run - finished nodes are never run again, the node that was
in flight runs once more.  Should the claim come before the dead worker's
lease expired, the engine answers ``RunLocked`` and the entry stays pending for
the next claim.  An entry is acknowledged (and deleted) once its run finished,
failed or was refused for good (an unknown workflow); a run that cannot start
because Redis or the store is unavailable stays pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from oneiric.core import ConfigError, OneiricError, get_logger
from oneiric.core.helpers import (
    instance_id,
    one_line,
    parse_duration,
    redis_errors,
    redis_target,
    uuid4_text,
)

from ._errors import RunLocked

if TYPE_CHECKING:
    from ._engine import WorkflowEngine

__all__ = ["RedisRunQueue"]

_log = get_logger("oneiric.runtime.workflows")


class RedisRunQueue:
    """Submit runs to, and serve them from, the fleet's Redis run stream."""

    def __init__(
        self,
        engine: WorkflowEngine,
        url: str | None = None,
        *,
        client: Any = None,
        fleet: str = "default",
        consumer: str | None = None,
        min_idle: float | str = 60.0,
        max_runs: int = 4,
        block: float = 1.0,
    ) -> None:
        client, self._where = redis_target("RedisRunQueue", url, client, fleet, asyncio=True,
                                           install="oneiric-runtime[redis]")  # reads: 1 s
        idle = parse_duration(min_idle, what="RedisRunQueue min_idle")
        if not idle > 0:
            raise ConfigError(f"RedisRunQueue min_idle must be more than 0 seconds, "
                              f"got {min_idle!r}")
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise ConfigError(f"RedisRunQueue max_runs must be an integer >= 1, got {max_runs!r}")
        lease = getattr(engine.store, "lease", None)
        if isinstance(lease, float) and idle < lease:
            raise ConfigError(
                f"RedisRunQueue min_idle ({idle:g}s) is below the checkpoint store's lease "
                f"({lease:g}s): a dead worker's run would be claimed while still locked; "
                "raise min_idle to at least the lease")
        self.engine = engine
        self._client = client
        self.fleet = fleet
        self.consumer = consumer or instance_id()
        self.min_idle = idle
        self.max_runs = max_runs
        self.block = block
        self.stream = f"oneiric:v1:{fleet}:wf:queue"
        self.group = f"{fleet}:workflows"
        self._running: dict[str, asyncio.Task[None]] = {}  # entry id -> its run
        #: Runs this worker finished, claimed from a dead worker, left pending (locked).
        self.stats = {"executed": 0, "claimed": 0, "locked": 0}

    # ------------------------------------------------------------- submit

    async def submit(self, workflow_id: str, input: Any = None, *, run_id: str | None = None,
                     correlation_id: str | None = None) -> str:
        """Queue a run of ``workflow_id``; its run id (new unless given) once Redis has it."""
        self.engine.get(workflow_id).check_actions(self.engine.lifecycle.resolver.keys("action"))
        self.engine._check_json(input, "run input")
        run_id = run_id or uuid4_text()
        fields = {"workflow": workflow_id, "input": json.dumps(input), "run_id": run_id}
        if correlation_id is not None:
            fields["correlation_id"] = correlation_id
        await self._call("queue a run", self._client.xadd(self.stream, fields))
        return run_id

    # -------------------------------------------------------------- serve

    async def serve(self) -> None:
        """Claim and execute runs until cancelled (then in-flight runs are cancelled)."""
        await self._ensure_group()
        claim_every = self.min_idle / 2
        loop = asyncio.get_running_loop()
        next_claim = loop.time()
        try:
            while True:
                free = self.max_runs - len(self._running)
                if free <= 0:
                    await asyncio.wait(list(self._running.values()),
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    if loop.time() >= next_claim:
                        next_claim = loop.time() + claim_every
                        for entry_id, fields in await self._claim(free):
                            self.stats["claimed"] += 1
                            self._start(entry_id, fields)
                        continue
                    for entry_id, fields in await self._read(free):
                        self._start(entry_id, fields)
                except OneiricError as exc:  # Redis unreachable: keep trying, slowly
                    _log.warning("run queue unavailable; retrying", error=str(exc))
                    await asyncio.sleep(min(self.block, claim_every))
        finally:
            tasks = list(self._running.values())
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    async def _ensure_group(self) -> None:
        try:
            await self._call("create the consumer group", self._client.xgroup_create(
                self.stream, self.group, id="0", mkstream=True))
        except OneiricError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, count: int) -> list[tuple[str, dict[str, str]]]:
        reply = await self._call("read the run queue", self._client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count,
            block=int(self.block * 1000)))
        return [(_text(i), _fields(f)) for _stream, entries in reply or [] for i, f in entries]

    async def _claim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Entries idle longer than ``min_idle``: their worker died (or lost Redis)."""
        reply = await self._call("claim idle runs", self._client.xautoclaim(
            self.stream, self.group, self.consumer, int(self.min_idle * 1000), "0-0",
            count=count))
        entries = reply[1] if reply else []
        return [(_text(i), _fields(f)) for i, f in entries
                if f is not None and _text(i) not in self._running]

    def _start(self, entry_id: str, fields: dict[str, str]) -> None:
        task = asyncio.ensure_future(self._execute(entry_id, fields))
        self._running[entry_id] = task
        task.add_done_callback(lambda _t: self._running.pop(entry_id, None))

    async def _execute(self, entry_id: str, fields: dict[str, str]) -> None:
        keeper = asyncio.ensure_future(self._keep(entry_id))
        try:
            try:
                run_input = json.loads(fields.get("input", "null"))
                result = await self.engine.run(
                    fields["workflow"], run_input, run_id=fields["run_id"],
                    correlation_id=fields.get("correlation_id"))
            except RunLocked:
                self.stats["locked"] += 1  # its executor is alive: claimed again later
                return
            except OneiricError as exc:
                if exc.category == "unavailable":
                    _log.warning("run not started; left queued", run_id=fields.get("run_id"),
                                 error=one_line(exc))
                    return
                _log.error("run refused; dropped from the queue", run_id=fields.get("run_id"),
                           error=one_line(exc))
            else:
                self.stats["executed"] += 1
                _log.info("run done", run_id=result.run_id, status=result.status)
            await self._ack(entry_id)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, entry_id: str) -> None:
        """Re-claim our own entry so its idle time never reaches ``min_idle`` while we live."""
        while True:
            await asyncio.sleep(self.min_idle / 3)
            try:
                await self._client.xclaim(self.stream, self.group, self.consumer, 0,
                                          [entry_id], justid=True)
            except Exception as exc:  # keep running the run; the store's lease protects it
                _log.warning("run entry not renewed", entry=entry_id, error=one_line(exc))

    async def _ack(self, entry_id: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await self._call("acknowledge a run", pipe.execute())

    # ------------------------------------------------------------ plumbing

    async def _call(self, action: str, pending: Any) -> Any:
        with redis_errors("run queue", self._where, action):
            return await pending

    async def aclose(self) -> None:
        await self._client.aclose()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (raw or {}).items()}
