"""The value classes of the action protocol: ``ActionSpec``, ``ActionContext``, ``ActionResult``.

Frozen and slotted like every value class of Oneiric: a spec is declared once
on a provider class and shared by every call; a context is built per attempt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from oneiric.core import ConfigError, RetryPolicy

from ._json import to_json

__all__ = ["ActionContext", "ActionResult", "ActionSpec", "resolve_model"]


def resolve_model(model: object, what: str) -> type[Any] | None:
    """A pydantic model class from a class or a ``"module:attr"`` string (``None`` stays)."""
    if model is None:
        return None
    if isinstance(model, str):
        from oneiric.core import import_reference

        try:
            model = import_reference(model, what=what)
        except Exception as exc:  # FactoryError names the reference
            raise ConfigError(str(exc)) from None
    if not isinstance(model, type) or not callable(getattr(model, "model_validate", None)):
        raise ConfigError(
            f"{what} is {model!r}, not a pydantic model class; "
            "give a BaseModel subclass or a \"module:Model\" string"
        )
    return model


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What an action declares about itself (class attribute ``spec`` of a provider).

    ``idempotent``/``side_effects`` decide whether a retry is safe: an action
    that is not idempotent and has side effects is never retried unless the
    caller passes a policy, so declaring ``retry`` on such a spec is refused
    here rather than ignored later.  ``timeout`` is seconds per attempt
    (``None``: no limit).  ``input_model``/``output_model`` are pydantic
    classes or ``"module:attr"`` strings, imported on first use.
    ``blocking=True`` runs a sync ``invoke`` in a worker thread.
    """

    description: str = ""
    idempotent: bool = False
    side_effects: bool = True
    timeout: float | None = 30.0
    retry: RetryPolicy | None = None
    input_model: object = None
    output_model: object = None
    blocking: bool = False
    _models: dict[str, type[Any] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not timeout > 0
            or math.isinf(timeout)
        ):
            raise ConfigError(
                f"ActionSpec.timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            raise ConfigError(
                f"ActionSpec.retry must be a RetryPolicy or None, got {type(self.retry).__name__}"
            )
        if self.retry is not None and not self.idempotent and self.side_effects:
            raise ConfigError(
                "ActionSpec declares retry but is neither idempotent nor free of side effects; "
                "declare idempotent=True (or side_effects=False), or leave retries to the caller"
            )

    @property
    def retry_safe(self) -> bool:
        """True when retrying without the caller's consent is safe."""
        return self.idempotent or not self.side_effects

    def model(self, which: str) -> type[Any] | None:
        """The resolved ``input`` or ``output`` model (imported once, then cached)."""
        models = self._models
        if which not in models:
            raw = self.input_model if which == "input" else self.output_model
            models[which] = resolve_model(raw, f"ActionSpec.{which}_model")
        return models[which]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``oneiric action list --json``."""

        def name(model: object) -> str | None:
            if model is None or isinstance(model, str):
                return model
            return f"{getattr(model, '__module__', '?')}:{getattr(model, '__qualname__', model)}"

        return {
            "description": self.description,
            "idempotent": self.idempotent,
            "side_effects": self.side_effects,
            "timeout": self.timeout,
            "retry": self.retry.as_dict() if self.retry else None,
            "input_model": name(self.input_model),
            "output_model": name(self.output_model),
            "blocking": self.blocking,
        }


#: The spec of an action that declares none.
DEFAULT_SPEC = ActionSpec()


class ActionContext(NamedTuple):
    """Per attempt: which action and provider run, the attempt number and its deadline.

    ``deadline`` is on ``time.monotonic()`` (``math.inf`` without a timeout);
    ``idempotency_key`` is the same for every attempt of one invocation, so a
    provider can pass it on (``http.fetch`` sends it as ``Idempotency-Key``).

    A ``NamedTuple``, not a frozen dataclass like the other value classes:
    one is built per attempt and a frozen dataclass's ``__init__`` cost three
    times as much (0.87 vs 0.27 µs), a tenth of what ``invoke`` adds.
    """

    key: str
    provider: str | None
    attempt: int
    deadline: float
    idempotency_key: str
    run_id: str | None = None
    node_id: str | None = None
    tenant: str | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


class ActionResult(NamedTuple):
    """What ``Actions.invoke`` returns: the value and which provider produced it.

    A ``NamedTuple`` for the same reason as ``ActionContext`` (one per call).
    """

    key: str
    provider: str | None
    value: Any
    attempts: int
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (bytes as ``{"base64": ...}``), for the CLI and logs."""
        return {
            "key": self.key,
            "provider": self.provider,
            "value": to_json(self.value),
            "attempts": self.attempts,
            "duration_s": self.duration_s,
        }
