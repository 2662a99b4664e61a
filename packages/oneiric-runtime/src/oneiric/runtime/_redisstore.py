"""``RedisCheckpointStore``: the ``CheckpointStore`` guarantees for workers on many machines.

The SQLite store serves one machine; a fleet's workers share runs through
Redis (the runtime's ``redis`` extra; redis-py, imported when a store is made).
How each guarantee of ``_checkpoint`` holds here:

1. **Exactly-once outcomes**: every conditional update is one Lua script
   (``_redisscripts``), atomic in Redis.
2. **Durable before the engine goes on**: a call returns once Redis applied
   it.  What survives a Redis crash is Redis's own persistence setting
   (``appendonly yes`` with ``appendfsync everysec`` loses at most a second);
   docs/workflows.md says so.
3. **One executor per run**: a lease key (``SET NX PX``) renewed by a
   background thread every third of ``lease`` seconds.  An executor that dies
   stops renewing, so its run is resumable ``lease`` seconds later from any
   worker (the SQLite store's flock frees at once; a network lease cannot).
   A renewal that finds the lease gone is logged: the conditional updates keep
   that zombie from overwriting the new executor's work.
4. **Creating a run never overwrites one**: the create script checks first.

Key layout (the version is in the prefix, so a future layout can live beside
this one): ``oneiric:v1:<fleet>:wf:run:<id>`` (hash: the run record's fields as
JSON), ``...:wf:nodes:<id>`` (hash, see ``_redisscripts``), ``...:wf:runs``
(sorted set of run ids by creation time), ``...:wf:lease:<id>``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from oneiric.core import ConfigError, get_logger
from oneiric.core.helpers import redis_errors, redis_target, uuid4_text

from . import _redisscripts as scripts
from ._errors import CheckpointStoreError, RunLocked, RunNotFound
from ._runs import FINISHED_RUN_STATUSES, NodeState, RunRecord
from ._storevalues import (
    _count,
    _json,
    _prose,
    _stamp,
    _text,
    check_listing,
    check_new_run,
    check_outcome,
    check_run_changes,
)

__all__ = ["DEFAULT_LEASE", "RedisCheckpointStore"]

_log = get_logger("oneiric.runtime.workflows")

#: Seconds a dead executor's run stays locked (renewed every third of it while alive).
DEFAULT_LEASE = 30.0
_SEP = "\x1f"
_FIELDS = ("run_id", "workflow_id", "version", "definition_hash", "input", "status",
           "created_at", "updated_at", "finished_at", "error", "recoveries",
           "cancel_requested", "correlation_id")


class RedisCheckpointStore:
    """Runs and node states in Redis, shared by every worker of a fleet."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        fleet: str = "default",
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0:
            raise ConfigError(f"RedisCheckpointStore lease must be more than 0 seconds, "
                              f"got {lease!r}")
        self._client, self._where = redis_target("RedisCheckpointStore", url, client, fleet,
                                                 install="oneiric-runtime[redis]")
        self.fleet = fleet
        self.lease = float(lease)
        self._clock = clock
        self._prefix = f"oneiric:v1:{fleet}:wf"
        self._scripts = {name: self._client.register_script(getattr(scripts, name)) for name in
                         ("CREATE", "START", "FINISH", "ADVANCE", "RESET", "SKIP", "SET_RUN",
                          "RENEW", "RELEASE")}
        self._held: dict[str, str] = {}  # run id -> lease token
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ plumbing

    def _key(self, kind: str, run_id: str = "") -> str:
        return f"{self._prefix}:{kind}:{run_id}" if run_id else f"{self._prefix}:{kind}"

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Redis failures as one-line ``CheckpointStoreError`` saying what to do."""
        return redis_errors(
            "checkpoint store", self._where, action,
            unavailable=CheckpointStoreError,
            failed=lambda message: CheckpointStoreError(message, category="invalid"))

    def _run(self, name: str, action: str, keys: list[str], args: list[Any]) -> Any:
        with self._errors(action):
            return self._scripts[name](keys=keys, args=args)

    def _now(self) -> str:
        return json.dumps(float(self._clock()))

    @staticmethod
    def _decode(flat: dict[Any, Any] | list[Any]) -> RunRecord:
        if isinstance(flat, list):  # a script's HGETALL: [field, value, ...]
            flat = dict(zip(flat[::2], flat[1::2], strict=True))
        values = {_text_of(k): json.loads(v) for k, v in flat.items()}
        values["cancel_requested"] = bool(values.get("cancel_requested"))
        return RunRecord(**{f: values[f] for f in _FIELDS if f in values})

    # --------------------------------------------------------------- runs

    def create_run(self, record: RunRecord, nodes: Iterable[str]) -> tuple[RunRecord, bool]:
        """Insert ``record`` with every node ``pending``; ``(existing, False)`` if the id exists."""
        node_ids, input_json = check_new_run(record, nodes)
        now = float(self._clock())
        created = record.created_at or now
        values = {"run_id": record.run_id, "workflow_id": record.workflow_id,
                  "version": int(record.version), "definition_hash": record.definition_hash,
                  "status": record.status, "created_at": created,
                  "updated_at": record.updated_at or created,
                  "finished_at": _stamp(record.finished_at, "finished_at"),
                  "error": record.error, "recoveries": int(record.recoveries),
                  "cancel_requested": bool(record.cancel_requested),
                  "correlation_id": record.correlation_id}
        fields: list[Any] = ["input", input_json]
        for name, value in values.items():
            fields += [name, json.dumps(value)]
        created_now = self._run(
            "CREATE", "create a run",
            [self._key("run", record.run_id), self._key("nodes", record.run_id),
             self._key("runs")],
            [record.run_id, repr(created), json.dumps(node_ids), len(fields) // 2, *fields,
             *node_ids])
        stored = self.get_run(record.run_id)
        assert stored is not None
        return stored, bool(created_now)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._errors("read a run"):
            flat = self._client.hgetall(self._key("run", run_id))
        return self._decode(flat) if flat else None

    def list_runs(
        self, *, status: str | None = None, workflow_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Newest first; only ``status``'s and ``workflow_id``'s; at most ``limit``."""
        check_listing(status, limit)
        found: list[RunRecord] = []
        with self._errors("list runs"):
            ids = self._client.zrevrange(self._key("runs"), 0, -1)
            for start in range(0, len(ids), 200):
                pipe = self._client.pipeline(transaction=False)
                for run_id in ids[start:start + 200]:
                    pipe.hgetall(self._key("run", _text_of(run_id)))
                for flat in pipe.execute():
                    if not flat:
                        continue  # pruned meanwhile
                    record = self._decode(flat)
                    if ((status is None or record.status == status)
                            and (workflow_id is None or record.workflow_id == workflow_id)):
                        found.append(record)
                        if limit is not None and len(found) >= limit:
                            return found
        return found

    def set_run(self, run_id: str, **changes: Any) -> RunRecord:
        """Update fields of the run; ``updated_at`` becomes now; ``RunNotFound`` if none."""
        values = check_run_changes(changes)
        values["updated_at"] = float(self._clock())
        flat: list[Any] = []
        for name, value in values.items():
            flat += [name, json.dumps(value)]
        result = self._run("SET_RUN", "update a run", [self._key("run", run_id)], flat)
        if result == -1:
            raise self._not_found(run_id)
        return self._decode(result)

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no workflow run {run_id!r} in fleet {self.fleet!r} at "
                           f"{self._where}; list runs with 'oneiric workflow runs'")

    # -------------------------------------------------------------- nodes

    def nodes(self, run_id: str) -> dict[str, NodeState]:
        """Every node of the run in the definition's order (empty for an unknown run)."""
        with self._errors("read nodes"):
            flat = self._client.hgetall(self._key("nodes", run_id))
        if not flat:
            return {}
        fields = {_text_of(k): _text_of(v) for k, v in flat.items()}
        order: list[str] = json.loads(fields[_SEP + "order"])

        def field(node_id: str, name: str) -> Any:
            value = fields.get(f"{node_id}{_SEP}{name}")
            return None if value is None else json.loads(value)

        return {
            node_id: NodeState(status=fields[f"{node_id}{_SEP}s"],
                               attempts=int(fields[f"{node_id}{_SEP}a"]),
                               output=field(node_id, "o"), error=field(node_id, "e"),
                               started_at=field(node_id, "b"), finished_at=field(node_id, "f"))
            for node_id in order
        }

    def node_started(self, run_id: str, node_id: str, attempt: int) -> bool:
        """Mark ``running`` with ``attempt`` if not ``succeeded`` and the recorded attempt
        is lower; ``False`` (nothing written) otherwise."""
        attempt = _count(attempt)
        return bool(self._run("START", "record a node start", [self._key("nodes", run_id)],
                              [node_id, attempt, self._now()]))

    def node_finished(
        self, run_id: str, node_id: str, attempt: int, status: str, *,
        output: Any = None, error: str | None = None,
    ) -> bool:
        """Record the outcome only while (run, node, attempt) is ``running``."""
        attempt, output_json, error = check_outcome(run_id, node_id, attempt, status, output,
                                                    error)
        return bool(self._run(
            "FINISH", "record a node outcome", [self._key("nodes", run_id)],
            [node_id, attempt, status, output_json or "",
             "" if error is None else json.dumps(error), self._now()]))

    def advance(
        self, run_id: str, *, succeeded: Sequence[tuple[str, int, Any]] = (),
        started: Sequence[tuple[str, int]] = (),
    ) -> bool:
        """Successes and the starts they enable in one script: all or nothing."""
        args: list[Any] = [self._now(), len(succeeded)]
        for node_id, attempt, output in succeeded:
            args += [node_id, _count(attempt), "" if output is None else _json(
                output, f"the output of node {node_id!r} of run {run_id!r}")]
        for node_id, attempt in started:
            args += [node_id, _count(attempt)]
        return bool(self._run("ADVANCE", "record node outcomes and starts",
                              [self._key("nodes", run_id)], args))

    def reset_nodes(self, run_id: str, node_ids: Iterable[str]) -> None:
        """Back to ``pending`` keeping the attempt count (a new node id is added)."""
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        for node_id in ids:
            _text(node_id, f"node id of run {run_id!r}")
        if self._run("RESET", "reset nodes",
                     [self._key("run", run_id), self._key("nodes", run_id)], ids) == -1:
            raise self._not_found(run_id)

    def skip_nodes(self, run_id: str, node_ids: Iterable[str], reason: str) -> None:
        """Mark ``skipped`` every listed node that is not ``succeeded``."""
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        text = json.dumps(_prose(reason, "skip reason", optional=False))
        if self._run("SKIP", "skip nodes",
                     [self._key("run", run_id), self._key("nodes", run_id)],
                     [text, self._now(), *ids]) == -1:
            raise self._not_found(run_id)

    # ----------------------------------------------------------- executor

    @contextlib.contextmanager
    def executor(self, run_id: str) -> Iterator[None]:
        """Hold the run's lease for the context (renewed); ``RunLocked`` if another has it."""
        key, token = self._key("lease", _text(run_id, "run id")), uuid4_text()
        with self._errors("take the executor lease"):
            taken = self._client.set(key, token, nx=True, px=int(self.lease * 1000))
        if not taken:
            raise RunLocked(f"run {run_id!r} is being executed by another worker (its lease "
                            f"is live); wait for it, or cancel it")
        with self._held_lock:
            self._held[run_id] = token
            self._start_renewer()
        try:
            yield
        finally:
            with self._held_lock:
                self._held.pop(run_id, None)
            try:
                self._run("RELEASE", "release the executor lease", [key], [token])
            except CheckpointStoreError as exc:  # it expires on its own
                _log.warning("executor lease not released", run_id=run_id, error=str(exc))

    def executor_alive(self, run_id: str) -> bool:
        """True while some worker holds the run's lease."""
        with self._errors("read the executor lease"):
            return bool(self._client.exists(self._key("lease", _text(run_id, "run id"))))

    def _start_renewer(self) -> None:
        if self._renewer is None or not self._renewer.is_alive():
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew_forever, daemon=True,
                                             name="oneiric-workflow-lease")
            self._renewer.start()

    def _renew_forever(self) -> None:
        """Every third of ``lease``: extend each lease this store holds."""
        while not self._stop.wait(self.lease / 3):
            with self._held_lock:
                held = dict(self._held)
            for run_id, token in held.items():
                try:
                    kept = self._run("RENEW", "renew the executor lease",
                                     [self._key("lease", run_id)],
                                     [token, int(self.lease * 1000)])
                except CheckpointStoreError as exc:
                    _log.warning("executor lease not renewed", run_id=run_id, error=str(exc))
                    continue
                if not kept:
                    _log.error("executor lease lost; another worker may take the run over",
                               run_id=run_id)

    # ------------------------------------------------------------ pruning

    def prune(self, older_than: float) -> int:
        """Delete finished runs last updated before ``older_than``; how many."""
        cutoff = _stamp(older_than, "older_than", optional=False)
        assert cutoff is not None
        removed = 0
        for record in self.list_runs():
            if record.status in FINISHED_RUN_STATUSES and record.updated_at < cutoff:
                with self._errors("prune"):
                    pipe = self._client.pipeline(transaction=True)
                    pipe.delete(self._key("run", record.run_id),
                                self._key("nodes", record.run_id))
                    pipe.zrem(self._key("runs"), record.run_id)
                    pipe.execute()
                removed += 1
        if removed:
            _log.info("workflow runs pruned", fleet=self.fleet, removed=removed)
        return removed

    def close(self) -> None:
        """Stop renewing (held leases then expire) and close the connections."""
        self._stop.set()
        renewer = self._renewer
        if renewer is not None:
            renewer.join(timeout=5)
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> RedisCheckpointStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _text_of(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
