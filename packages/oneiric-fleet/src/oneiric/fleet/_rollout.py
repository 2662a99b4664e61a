"""Canary rollouts: a cohort swaps first, bakes, then the whole fleet - or it rolls back.

``oneiric swap D K P --canary 10% --bake 60s --wait`` (§12): the cohort is the
``max(1, ceil(p x N))`` live instances with the smallest
``sha256("<domain>.<key>:<target>:<instance id>")`` - stable, so a retried
rollout picks the same instances.  The cohort gets a per-instance selection
(a ``canary`` change); the bake starts once every cohort instance acknowledged
``swapped``; a ``health_failed`` acknowledgement, a lost cohort instance or an
unhealthy report during the bake rolls the cohort back (their per-instance
selections removed: they swap back to the fleet's choice), otherwise the
target is selected for the whole fleet (promotion, which also removes the
cohort's per-instance selections).  No instance outside the cohort is
touched before promotion.

The rollout's state lives in Redis (``<prefix>:rollout``), so ``oneiric fleet
rollout status|promote|abort`` work from any machine - after the controller
that started it died too.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oneiric.core import OneiricError

from ._codec import LoggedChange

if TYPE_CHECKING:
    from ._plane import RedisControlPlane

__all__ = ["Rollouts", "cohort_of"]

_ACTIVE = ("canary", "baking")


def cohort_of(domain: str, key: str, target: str, instances: list[str],
              percent: float) -> list[str]:
    """The ``max(1, ceil(p x N))`` instances with the smallest hash (§12)."""
    size = max(1, math.ceil(percent / 100 * len(instances)))

    def rank(instance: str) -> str:
        return hashlib.sha256(f"{domain}.{key}:{target}:{instance}".encode()).hexdigest()

    return sorted(instances, key=rank)[:size]


class Rollouts:
    """Start, follow, promote and abort the fleet's rollout (one at a time)."""

    def __init__(self, plane: RedisControlPlane, *,
                 sleep: Callable[[float], object] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.plane = plane
        self.admin = plane.admin
        self._sleep = sleep
        self._clock = clock

    # -------------------------------------------------------------- state

    def status(self) -> dict[str, Any] | None:
        """The current (or last) rollout, or None."""
        return self.admin.rollout()

    def _save(self, **fields: Any) -> None:
        self.admin.save_rollout(fields)

    def _active(self) -> dict[str, Any]:
        current = self.status()
        if current is None or current["state"] not in _ACTIVE:
            raise OneiricError("no rollout is in progress; start one with 'oneiric swap D K P "
                               "--canary N%'", category="not_found")
        return current

    # ------------------------------------------------------------ actions

    def start(self, domain: str, key: str, target: str, *, tenant: str | None,
              percent: float, bake: float, actor: str) -> dict[str, Any]:
        """Write the cohort's canary selections; the rollout is then ``canary``."""
        current = self.status()
        if current is not None and current["state"] in _ACTIVE:
            raise OneiricError(
                f"a rollout of {current['domain']}/{current['key']} to {current['target']} is "
                "in progress; 'oneiric fleet rollout promote' or 'abort' it first",
                category="refused")
        live = sorted(r["id"] for r in self.admin.instances() if not r["lost"])
        if not live:
            raise OneiricError("no live instance reports to this fleet; a canary needs "
                               "instances to run on", category="unavailable")
        cohort = cohort_of(domain, key, target, live, percent)
        change = self.admin.write(LoggedChange(
            0, "", "canary", domain, key, tenant=tenant, provider=target, actor=actor,
            note=f"canary {percent:g}%", instances=tuple(cohort)))
        rollout = {"domain": domain, "key": key, "tenant": tenant, "target": target,
                   "percent": percent, "bake": bake, "cohort": cohort, "state": "canary",
                   "revision": change.revision, "started_at": change.at, "actor": actor,
                   "bake_started_at": None, "detail": ""}
        self._save(**rollout)
        return rollout

    def promote(self, actor: str) -> dict[str, Any]:
        """Select the target for the whole fleet (ends the cohort's canary selections)."""
        current = self._active()
        change = self.admin.write(LoggedChange(
            0, "", "select", current["domain"], current["key"], tenant=current["tenant"],
            provider=current["target"], actor=actor, note="rollout promoted",
            instances=tuple(current["cohort"])))
        self._save(state="promoted", promoted_revision=change.revision)
        return {**current, "state": "promoted", "promoted_revision": change.revision}

    def abort(self, actor: str, reason: str = "aborted by an operator",
              state: str = "aborted") -> dict[str, Any]:
        """Remove the cohort's canary selections: they swap back to the fleet's choice."""
        current = self._active()
        change = self.admin.write(LoggedChange(
            0, "", "canary", current["domain"], current["key"], tenant=current["tenant"],
            provider=None, actor=actor, note=reason, instances=tuple(current["cohort"])))
        self._save(state=state, detail=reason, rollback_revision=change.revision)
        return {**current, "state": state, "detail": reason,
                "rollback_revision": change.revision}

    # ------------------------------------------------------ the controller

    def run(self, rollout: dict[str, Any], *, timeout: float, actor: str) -> dict[str, Any]:
        """Follow a started rollout to promotion or rollback (``--wait``); the final state."""
        cohort = list(rollout["cohort"])
        acks = self._await_acks(rollout["revision"], cohort, timeout)
        bad = {i: a for i, a in acks.items() if a["result"] != "swapped"}
        if bad:
            instance, ack = sorted(bad.items())[0]
            return self.abort(actor, f"cohort instance {instance}: {ack['result']}"
                              f"{' - ' + ack['detail'] if ack.get('detail') else ''}",
                              state="rolled_back")
        self._save(state="baking", bake_started_at=self._clock())
        deadline = time.monotonic() + float(rollout["bake"])
        while time.monotonic() < deadline:
            problem = self._cohort_problem(rollout)
            if problem is not None:
                return self.abort(actor, problem, state="rolled_back")
            self._sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.promote(actor)

    def _await_acks(self, revision: int, cohort: list[str],
                    timeout: float) -> dict[str, dict[str, Any]]:
        """Cohort acks of ``revision``; a lost or silent member counts as a failure."""
        deadline = time.monotonic() + timeout
        while True:
            acks = self.admin.acks(revision)
            lost = {r["id"] for r in self.admin.instances() if r["lost"]}
            missing = [i for i in cohort if i not in acks]
            if not missing or time.monotonic() >= deadline:
                break
            if any(i in lost for i in missing):
                break
            self._sleep(0.05)
        found = {i: acks[i] for i in cohort if i in acks}
        for instance in cohort:
            if instance not in found:
                found[instance] = {"result": "lost" if instance in lost else "pending",
                                   "detail": ""}
        return found

    def _cohort_problem(self, rollout: dict[str, Any]) -> str | None:
        """Why the bake fails now (a cohort instance lost, or the key unhealthy there)."""
        by_id = {r["id"]: r for r in self.admin.instances()}
        for instance in rollout["cohort"]:
            record = by_id.get(instance)
            if record is None or record["lost"]:
                return f"cohort instance {instance} was lost during the bake"
            for key in record.get("keys") or []:
                if (key["domain"], key["key"]) != (rollout["domain"], rollout["key"]):
                    continue
                health = key.get("last_health") or {}
                if health and not health.get("ok", True):
                    return (f"cohort instance {instance} reports {rollout['domain']}/"
                            f"{rollout['key']} unhealthy: {health.get('detail', '')}")
        return None
