"""``RedisControlPlane`` (provider ``redis``): the ``ControlPlane`` of a whole fleet.

Selected in the settings files (``[control.selections] plane = "redis"``) and
built once per process by oneiric-lifecycle's ``control_plane(...)``.  The
operator side (the CLI) writes through ``FleetAdmin`` - synchronous, one
atomic script per decision - and reads instances' status and acks; the
instance side (``attach``, entered by the ``Host``) is ``FleetAgent``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from oneiric.core import ConfigError, validate_name
from oneiric.core.helpers import refuse_control_domain, scrub_credentials
from oneiric.lifecycle import (
    ActivityRecord,
    Change,
    DesiredState,
    InstanceResult,
    Instances,
    PlaneDescription,
    default_actor,
)

from ._admin import FleetAdmin
from ._codec import LoggedChange
from ._errors import FleetUnavailable
from ._settings import RedisPlaneSettings

if TYPE_CHECKING:
    from oneiric.lifecycle import ActivityState, Host

__all__ = ["RedisControlPlane"]

_ACTIONS = {"paused": "pause", "draining": "drain", "active": "resume"}
#: The acknowledgement each kind of change succeeds with.
SUCCESS = {"select": "swapped", "clear": "swapped", "pause": "paused", "drain": "drained",
           "resume": "resumed"}


class RedisControlPlane:
    """Decisions in one Redis for every instance of a fleet; see docs/fleet.md."""

    provider = "redis"

    def __init__(
        self,
        settings: RedisPlaneSettings | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.settings = settings or RedisPlaneSettings()
        self._state_dir = state_dir
        self._clock = clock
        self._sleep = sleep
        self._admin: FleetAdmin | None = None

    @property
    def where(self) -> str:
        return f"{scrub_credentials(self.settings.url)} (fleet {self.settings.fleet!r})"

    @property
    def admin(self) -> FleetAdmin:
        """The operator connection, opened on first use (the sync client connects lazily)."""
        if self._admin is None:
            self._admin = FleetAdmin(self.settings.url, fleet=self.settings.fleet,
                                     history=self.settings.history, clock=self._clock)
        return self._admin

    # ------------------------------------------------------------- writes

    def select(
        self,
        domain: str,
        key: str,
        provider: str | None,
        *,
        tenant: str | None = None,
        actor: str | None = None,
        expect_revision: int | None = None,
    ) -> Change:
        """Select ``provider`` for every instance (``None`` clears the fleet's selection)."""
        refuse_control_domain(domain, f"oneiric swap {domain} {key}")
        validate_name(domain, "domain")
        validate_name(key, "key")
        if provider is not None:
            validate_name(provider, "provider")
        if tenant is not None:
            validate_name(tenant, "tenant")
        logged, previous = self.admin.write_with_previous(
            LoggedChange(0, "", "select", domain, key, tenant=tenant, provider=provider,
                         actor=actor or default_actor()),
            expect_revision=expect_revision)
        return Change(domain, key, tenant, "select" if provider is not None else "clear",
                      provider, previous, logged.revision, logged.actor, logged.at,
                      where=self.where)

    def set_activity(
        self,
        domain: str,
        key: str,
        state: ActivityState,
        *,
        note: str = "",
        actor: str | None = None,
        expect_revision: int | None = None,
    ) -> Change:
        """Write ``paused``, ``draining`` or ``active`` (resume) for every instance."""
        action = _ACTIONS[state]
        refuse_control_domain(domain, f"oneiric {action} {domain} {key}")
        validate_name(domain, "domain")
        validate_name(key, "key")
        logged, previous = self.admin.write_with_previous(
            LoggedChange(0, "", "activity", domain, key, state=state, note=note,
                         actor=actor or default_actor()),
            expect_revision=expect_revision)
        was = json.loads(previous)["state"] if previous else "active"
        return Change(domain, key, None, action, state, was, logged.revision,  # type: ignore[arg-type]
                      logged.actor, logged.at, note, self.where)

    # -------------------------------------------------------------- reads

    def desired(self) -> DesiredState:
        state = self.admin.desired()
        selections: dict[str, dict[str, str]] = {}
        tenants: dict[str, dict[str, dict[str, str]]] = {}
        for (domain, key, tenant), provider in state.selections.items():
            if tenant is None:
                selections.setdefault(domain, {})[key] = provider
            else:
                tenants.setdefault(domain, {}).setdefault(tenant, {})[key] = provider
        activity = {ref: ActivityRecord(ref[0], ref[1], value["state"], value.get("note", ""),
                                        value.get("actor", ""), value.get("at"))
                    for ref, value in state.activity.items()}
        return DesiredState(selections, tenants, activity, state.revision)

    def instances(self, *, include_lost: bool = False) -> Instances:
        """Every instance's last status; lost ones (status expired) only if asked."""
        docs = []
        for record in self.admin.instances():
            if record["lost"] and not include_lost:
                continue
            docs.append({**record, "alive": not record["lost"]})
        return Instances(tuple(docs))

    def describe(self) -> PlaneDescription:
        try:
            revision: int | None = self.admin.desired().revision
        except FleetUnavailable:
            return {"provider": self.provider, "state": "unreachable", "revision": None}
        return {"provider": self.provider, "state": "ok", "revision": revision}

    def wait(self, change: Change, *, timeout: float) -> tuple[InstanceResult, ...]:
        """Every instance live when the change committed, with its ack (or pending/lost).

        A lost instance (its status expired) is listed ``lost`` and never waited
        for; ``timeout`` seconds after the call, the rest are ``pending``.
        """
        assert change.revision is not None
        live = {r["id"] for r in self.admin.instances() if not r["lost"]}
        return self._wait_for(change.revision, live, timeout)

    def _wait_for(self, revision: int, live: set[str],
                  timeout: float) -> tuple[InstanceResult, ...]:
        deadline = time.monotonic() + timeout
        while True:
            acks = self.admin.acks(revision)
            lost = {r["id"] for r in self.admin.instances() if r["lost"]} & live
            waiting = live - set(acks) - lost
            if not waiting or time.monotonic() >= deadline:
                break
            self._sleep(0.05)
        results = [InstanceResult(i, acks[i]["result"], acks[i].get("detail", ""))
                   for i in sorted(live & set(acks))]
        results += [InstanceResult(i, "lost", "stopped reporting before it acknowledged")
                    for i in sorted(lost - set(acks))]
        results += [InstanceResult(i, "pending", f"no acknowledgement within {timeout:g}s")
                    for i in sorted(live - set(acks) - lost)]
        return tuple(results)

    def canary(
        self,
        domain: str,
        key: str,
        provider: str,
        *,
        tenant: str | None = None,
        percent: float,
        bake: float,
        wait: bool,
        timeout: float,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Start a canary rollout (``swap --canary``); with ``wait``, follow it to promotion
        or rollback and wait for the fleet's acknowledgements of a promotion.

        Returns the rollout record, plus ``instances`` (each instance's result) when
        waited; ``state`` is ``canary`` (not waited), ``promoted`` or ``rolled_back``.
        """
        from ._rollout import Rollouts

        refuse_control_domain(domain, f"oneiric swap {domain} {key}")
        validate_name(provider, "provider")
        if not 0 < percent <= 100:
            raise ConfigError(f"--canary must be a percentage in (0, 100], got {percent:g}")
        who = actor or default_actor()
        rollouts = Rollouts(self, sleep=self._sleep)
        started = rollouts.start(domain, key, provider, tenant=tenant, percent=percent,
                                 bake=bake, actor=who)
        if not wait:
            return started
        final = rollouts.run(started, timeout=timeout, actor=who)
        revision = final.get("promoted_revision") or final.get("rollback_revision") or 0
        cohort = set(final["cohort"])
        live = {r["id"] for r in self.admin.instances() if not r["lost"]}
        waited = live if final["state"] == "promoted" else cohort
        results = self._wait_for(int(revision), waited, timeout)
        return {**final, "instances": [{"instance": r.instance, "result": r.result,
                                        "detail": r.detail} for r in results]}

    # ----------------------------------------------------------- instance

    def attach(self, host: Host) -> AbstractAsyncContextManager[object]:
        """Follow the fleet while the host runs: apply, acknowledge, publish status."""
        from ._agent import FleetAgent

        return FleetAgent(self.settings, host)

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()

    def __repr__(self) -> str:
        return f"<RedisControlPlane {self.where}>"
