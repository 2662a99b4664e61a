"""The values a fleet keeps in Redis, and how they are written and read back.

One module for both sides (operators write with the sync client, instances
read with the asyncio one), so a change means the same thing to both.  The
write is one Lua script: it checks the expected revision (compare-and-set),
bumps the revision, applies the decision to the desired-state hash and
appends it to the log stream with entry id ``<revision>-1`` - all atomically,
so the log and the state can never disagree.  A fleet without an epoch (new,
or wiped) gets a fresh one on its first write: instances that knew another
epoch see it and report ``regressed`` instead of applying a state that is
not the one they came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._keys import activity_field, canary_field, parse_field, selection_field

__all__ = ["WRITE", "LoggedChange", "FleetState", "decode_desired", "decode_entry", "text"]

ChangeKind = Literal["select", "activity", "canary"]

#: KEYS meta, desired, log; ARGV expected revision or '', entry JSON, an epoch to use if
#: the fleet has none, then field, value ('' deletes) pairs - the first field's previous
#: value is returned.  Returns {written, revision, epoch, previous or ''}.
WRITE = """
local revision = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= revision then return {0, revision, epoch, ''} end
local previous = redis.call('HGET', KEYS[2], ARGV[4]) or ''
revision = revision + 1
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i])
  else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
redis.call('HSET', KEYS[1], 'revision', revision)
redis.call('XADD', KEYS[3], revision .. '-1', 'entry', ARGV[2], 'epoch', epoch)
return {1, revision, epoch, previous}
"""


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One committed decision: what changed, who changed it, its revision in the fleet."""

    revision: int
    epoch: str
    kind: ChangeKind
    domain: str
    key: str
    tenant: str | None = None
    provider: str | None = None  # select: the provider, None = cleared
    state: str | None = None  # activity: "paused", "draining" or "active"
    note: str = ""
    actor: str = ""
    at: float = 0.0
    #: canary: the cohort whose per-instance selection this sets (provider) or removes
    #: (None); select: the cohort whose per-instance selections it also removes (promote)
    instances: tuple[str, ...] = ()

    def fields(self) -> list[str]:
        """The desired-state fields and values this change writes, flat ('' deletes)."""
        if self.kind == "activity":
            if self.state == "active":
                return [activity_field(self.domain, self.key), ""]
            return [activity_field(self.domain, self.key),
                    json.dumps({"state": self.state, "note": self.note, "actor": self.actor,
                                "at": self.at}, sort_keys=True)]
        flat: list[str] = []
        if self.kind == "select":
            flat += [selection_field(self.domain, self.key, self.tenant), self.provider or ""]
        value = (self.provider or "") if self.kind == "canary" else ""
        for instance in self.instances:
            flat += [canary_field(self.domain, self.key, self.tenant, instance), value]
        return flat

    def entry(self) -> str:
        """The log entry (revision and epoch are the stream's own fields)."""
        return json.dumps({"kind": self.kind, "domain": self.domain, "key": self.key,
                           "tenant": self.tenant, "provider": self.provider,
                           "state": self.state, "note": self.note, "actor": self.actor,
                           "at": self.at, "instances": list(self.instances)},
                          sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "epoch": self.epoch, **json.loads(self.entry())}


@dataclass(frozen=True, slots=True)
class FleetState:
    """The whole desired state at ``revision``: what a relisting instance applies.

    ``canaries`` maps (domain, key, tenant, instance) to the provider a canary
    selects for that one instance (it wins over ``selections`` there).
    """

    revision: int
    epoch: str | None
    selections: dict[tuple[str, str, str | None], str] = field(default_factory=dict)
    activity: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    canaries: dict[tuple[str, str, str | None, str], str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "epoch": self.epoch,
            "selections": [{"domain": d, "key": k, "tenant": t, "provider": p}
                           for (d, k, t), p in sorted(self.selections.items(),
                                                      key=lambda i: (i[0][0], i[0][1],
                                                                     i[0][2] or ""))],
            "activity": [{"domain": d, "key": k, **v}
                         for (d, k), v in sorted(self.activity.items())],
        }


def text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_desired(meta: dict[Any, Any], desired: dict[Any, Any]) -> FleetState:
    selections: dict[tuple[str, str, str | None], str] = {}
    activity: dict[tuple[str, str], dict[str, Any]] = {}
    canaries: dict[tuple[str, str, str | None, str], str] = {}
    for raw_field, raw_value in desired.items():
        kind, domain, key, tenant, instance = parse_field(text(raw_field))
        if kind == "s":
            selections[(domain, key, tenant)] = text(raw_value)
        elif kind == "c":
            canaries[(domain, key, tenant, instance or "")] = text(raw_value)
        else:
            activity[(domain, key)] = json.loads(text(raw_value))
    meta_text = {text(k): text(v) for k, v in meta.items()}
    return FleetState(int(meta_text.get("revision", "0")), meta_text.get("epoch"),
                      selections, activity, canaries)


def decode_entry(entry_id: Any, fields: dict[Any, Any]) -> LoggedChange:
    """A log stream entry as the ``LoggedChange`` it records."""
    values = {text(k): text(v) for k, v in fields.items()}
    body = json.loads(values["entry"])
    revision = int(text(entry_id).split("-", 1)[0])
    return LoggedChange(revision, values["epoch"], body["kind"], body["domain"], body["key"],
                        body.get("tenant"), body.get("provider"), body.get("state"),
                        body.get("note", ""), body.get("actor", ""),
                        float(body.get("at", 0.0)), tuple(body.get("instances") or ()))
