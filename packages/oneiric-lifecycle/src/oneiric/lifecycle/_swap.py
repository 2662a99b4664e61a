"""Preparing a new instance: settings → build → init → health → pre-swap hooks.

Everything before *bind* lives here, with one rule: whatever this module
built, it cleans up if any later step fails or the task is cancelled, and it
never touches the instance that is currently bound.  Failures come out as the
``SwapError`` subclass that names the step; ``error_type`` on the exception
keeps the underlying cause (e.g. ``FactoryError``) for status, and an
``ActivationError`` caused by wrong configuration or code (``ConfigError``,
``FactoryError``, pydantic's ``ValidationError``, ``ImportError``) carries
``category = "invalid"``, so the exit code follows from the error alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oneiric.core import (
    ActivationError,
    Candidate,
    ConfigError,
    FactoryError,
    HealthCheckFailed,
    SwapError,
    SwapTimeout,
    SwapTransition,
    SwapVetoed,
    get_logger,
    resolve_factory,
)
from oneiric.core.helpers import one_line

from ._component import (
    HealthReport,
    Unfinished,
    call_optional,
    maybe_await,
    start,
    to_health,
)
from ._config import LifecycleConfig

if TYPE_CHECKING:
    import pluggy

__all__ = ["Prepared", "SwapResult", "cleanup_instance", "prepare", "swap_result"]

_log = get_logger("oneiric.lifecycle.swap")


class Prepared:
    """A new instance that passed every check and may be bound."""

    __slots__ = ("health", "instance", "settings")

    def __init__(self, instance: object, settings: object, health: HealthReport | None) -> None:
        self.instance = instance
        self.settings = settings
        self.health = health


@dataclass(frozen=True, slots=True)
class SwapResult:
    """What ``LifecycleManager.swap`` bound (it returns once the new instance is bound)."""

    domain: str
    key: str
    tenant: str | None
    old_provider: str | None
    new_provider: str
    forced: bool
    health: HealthReport | None
    duration_s: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``health`` as its own dict)."""
        return dataclasses.asdict(self)


# The frozen dataclass's own __init__ sets each field with ``object.__setattr__``
# (~1 us for nine); the slots' descriptors set them at half that, with the same
# result: ``swap_result(...) == SwapResult(...)``, just as immutable.
_SWAP_RESULT_SLOTS = tuple(
    getattr(SwapResult, field.name).__set__ for field in dataclasses.fields(SwapResult)
)


def swap_result(
    domain: str,
    key: str,
    tenant: str | None,
    old_provider: str | None,
    new_provider: str,
    forced: bool,
    health: HealthReport | None,
    duration_s: float,
    reason: str,
) -> SwapResult:
    """``SwapResult(...)`` built without the frozen dataclass's per-field ``__setattr__`` calls."""
    result = object.__new__(SwapResult)
    s_domain, s_key, s_tenant, s_old, s_new, s_forced, s_health, s_duration, s_reason = (
        _SWAP_RESULT_SLOTS
    )
    s_domain(result, domain)
    s_key(result, key)
    s_tenant(result, tenant)
    s_old(result, old_provider)
    s_new(result, new_provider)
    s_forced(result, forced)
    s_health(result, health)
    s_duration(result, duration_s)
    s_reason(result, reason)
    return result


def _wrong_input(cause: BaseException | None) -> bool:
    """Whether ``cause`` says the configuration or code is wrong (not a passing outage)."""
    if isinstance(cause, (ConfigError, FactoryError, ImportError)):
        return True
    pydantic = sys.modules.get("pydantic")  # no pydantic loaded: no ValidationError exists
    return pydantic is not None and isinstance(cause, pydantic.ValidationError)


def _fail(cls: type[SwapError], message: str, cause: BaseException | None) -> SwapError:
    error = cls(message)
    error.error_type = type(cause).__name__ if cause is not None else cls.__name__  # type: ignore[attr-defined]
    if cls is ActivationError and _wrong_input(cause):
        error.category = "invalid"
    return error


async def cleanup_instance(instance: object, name: str, timeout: float) -> str | None:
    """Run ``instance.cleanup()``; return an error text instead of raising."""
    try:
        await call_optional(instance, "cleanup", timeout)
    except TimeoutError:
        text = f"cleanup() of {name} did not finish within {timeout:g} s"
    except Exception as exc:
        text = f"cleanup() of {name} raised {type(exc).__name__}: {one_line(exc)}"
    else:
        return None
    _log.warning("cleanup failed", component=name, error=text)
    return text


#: ``value`` of a component without ``health()`` (no report).
_ABSENT = object()


def _name(candidate: Candidate) -> str:
    return f"{candidate.domain}/{candidate.key}/{candidate.provider}"


