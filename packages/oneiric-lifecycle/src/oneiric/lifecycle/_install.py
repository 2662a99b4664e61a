"""The manager's install job: build a candidate and bind it to a slot.

Order, per key under the slot's lock: ``_swap.prepare`` (settings → build →
init → health → ``oneiric_pre_swap``; anything failing there leaves the old
binding untouched) → **bind** (two assignments, no await between them) →
``oneiric_post_swap`` (each implementation separately; failures recorded, never
raised) → retire the old binding.  Every outcome is recorded for status and
metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time

from oneiric.core import (
    Candidate,
    NotRegisteredError,
    OneiricError,
    SelectionUnavailableError,
    SwapError,
    SwapTransition,
    call_hook,
    get_logger,
    validate_name,
)
from oneiric.core.helpers import one_line
from oneiric.core.telemetry import active as telemetry_active
from oneiric.core.telemetry import counter, histogram, span

from ._component import maybe_await
from ._retire import RetireJob
from ._slot import Binding, Failure, Slot
from ._swap import Prepared, prepare

__all__ = ["InstallJob"]

_log = get_logger("oneiric.lifecycle.manager")
#: The stdlib logger under ``_log``: its level decides whether a record is kept
#: (structlog's first processor is ``filter_by_level``), so asking it first
#: spares building a record nobody keeps (~2 µs per swap).
_stdlib_log = logging.getLogger("oneiric.lifecycle.manager")


class InstallJob(RetireJob):
    """Choosing the candidate to build, and binding what ``prepare`` built."""

    def _choose(
        self, domain: str, key: str, provider: str | None, tenant: str | None
    ) -> Candidate:
        """The candidate to build: the resolver's winner, or the named provider."""
        if provider is None:
            return self.resolver.resolve(domain, key, tenant=tenant)
        name, _, origin_text = provider.partition("@")
        validate_name(name, "provider")
        if tenant is None and not origin_text:
            # The winner (a cache read) is the first of the ranking: eligible.
            try:
                winner: Candidate | None = self.resolver.resolve(domain, key)
            except OneiricError:
                winner = None
            if winner is not None and winner.provider == name:
                return winner
            # The global ranking is the candidates' precedence order (what
            # candidates() returns): one explain() finds the first candidate of
            # that provider and whether it is eligible.  Anything else (no
            # candidate, unavailable selection, ineligible) takes the path below,
            # which raises the same errors as before.
            try:
                ranking = self.resolver.explain(domain, key).ranking
            except OneiricError:
                ranking = ()
            for ranked in ranking:
                if ranked.candidate.provider == name:
                    if ranked.eligible:
                        return ranked.candidate
                    break
        candidates = self.resolver.candidates(domain, key)
        if not candidates:
            raise NotRegisteredError(domain, key, self.resolver.keys(domain))
        origin = tuple(origin_text.split(":", 1)) if origin_text else None
        matches = [
            c for c in candidates
            if c.provider == name and (origin is None or c.source.origin == origin)
        ]
        if not matches:
            raise SelectionUnavailableError(
                domain, key, provider, "not registered",
                [c.provider for c in candidates], tenant=tenant,
            )
        chosen = matches[0]
        try:  # the winner is eligible by definition: no need to rank
            if self.resolver.resolve(domain, key, tenant=tenant) is chosen:
                return chosen
        except OneiricError:
            pass
        try:
            ranking = self.resolver.explain(domain, key, tenant=tenant).ranking
        except SelectionUnavailableError:
            ranking = ()
        for ranked in ranking:
            if (ranked.candidate is chosen or ranked.candidate == chosen) and not ranked.eligible:
                raise SelectionUnavailableError(
                    domain, key, provider, ranked.reason,
                    [c.provider for c in candidates], tenant=tenant,
                )
        return chosen

    async def _install(
        self, slot: Slot, candidate: Candidate, *, force: bool, reason: str, manual: bool
    ) -> tuple[Binding, Prepared, float]:
        """Prepare ``candidate`` and bind it to ``slot`` (caller holds ``slot.lock``)."""
        old = slot.bound
        old_provider = old.provider if old is not None else None
        hooks = self._hooks if self._hooks is not None else self.resolver.hooks
        swap_hooks = self._swap_hooks_of(hooks)
        start = time.perf_counter()
        try:
            if telemetry_active():
                with span(
                    "oneiric.swap", domain=slot.domain, key=slot.key, tenant=slot.tenant,
                    provider=candidate.provider, old_provider=old_provider, reason=reason,
                    force=force,
                ):
                    prepared = await prepare(
                        candidate, settings_for=self._settings_for, config=self.config,
                        hooks=hooks, pre_swap=swap_hooks.pre, force=force, track=self._track,
                        tenant=slot.tenant, old_provider=old_provider, reason=reason,
                    )
            else:
                prepared = await prepare(
                    candidate, settings_for=self._settings_for, config=self.config,
                    hooks=hooks, pre_swap=swap_hooks.pre, force=force, track=self._track,
                    tenant=slot.tenant, old_provider=old_provider, reason=reason,
                )
        except BaseException as exc:
            duration = time.perf_counter() - start
            failure = self._record_failure(slot, candidate, exc, reason, manual)
            self._metrics(slot, duration, failure.kind)
            if isinstance(exc, SwapError) and exc.args:
                keeps = (
                    f"{old_provider!r} keeps serving" if old_provider else "nothing was bound"
                )
                exc.args = (f"{exc.args[0]}; {keeps}",)
                failure.error = str(exc)
            raise
        duration = time.perf_counter() - start
        now = self._clock()
        binding = Binding(prepared.instance, candidate, prepared.settings, now)
        # bind: two assignments, no await in between
        slot.bound = binding
        if slot.override is None:
            slot.handle.instance = binding.instance
        self._serve(slot)
        if slot.activation_seq == 0:
            self._seq += 1
            slot.activation_seq = self._seq
        if old is not None:
            slot.swaps += 1
        slot.latency.add(duration)
        if telemetry_active():
            self._metrics(slot, duration, "bound")
        slot.selection_seen = self._selection_of(slot)
        if prepared.health is not None:
            slot.last_health = (prepared.health, now)
        if manual:
            try:
                winner: Candidate | None = (
                    self.resolver.resolve(slot.domain, slot.key)
                    if slot.tenant is None
                    else self.resolver.resolve(slot.domain, slot.key, tenant=slot.tenant)
                )
            except OneiricError:
                winner = None
            # a winner of another provider differs: no need to compare every field
            differs = winner is not candidate and (
                winner is None or winner.provider != candidate.provider or winner != candidate
            )
            slot.manual = (candidate.provider, now) if differs else None
        else:
            slot.manual = None
        slot.sticky_since = None
        slot.auto_failure = None
        slot.deferred = None
        if _stdlib_log.isEnabledFor(logging.INFO):  # else the record is dropped anyway
            _log.info(
                "bound", domain=slot.domain, key=slot.key, tenant=slot.tenant,
                provider=candidate.provider, old_provider=old_provider, reason=reason,
                forced=force, duration_s=round(duration, 6),
            )
        try:
            if swap_hooks.post():  # none: no transition built
                await self._post_swap(
                    slot,
                    SwapTransition(
                        slot.domain, slot.key, slot.tenant, old_provider, candidate.provider,
                        binding.instance, force, reason,
                    ),
                )
        finally:
            if old is not None:
                self._retire(slot, old, self.config.grace_period)
            self._dirty()
        return binding, prepared, duration

    def _record_failure(
        self, slot: Slot, candidate: Candidate, exc: BaseException, reason: str, manual: bool
    ) -> Failure:
        if isinstance(exc, asyncio.CancelledError):
            kind, error_type, text = "cancelled", "CancelledError", "cancelled before bind"
        else:
            kind = type(exc).__name__
            error_type = str(getattr(exc, "error_type", kind))
            text = str(exc) or kind
        failure = Failure(
            at=self._clock(), provider=candidate.provider, kind=kind,
            error_type=error_type, error=text, reason=reason,
        )
        slot.failures.append(failure)
        slot.failure_count += 1
        if not manual:
            slot.auto_failure = failure
        _log.warning(
            "swap failed", domain=slot.domain, key=slot.key, tenant=slot.tenant,
            provider=candidate.provider, kind=kind, error_type=error_type, error=text,
            reason=reason,
        )
        self._dirty()
        return failure

    def _metrics(self, slot: Slot, duration: float, outcome: str) -> None:
        if not telemetry_active():  # no SDK provider installed: skip the instruments
            return
        attributes = {"domain": slot.domain, "key": slot.key, "outcome": outcome}
        histogram("oneiric.swap.duration", "Time from build to bind (or failure)").record(
            duration, attributes
        )
        counter("oneiric.swap.count", "Swaps and activations by outcome").add(1, attributes)

    async def _post_swap(self, slot: Slot, transition: SwapTransition) -> None:
        """Run each ``oneiric_post_swap`` separately; failures are recorded, never raised."""
        for result in call_hook(self.hooks, "oneiric_post_swap", transition=transition):
            error = result.error
            if error is None:
                try:
                    await maybe_await(result.value, self.config.post_swap_timeout)
                    continue
                except Exception as exc:
                    error = exc
            text = (
                f"post-swap hook {result.plugin} timed out"
                if isinstance(error, TimeoutError)
                else f"post-swap hook {result.plugin} raised {type(error).__name__}: "
                f"{one_line(error)}"
            )
            slot.post_swap_errors.append(text)
            _log.warning("post-swap hook failed", domain=slot.domain, key=slot.key, error=text)
