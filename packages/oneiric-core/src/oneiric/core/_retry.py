"""``RetryPolicy``: the one retry type of actions, event handlers and workflow nodes.

It lives in core (not in oneiric-actions or oneiric-runtime) because every
package that retries user code must agree on what a policy means: a workflow
node that invokes an action, or an event handler that does, passes one object
through without translating it.  It is data only: *when* to wait and *which*
exceptions are worth another attempt; the loop that sleeps belongs to the
caller, which owns the clock (tests inject theirs).

Transient failures of oneiric-remote's own fetches are a different concern
(Retry-After headers, a circuit breaker) and keep their own ``SyncRetry``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ._errors import ConfigError

__all__ = ["RetryPolicy"]

_Exceptions = tuple[type[BaseException], ...]


def _exception_types(value: object, name: str) -> _Exceptions:
    """Exception classes as a tuple; ``"module:attr"`` strings are imported (settings files)."""
    items = (value,) if isinstance(value, type | str) else value
    if not isinstance(items, tuple | list):
        raise ConfigError(
            f"retry.{name} must be a tuple of exception classes, got {type(value).__name__}; "
            "pass e.g. (TimeoutError, ConnectionError) or [\"module:ExceptionClass\"]"
        )
    result: list[type[BaseException]] = []
    for item in items:
        if isinstance(item, str):
            from ._loading import import_reference

            try:
                item = import_reference(item, what=f"retry.{name}")
            except Exception as exc:  # FactoryError names the reference; keep one type
                raise ConfigError(str(exc)) from None
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(
                f"retry.{name} entry {item!r} is not an exception class; "
                "name classes such as TimeoutError or \"package.errors:Transient\""
            )
        result.append(item)
    return tuple(result)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, how long between them, and which failures deserve another.

    ``delays()`` yields ``max_attempts - 1`` waits: wait *i* (0-based) is
    ``min(initial * multiplier**i, max_interval)`` scaled by a uniform factor
    in ``[1 - jitter, 1]`` (jitter spreads a crowd of retries; it never makes
    a wait longer than the cap).  ``should_retry(exc)`` is true for an
    instance of ``retry_on`` that is not an instance of ``non_retryable``.

    Invalid values fail at construction with a ``ConfigError`` naming the
    field, so a policy that reaches a retry loop is always usable.
    """

    max_attempts: int = 3
    initial: float = 0.5
    multiplier: float = 2.0
    max_interval: float = 30.0
    jitter: float = 0.1
    retry_on: _Exceptions = (Exception,)
    non_retryable: _Exceptions = ()

    def __post_init__(self) -> None:
        def number(name: str, low: float, high: float | None = None) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ConfigError(f"retry.{name} must be a number, got {value!r}")
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                raise ConfigError(f"retry.{name} must be {bound}, got {value!r}")

        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError(
                f"retry.max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            )
        if self.max_attempts < 1:
            raise ConfigError(
                f"retry.max_attempts must be >= 1 (1 means no retry), got {self.max_attempts}"
            )
        number("initial", 0.0)
        number("multiplier", 1.0)
        number("max_interval", 0.0)
        number("jitter", 0.0, 1.0)
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on, "retry_on"))
        object.__setattr__(
            self, "non_retryable", _exception_types(self.non_retryable, "non_retryable")
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "retry") -> RetryPolicy:
        """Build from a settings or manifest table; unknown fields are a ``ConfigError``.

        Exception classes are given as ``"module:attr"`` strings there.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a table of RetryPolicy fields, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**dict(data))
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(
                where + text[len("retry"):] if text.startswith("retry") else text
            ) from None

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The waits before attempts 2..max_attempts, in seconds (``rng`` for tests)."""
        for i in range(self.max_attempts - 1):
            wait = min(self.initial * self.multiplier**i, self.max_interval)
            yield wait * (1.0 - self.jitter * rng())

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy."""
        return isinstance(exc, self.retry_on) and not isinstance(exc, self.non_retryable)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (exception classes as ``"module:qualname"``)."""

        def names(types: _Exceptions) -> list[str]:
            return [f"{t.__module__}:{t.__qualname__}" for t in types]

        return {
            "max_attempts": self.max_attempts,
            "initial": self.initial,
            "multiplier": self.multiplier,
            "max_interval": self.max_interval,
            "jitter": self.jitter,
            "retry_on": names(self.retry_on),
            "non_retryable": names(self.non_retryable),
        }
