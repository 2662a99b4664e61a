"""``Actions``: invoke an action by key, with validation, timeout, retry, a lease and telemetry.

Actions are components of domain ``action``, so the lifecycle already gives
them activation, swap, pause/drain and tenants; this module adds only what
*calling* one needs.  The order of one invocation:

1. take a lease on the bound provider (activating the key on first use); a
   paused or draining key refuses here, before any work, and is not retried;
2. validate the payload against the provider's ``spec.input_model``;
3. call ``invoke(payload, context)`` under the attempt's timeout (a sync
   ``invoke`` runs inline, or in a worker thread with ``spec.blocking``);
4. check the value is JSON-compatible and fits ``spec.output_model``;
5. release the lease, so a swap waiting to clean the old provider can.

One lease per attempt (not per invocation): a swap during a retry's wait
is not held up by it, and the retry runs on the newly bound provider; the
result names the provider that produced the value.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from oneiric.core import (
    ComponentDraining,
    ComponentPaused,
    ConfigError,
    NotActiveError,
    OneiricError,
    RetryPolicy,
)
from oneiric.core.helpers import Suspended, one_line, run_eagerly, uuid4_text
from oneiric.core.telemetry import active as telemetry_active
from oneiric.core.telemetry import counter, histogram, span
from oneiric.lifecycle import DomainBridge, Lease, LifecycleManager

from ._catalog import DOMAIN
from ._errors import (
    ActionError,
    ActionFailed,
    ActionInputError,
    ActionOutputError,
    ActionTimeout,
)
from ._json import find_non_json
from ._spec import DEFAULT_SPEC, ActionContext, ActionResult, ActionSpec

__all__ = ["ActionInfo", "Actions", "current_lifecycle"]

#: The lifecycle of the ``Actions.invoke`` running in this context (see ``current_lifecycle``).
_LIFECYCLE: contextvars.ContextVar[LifecycleManager] = contextvars.ContextVar(
    "oneiric_actions_lifecycle"
)


def current_lifecycle() -> LifecycleManager:
    """The ``LifecycleManager`` whose ``Actions.invoke`` is running this call.

    An action instance is built with its settings only, and ``ActionContext``
    names no lifecycle; a kit that reaches other components of the same
    application (``event.dispatch`` its dispatcher, ``workflow.orchestrate``
    its engine) reads it here.  ``LookupError`` outside an invocation.
    """
    try:
        return _LIFECYCLE.get()
    except LookupError:
        raise LookupError(
            "no action invocation is running here; call the action through "
            "Actions(lifecycle).invoke(...)"
        ) from None

#: Result types that are never awaitable (skips ``inspect.isawaitable`` on the hot path).
_PLAIN = frozenset({dict, list, str, int, float, bool, type(None), bytes, tuple})
#: Errors that say the call cannot run at all: raised at once, never retried.
_NOT_RETRIED = (ActionInputError, ActionOutputError, ComponentPaused, ComponentDraining)


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """One action key as ``oneiric action list`` shows it."""

    key: str
    providers: tuple[str, ...]
    winner: str | None
    spec: ActionSpec | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "providers": list(self.providers),
            "winner": self.winner,
            "spec": self.spec.as_dict() if self.spec is not None else None,
            "error": self.error,
        }


def _spec_of(instance: object) -> ActionSpec:
    spec = getattr(instance, "spec", DEFAULT_SPEC)
    if not isinstance(spec, ActionSpec):
        raise ActionError(
            f"action {type(instance).__qualname__} has a spec of type {type(spec).__name__}; "
            "declare spec = ActionSpec(...) on the class"
        )
    return spec


def _validation_path(exc: Any) -> tuple[str, str]:
    """(field path, message) of a pydantic ``ValidationError``'s first error."""
    first = exc.errors()[0]
    path = ""
    for part in first.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<payload>", one_line(str(first.get("msg", "invalid")))


