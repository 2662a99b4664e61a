"""``FleetAdmin``: what operators (the CLI) write to and read from a fleet - synchronous.

The CLI must stay fast (no event loop for a pause), so the operator side uses
redis-py's sync client; instances use the asyncio one (``_member``).  Every
write is the one atomic script of ``_codec``; reads are plain commands.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from oneiric.core import ConfigError
from oneiric.core.helpers import redis_target, uuid4_text

from ._codec import WRITE, FleetState, LoggedChange, decode_desired, decode_entry, text
from ._errors import StaleRevision
from ._keys import FleetKeys
from ._redis import INSTALL, redis_errors

__all__ = ["DEFAULT_HISTORY", "LOST_FORGOTTEN_AFTER", "TRIM_EVERY", "FleetAdmin"]

#: Revisions ``fleet history`` keeps at least (the log is trimmed to this, never below
#: the slowest live instance).
DEFAULT_HISTORY = 10_000
#: A write whose revision is a multiple of this trims the log.
TRIM_EVERY = 100
#: A lost instance stays listed (``lost: true``) this long after it was last seen (§12).
LOST_FORGOTTEN_AFTER = 24 * 3600.0


class FleetAdmin:
    """Write decisions, read the desired state, the history, the instances and their acks."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        fleet: str = "default",
        history: int = DEFAULT_HISTORY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ConfigError(f"fleet history must be an integer >= 1, got {history!r}")
        self.keep = history
        self._client, self._where = redis_target("FleetAdmin", url, client, fleet,
                                                 install=INSTALL)
        self.keys = FleetKeys(fleet)
        self.fleet = fleet
        self._clock = clock
        self._write = self._client.register_script(WRITE)

    # ------------------------------------------------------------- writes

    def write(self, change: LoggedChange, *, expect_revision: int | None = None) -> LoggedChange:
        """Commit ``change`` (its revision/epoch are ignored); the committed ``LoggedChange``.

        ``expect_revision``: compare-and-set - ``StaleRevision`` (nothing written)
        unless it is the fleet's revision now.
        """
        return self.write_with_previous(change, expect_revision=expect_revision)[0]

    def write_with_previous(
        self, change: LoggedChange, *, expect_revision: int | None = None
    ) -> tuple[LoggedChange, str | None]:
        """``write``, and the decision's value before it (the provider, the activity JSON)."""
        at = change.at or float(self._clock())
        committed = dataclasses.replace(change, revision=0, epoch="", at=at)
        keys = self.keys
        with redis_errors(self._where, "write the change"):
            written, revision, epoch, previous = self._write(
                keys=[keys.meta, keys.desired, keys.log],
                args=["" if expect_revision is None else int(expect_revision),
                      committed.entry(), uuid4_text(), *committed.fields()])
        if not written:
            raise StaleRevision(
                f"the fleet {self.fleet!r} is at revision {int(revision)}, not "
                f"{expect_revision}; nothing was written - read the state again "
                "('oneiric fleet status') and retry with its revision",
                expected=int(expect_revision or 0), current=int(revision))
        if int(revision) % TRIM_EVERY == 0:
            self.trim(self.keep)
        done = dataclasses.replace(committed, revision=int(revision), epoch=text(epoch))
        return done, text(previous) or None

    def trim(self, keep: int = DEFAULT_HISTORY) -> int:
        """Trim the change log; how many entries went.

        Never below the slowest live instance's applied revision (it reads on
        from there; a lost instance relists when it returns), and never fewer
        than ``keep`` revisions (``fleet history``).  Acknowledgements expire
        on their own (``ACK_TTL``).
        """
        revision = self.desired().revision
        cursors = [int(r.get("applied_revision") or 0) for r in self.instances()
                   if not r["lost"]]
        floor = min([revision - keep + 1, *(c + 1 for c in cursors)])
        if floor <= 1:
            return 0
        with redis_errors(self._where, "trim the change log"):
            trimmed: int = self._client.xtrim(self.keys.log, minid=f"{floor}-0",
                                              approximate=False)
        return trimmed

    def adopt(self, actor: str) -> dict[str, Any]:
        """Accept the fleet's current epoch after a wipe or a regression (``fleet adopt``).

        Re-seeds the desired state from what the live instances report bound:
        a key every reporting instance binds to the same provider is selected
        for it (under the current epoch, created if the fleet has none); keys
        they disagree on are listed and left alone (each keeps its binding).
        Then marks the epoch adopted, so regressed instances relist it.
        """
        bindings: dict[tuple[str, str, str | None], set[str]] = {}
        for record in self.instances():
            if record["lost"]:
                continue
            for key in record.get("keys") or []:
                if key.get("bound"):
                    ref = (key["domain"], key["key"], key.get("tenant"))
                    bindings.setdefault(ref, set()).add(key["bound"])
        desired = self.desired().selections
        seeded, conflicts = [], []
        for (domain, key, tenant), providers in sorted(bindings.items(),
                                                       key=lambda i: str(i[0])):
            if len(providers) > 1:
                conflicts.append({"domain": domain, "key": key, "tenant": tenant,
                                  "bound": sorted(providers)})
                continue
            (provider,) = providers
            if desired.get((domain, key, tenant)) != provider:
                self.write(LoggedChange(0, "", "select", domain, key, tenant=tenant,
                                        provider=provider, note="fleet adopt", actor=actor))
                seeded.append({"domain": domain, "key": key, "tenant": tenant,
                               "provider": provider})
        with redis_errors(self._where, "adopt the epoch"):
            self._client.hsetnx(self.keys.meta, "epoch", uuid4_text())
            epoch = text(self._client.hget(self.keys.meta, "epoch"))
            self._client.hset(self.keys.meta, "adopted", epoch)
        return {"epoch": epoch, "revision": self.desired().revision, "seeded": seeded,
                "conflicts": conflicts}

    # -------------------------------------------------------------- reads

    def desired(self) -> FleetState:
        """The whole desired state and its revision (one MULTI: a consistent snapshot)."""
        with redis_errors(self._where, "read the desired state"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hgetall(self.keys.meta)
            pipe.hgetall(self.keys.desired)
            meta, desired = pipe.execute()
        return decode_desired(meta, desired)

    def history(self, limit: int = 50) -> list[LoggedChange]:
        """The last ``limit`` changes, newest first (actor, time, revision)."""
        with redis_errors(self._where, "read the history"):
            entries = self._client.xrevrange(self.keys.log, count=limit)
        return [decode_entry(entry_id, fields) for entry_id, fields in entries]

    def instances(self) -> list[dict[str, Any]]:
        """Every instance seen in the last 24 h: its last status document, ``lost`` if its
        status expired (it stopped heartbeating), oldest-seen first."""
        now = float(self._clock())
        with redis_errors(self._where, "read the instances"):
            self._client.zremrangebyscore(self.keys.seen, "-inf", now - LOST_FORGOTTEN_AFTER)
            seen = self._client.zrange(self.keys.seen, 0, -1, withscores=True)
            ids = [text(i) for i, _score in seen]
            docs = self._client.mget([self.keys.status(i) for i in ids]) if ids else []
        found: list[dict[str, Any]] = []
        for (instance, last_seen), doc in zip(zip(ids, (s for _i, s in seen), strict=True),
                                              docs, strict=True):
            record: dict[str, Any] = json.loads(text(doc)) if doc is not None else {
                "id": instance}
            record["id"] = instance
            record["last_seen"] = float(last_seen)
            record["lost"] = doc is None
            found.append(record)
        return found

    def acks(self, revision: int) -> dict[str, dict[str, Any]]:
        """Instance id -> its acknowledgement of ``revision`` (``result``, ``detail``, ``at``)."""
        with redis_errors(self._where, "read acknowledgements"):
            raw = self._client.hgetall(self.keys.acks(revision))
        return {text(k): json.loads(text(v)) for k, v in raw.items()}

    def rollout(self) -> dict[str, Any] | None:
        """The recorded rollout (``_rollout``), or None."""
        with redis_errors(self._where, "read the rollout"):
            raw = self._client.hgetall(self.keys.rollout)
        return {text(k): json.loads(text(v)) for k, v in raw.items()} if raw else None

    def save_rollout(self, fields: dict[str, Any]) -> None:
        with redis_errors(self._where, "record the rollout"):
            self._client.hset(self.keys.rollout,
                              mapping={k: json.dumps(v) for k, v in fields.items()})

    def close(self) -> None:
        self._client.close()
