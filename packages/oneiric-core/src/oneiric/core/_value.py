"""What the core's value classes share beyond ``@dataclass(frozen=True, slots=True)``.

Each value class is a frozen, slotted dataclass: its fields are declared once,
and equality, hashing, ``repr`` and immutability derive from that declaration
(``dataclasses`` is already imported by ``import oneiric.core``, through the
standard library).  ``Value`` adds ``replace()`` that names an unknown field
and runs the class's own validation again, and ``@readable`` makes a refused
assignment say what to do instead.
"""

from __future__ import annotations

import dataclasses

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self, TypeVar

    _C = TypeVar("_C", bound=type)

__all__ = ["Value", "readable"]


class Value:
    """Base of the value classes: ``replace(**changes)``."""

    __slots__ = ()

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` applied (validated again by ``__init__``)."""
        names = {f.name for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]
        unknown = changes.keys() - names
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        replaced: Self = dataclasses.replace(self, **changes)  # type: ignore[type-var]
        return replaced


def _refuse_set(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")


def _refuse_delete(self: object, name: str) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


def readable(cls: _C) -> _C:
    """Apply over ``@dataclass(frozen=True, ...)``: assignment errors name ``replace()``.

    The dataclass's own ``__init__`` sets fields through ``object.__setattr__``,
    so only assignments from outside are refused.
    """
    type.__setattr__(cls, "__setattr__", _refuse_set)
    type.__setattr__(cls, "__delattr__", _refuse_delete)
    return cls
