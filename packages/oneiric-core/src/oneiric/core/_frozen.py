"""A minimal base for the core's frozen value classes.

Why not attrs or dataclasses: ``import oneiric.core`` must stay cheap for
serverless cold starts, and attrs (or dataclasses, through ``inspect``) cost
more to import than the whole rest of the core.  The value classes here are
few and small, so each writes its own ``__init__`` (explicit signatures for
type checkers) and inherits equality, hashing, ``repr`` and immutability from
this base, driven by the ``_fields`` tuple.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

__all__ = ["Frozen"]


class Frozen:
    """Immutable slotted value object; subclasses set ``__slots__`` and ``_fields``.

    Fields listed in ``_compare`` (default: all of ``_fields``) take part in
    equality and hashing.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _compare: tuple[str, ...] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _key(self) -> tuple[Any, ...]:
        names = self._compare if self._compare is not None else self._fields
        return tuple(getattr(self, n) for n in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        # positional order of _fields must match the constructor's positional order
        # for classes pickled this way; keyword-only fields go through _rebuild.
        return (_rebuild, (type(self), {n: getattr(self, n) for n in self._fields}))

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again by ``__init__``)."""
        values = {n: getattr(self, n) for n in self._fields}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        values.update(changes)
        return type(self)(**values)

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self._fields)


def _rebuild(cls: type[Frozen], values: dict[str, Any]) -> Frozen:
    return cls(**values)