async def prepare(
    candidate: Candidate,
    *,
    settings_for: Callable[[Candidate], object],
    config: LifecycleConfig,
    hooks: pluggy.PluginManager,
    pre_swap: Callable[[], bool],
    force: bool,
    track: Callable[[asyncio.Task[Any]], None],
    tenant: str | None,
    old_provider: str | None,
    reason: str,
) -> Prepared:
    """Build and check an instance of ``candidate``; clean it up on any failure.

    ``settings_for(candidate)`` returns the validated settings (asked only
    when the candidate has a settings model); ``pre_swap()`` says whether any
    ``oneiric_pre_swap`` implementation is registered (asked once health
    passed; none: no ``SwapTransition`` is built, no hook call made); ``track``
    registers a background cleanup task so ``shutdown()`` can wait for it.
    ``tenant``, ``old_provider`` and ``reason`` describe the swap to the hooks.
    """
    try:
        settings = settings_for(candidate) if candidate.settings_model is not None else None
    except (ConfigError, FactoryError) as exc:
        raise _fail(
            ActivationError, f"invalid settings for {_name(candidate)}: {exc}", exc
        ) from exc
    factory = candidate.factory
    if type(factory) is str or not callable(factory):  # a reference to import (or wrong)
        try:
            factory = resolve_factory(candidate)
        except FactoryError as exc:
            raise _fail(ActivationError, f"cannot build {_name(candidate)}: {exc}", exc) from exc

    built = False
    instance: object = None
    try:
        try:
            result = factory(settings) if candidate.settings_model is not None else factory()
            instance = start(result, config.build_timeout)
            if type(instance) is Unfinished:
                instance = await instance
        except TimeoutError as exc:
            raise _fail(
                SwapTimeout,
                f"factory of {_name(candidate)} did not finish within "
                f"{config.build_timeout:g} s (build_timeout)",
                exc,
            ) from exc
        except Exception as exc:
            raise _fail(
                ActivationError,
                f"factory of {_name(candidate)} raised {type(exc).__name__}: {one_line(exc)}",
                exc,
            ) from exc
        built = True

        try:
            init = getattr(instance, "init", None)
            if init is not None and callable(init):
                done = start(init(), config.init_timeout)
                if type(done) is Unfinished:
                    await done
        except TimeoutError as exc:
            raise _fail(
                SwapTimeout,
                f"init() of {_name(candidate)} did not finish within "
                f"{config.init_timeout:g} s (init_timeout)",
                exc,
            ) from exc
        except Exception as exc:
            raise _fail(
                ActivationError,
                f"init() of {_name(candidate)} raised {type(exc).__name__}: {one_line(exc)}",
                exc,
            ) from exc

        health: HealthReport | None = None
        value: Any = _ABSENT
        try:  # the healthy case inline; a failure is judged by _unhealthy
            check = getattr(instance, "health", None)
            if check is not None and callable(check):
                value = start(check(), config.health_timeout)
                if type(value) is Unfinished:
                    value = await value
        except Exception as exc:
            health = _unhealthy(None, exc, candidate, config, force)
        else:
            if value is not _ABSENT:
                health = to_health(value)
                if not health.ok:
                    health = _unhealthy(health, None, candidate, config, force)
        if pre_swap():
            await _pre_swap(
                hooks,
                lambda: SwapTransition(
                    candidate.domain, candidate.key, tenant, old_provider, candidate.provider,
                    instance, force, reason,
                ),
                _name(candidate),
                config,
            )
        return Prepared(instance, settings, health)
    except BaseException:
        if built:
            # Shielded: a cancelled swap must still release what it built.
            task = asyncio.ensure_future(
                cleanup_instance(instance, _name(candidate), config.cleanup_timeout)
            )
            track(task)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                pass
        raise


def _unhealthy(
    report: HealthReport | None,
    exc: Exception | None,
    candidate: Candidate,
    config: LifecycleConfig,
    force: bool,
) -> HealthReport:
    """A failed health check: its report when ``force`` (which binds anyway), else raise.

    ``report`` is what a completed ``health()`` returned (not ok); ``exc`` what
    it raised instead (``TimeoutError``: it did not finish in time).
    """
    name = _name(candidate)
    error: SwapError
    if isinstance(exc, TimeoutError):
        report = HealthReport(False, f"health() timed out after {config.health_timeout:g} s")
        error = _fail(
            SwapTimeout,
            f"health() of {name} did not finish within {config.health_timeout:g} s "
            "(health_timeout)",
            exc,
        )
    elif exc is not None:
        report = HealthReport(False, f"health() raised {type(exc).__name__}: {one_line(exc)}")
        error = _fail(HealthCheckFailed, f"health check of {name} failed: {report.detail}", exc)
    else:
        assert report is not None
        error = _fail(
            HealthCheckFailed,
            f"health check of {name} failed: {report.detail or 'not ok'}",
            None,
        )
    if force:
        _log.warning("binding unhealthy instance (force)", component=name, detail=report.detail)
        return report
    raise error


async def _pre_swap(
    hooks: pluggy.PluginManager,
    transition: Callable[[], SwapTransition],
    name: str,
    config: LifecycleConfig,
) -> None:
    """Run ``oneiric_pre_swap``; any exception is a refusal (fail closed).

    With no implementation registered (the common case) neither the
    ``SwapTransition`` nor pluggy's call is made.
    """
    results: list[object] = []
    try:
        caller = hooks.hook.oneiric_pre_swap
        if not caller.get_hookimpls():
            return
        results = list(caller(transition=transition()))
        while results:
            await maybe_await(results.pop(0), config.pre_swap_timeout)
    except SwapVetoed as exc:
        error = _fail(
            SwapVetoed, f"swap to {name} vetoed by a pre-swap hook: {one_line(exc)}", exc
        )
        error.reason = one_line(exc)  # type: ignore[attr-defined]
        raise error from exc
    except TimeoutError as exc:
        raise _fail(
            SwapTimeout,
            f"a pre-swap hook for {name} did not answer within {config.pre_swap_timeout:g} s "
            "(pre_swap_timeout)",
            exc,
        ) from exc
    except Exception as exc:
        raise _fail(
            SwapVetoed,
            f"a pre-swap hook for {name} raised {type(exc).__name__}: {one_line(exc)} "
            "(treated as a veto)",
            exc,
        ) from exc
    finally:
        for pending in results:  # never leave a hook's coroutine un-awaited
            close = getattr(pending, "close", None)
            if close is not None:
                close()