class Actions:
    """Invoke actions by key through a ``LifecycleManager`` (``Actions(host.lifecycle)``).

    ``sleep`` and ``rng`` are the retry loop's clock and jitter source, for
    tests that must not wait.
    """

    __slots__ = ("_bridge", "_rng", "_sleep", "lifecycle")

    def __init__(
        self,
        lifecycle: LifecycleManager,
        *,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.lifecycle = lifecycle
        self._bridge: DomainBridge[Any] = DomainBridge(DOMAIN, lifecycle)
        self._sleep = sleep or asyncio.sleep
        self._rng = rng

    # ------------------------------------------------------------------ invoke

    async def invoke(
        self,
        key: str,
        payload: Any,
        *,
        tenant: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        idempotency_key: str | None = None,
        run_id: str | None = None,
        node_id: str | None = None,
    ) -> ActionResult:
        """Run action ``key`` on ``payload`` and return its ``ActionResult``.

        ``timeout`` (seconds per attempt) overrides the spec's; ``retry`` is
        the caller's explicit policy, the only way a non-idempotent action
        with side effects is retried.  ``idempotency_key`` defaults to
        ``run_id/node_id`` when both are given, else a new UUID; every
        attempt sees the same one.
        """
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError(
                f"retry must be a RetryPolicy, got {type(retry).__name__}; "
                "pass oneiric.core.RetryPolicy(...)"
            )
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if idempotency_key is None:
            idempotency_key = (
                f"{run_id}/{node_id}" if run_id is not None and node_id is not None
                else uuid4_text()
            )
        started = time.perf_counter()
        if not telemetry_active():  # no SDK provider installed: no span, no metrics
            return await self._attempts(
                key, payload, tenant, timeout, retry, idempotency_key, run_id, node_id, started
            )
        with span("oneiric.action.invoke", key=key, tenant=tenant,
                  idempotency_key=idempotency_key) as current:
            outcome = "error"
            try:
                result = await self._attempts(
                    key, payload, tenant, timeout, retry, idempotency_key, run_id, node_id,
                    started,
                )
                outcome = "ok"
                if current is not None and hasattr(current, "set_attribute"):
                    current.set_attribute("oneiric.provider", result.provider or "")
                    current.set_attribute("oneiric.attempts", result.attempts)
                return result
            except ActionTimeout:
                outcome = "timeout"
                raise
            except ActionInputError:
                outcome = "invalid"
                raise
            finally:
                self._metrics(key, outcome, time.perf_counter() - started)

    async def _attempts(
        self,
        key: str,
        payload: Any,
        tenant: str | None,
        timeout: float | None,
        retry: RetryPolicy | None,
        idempotency_key: str,
        run_id: str | None,
        node_id: str | None,
        started: float,
    ) -> ActionResult:
        token = _LIFECYCLE.set(self.lifecycle)  # current_lifecycle() for kits that need it
        try:
            attempt = 0
            policy: RetryPolicy | None = None
            waits: list[float] | None = None
            while True:
                attempt += 1
                # activation, not-registered, paused and draining raise here: never retried
                lease: Lease[Any] = Lease(self.lifecycle, DOMAIN, key, tenant)
                try:
                    instance = lease.__enter__()
                except NotActiveError:
                    await self.lifecycle.activate(DOMAIN, key, tenant=tenant)
                    instance = lease.__enter__()
                try:
                    spec = _spec_of(instance)
                    if waits is None:  # the first attempt fixes the policy for the invocation
                        policy = retry if retry is not None else spec.retry
                        waits = list(policy.delays(self._rng)) if policy is not None else []
                    limit = timeout if timeout is not None else spec.timeout
                    context = ActionContext(
                        key, lease.provider, attempt,
                        time.monotonic() + limit if limit is not None else float("inf"),
                        idempotency_key, run_id, node_id, tenant,
                    )
                    value = self._start(instance, spec, payload, context)
                    if type(value) is Suspended:
                        value = await self._finish(value.rest, context, limit)
                    value = self._check_output(spec, value, context)
                    return ActionResult(
                        key, context.provider, value, attempt, time.perf_counter() - started
                    )
                except _NOT_RETRIED:
                    raise
                except Exception as exc:
                    if policy is None or waits is None or attempt > len(waits) or not (
                        policy.should_retry(exc)
                    ):
                        if isinstance(exc, OneiricError):
                            raise  # typed (a timeout, a provider's own error): keep its category
                        raise ActionFailed(
                            f"action {key!r} (provider {lease.provider!r}) raised after "
                            f"{attempt} attempt{'s' if attempt > 1 else ''}: "
                            f"{type(exc).__name__}: {one_line(exc)}",
                            cause=exc, attempts=attempt,
                        ) from exc
                    wait = waits[attempt - 1]
                finally:
                    lease.__exit__()
                await self._sleep(wait)
        finally:
            _LIFECYCLE.reset(token)

    def _start(
        self, instance: Any, spec: ActionSpec, payload: Any, context: ActionContext
    ) -> Any:
        """Validate, call and run the action up to its first suspension.

        Returns the value, or a ``Suspended`` holding what is left to await:
        an action that completes without suspending needs no timer (arming one
        costs more than many actions do).
        """
        if spec.input_model is not None:
            payload = self._validate_input(spec, payload, context.key)
        invoke = instance.invoke
        if spec.blocking:
            return Suspended(asyncio.to_thread(invoke, payload, context))
        value = run_eagerly(invoke(payload, context))
        kind = type(value)
        if kind is Suspended or kind in _PLAIN:  # the common cases, without an ABC check
            return value
        return Suspended(value) if inspect.isawaitable(value) else value

    @staticmethod
    async def _finish(pending: Awaitable[Any], context: ActionContext, limit: float | None) -> Any:
        """Await a suspended action under the attempt's deadline (``ActionTimeout`` past it)."""
        if limit is None:
            return await pending
        deadline = asyncio.timeout_at(
            asyncio.get_running_loop().time() + max(0.0, context.remaining())
        )
        try:
            async with deadline:
                return await pending
        except TimeoutError:
            if not deadline.expired():
                raise  # the action's own TimeoutError: a failure like any other
            raise ActionTimeout(
                f"action {context.key!r} (provider {context.provider!r}) did not finish "
                f"within {limit:g}s (attempt {context.attempt}); raise the timeout "
                "or check the provider"
            ) from None

    @staticmethod
    def _validate_input(spec: ActionSpec, payload: Any, key: str) -> Any:
        from pydantic import ValidationError

        model = spec.model("input")
        assert model is not None
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            path, msg = _validation_path(exc)
            raise ActionInputError(
                f"action {key!r}: payload field {path}: {msg}; fix the payload", path=path
            ) from None

    @staticmethod
    def _check_output(spec: ActionSpec, value: Any, context: ActionContext) -> Any:
        model = spec.model("output") if spec.output_model is not None else None
        if model is not None:
            from pydantic import ValidationError

            if isinstance(value, model):
                value = value.model_dump(mode="python")
            else:
                try:
                    value = model.model_validate(value).model_dump(mode="python")
                except ValidationError as exc:
                    path, msg = _validation_path(exc)
                    raise ActionOutputError(
                        f"action {context.key!r} (provider {context.provider!r}) returned an "
                        f"invalid value at {path}: {msg}; fix the provider", path=path
                    ) from None
        bad = find_non_json(value)
        if bad is not None:
            raise ActionOutputError(
                f"action {context.key!r} (provider {context.provider!r}) returned a value that "
                f"JSON cannot carry at {bad}; return dicts, lists, str, numbers, bool, None "
                "or bytes",
                path=bad,
            )
        return value

    @staticmethod
    def _metrics(key: str, outcome: str, duration: float) -> None:
        attributes = {"key": key, "outcome": outcome}
        counter("oneiric.action.invocations", "Action invocations by outcome").add(1, attributes)
        histogram("oneiric.action.duration", "Invocation time incl. retries").record(
            duration, attributes
        )

    # ----------------------------------------------------------------- listing

    def spec(self, key: str, *, tenant: str | None = None) -> ActionSpec:
        """The spec of the provider that serves ``key`` (bound one if active, else the winner).

        The winner's factory is imported (not called): a provider module
        imports its third-party library only when it is built.
        """
        try:
            return _spec_of(self._bridge.handle(key, tenant=tenant).instance)
        except NotActiveError:
            pass
        from oneiric.core import resolve_factory

        candidate = self.lifecycle.resolver.resolve(DOMAIN, key, tenant=tenant)
        return _spec_of(resolve_factory(candidate))

    def list(self) -> list[ActionInfo]:
        """Every registered action key: providers, the winner and its spec (sorted by key)."""
        resolver = self.lifecycle.resolver
        infos: list[ActionInfo] = []
        for key in sorted(resolver.keys(DOMAIN)):
            providers = tuple(c.provider for c in resolver.candidates(DOMAIN, key))
            try:
                winner: str | None = resolver.resolve(DOMAIN, key).provider
                spec: ActionSpec | None = self.spec(key)
                error = None
            except OneiricError as exc:
                winner, spec, error = None, None, one_line(exc)
            infos.append(ActionInfo(key, providers, winner, spec, error))
        return infos
