"""The values hooks receive: ``ResolutionRequest`` (vetoes) and ``SwapTransition`` (swaps)."""

from __future__ import annotations

from dataclasses import dataclass

from ._value import Value, readable

__all__ = ["ResolutionRequest", "SwapTransition"]


@readable
@dataclass(frozen=True, slots=True)
class ResolutionRequest(Value):
    """What is being resolved when a veto hook is asked about a candidate."""

    domain: str
    key: str
    tenant: str | None = None
    require: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if type(self.require) is not tuple:  # any iterable of names, kept hashable
            object.__setattr__(self, "require", tuple(self.require))


@readable
@dataclass(frozen=True, slots=True)
class SwapTransition(Value):
    """What the lifecycle is about to bind (pre-swap) or has bound (post-swap).

    ``new_instance`` is whatever the provider's factory built: a component of
    any type, hence ``object``.
    """

    domain: str
    key: str
    tenant: str | None
    old_provider: str | None
    new_provider: str
    new_instance: object
    force: bool = False
    reason: str = ""
