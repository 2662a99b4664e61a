"""Listings kept as indexes: the sorted keys of each domain, and the active winners.

``Resolver.keys()`` sorted every key of the domain on every call (2.2 s at a
million keys).  The index is built by one sort on the first listing of a
domain; after that, writers only note which keys were added or removed, and
the next listing patches the sorted list with a binary search per noted key
(a handful of insertions is a memmove each) or sorts again when so many keys
changed that one sort is cheaper.  The tuple handed out is cached until the
next change, so repeated listings cost nothing.  Domains never listed cost
nothing either: writers note changes only for domains that have an index.

Not thread-safe on its own: the resolver calls it with its fill lock held.
The active winners (``ActiveLayers``/``ActiveView``, below) are kept the same way.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping
from typing import Any

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._candidate import Candidate

KeyRef = tuple[str, str]

__all__ = ["ActiveLayers", "ActiveView", "KeyIndex"]

#: Re-sort instead of patching when more than 1/16 of the keys changed.
_RESORT_FRACTION = 16


class KeyIndex:
    """Sorted keys per domain, built on first listing and patched by the writes since."""

    __slots__ = ("_pending", "_sorted", "_tuples")

    def __init__(self) -> None:
        self._sorted: dict[str, list[str]] = {}
        self._pending: dict[str, set[str]] = {}
        self._tuples: dict[str, tuple[str, ...]] = {}

    @property
    def indexed(self) -> bool:
        """Whether any domain has an index (writers skip ``touched`` otherwise)."""
        return bool(self._sorted)

    def touched(self, domain: str, key: str) -> None:
        """``key`` was added to or removed from ``domain`` (a writer, fill lock held)."""
        if domain in self._sorted:
            pending = self._pending.get(domain)
            if pending is None:
                pending = self._pending[domain] = set()
            pending.add(key)
            self._tuples.pop(domain, None)

    def keys(self, domain: str, present: Collection[str]) -> tuple[str, ...]:
        """The sorted keys of ``domain``; ``present`` is its current key set (fill lock held)."""
        cached = self._tuples.get(domain)
        if cached is not None:
            return cached
        ordered = self._sorted.get(domain)
        pending = self._pending.pop(domain, ())
        if ordered is None or len(pending) * _RESORT_FRACTION > len(ordered):
            ordered = self._sorted[domain] = sorted(present)
        else:
            for key in pending:
                at = bisect_left(ordered, key)
                listed = at < len(ordered) and ordered[at] == key
                if key in present:
                    if not listed:
                        ordered.insert(at, key)
                elif listed:
                    del ordered[at]
        result = self._tuples[domain] = tuple(ordered)
        return result

    def clear(self) -> None:
        """Forget every index (rebuilt by the next listing)."""
        self._sorted.clear()
        self._pending.clear()
        self._tuples.clear()


_GONE: Any = object()  # a delta entry: the key no longer resolves


class ActiveLayers:
    """One domain's active winners as an immutable base plus a delta of later changes.

    ``active()`` at a million keys spent its time copying a million-entry dict
    (~70 ms: every key and winner touched).  Here a refresh never mutates a
    dict it has handed out: it copies the (small) delta and folds it into a new
    base only when the delta outgrows 1/16 of the base, so a listing after a
    write costs the changes since, and a fold's one copy is spread over
    thousands of writes.  Readers get an :class:`ActiveView` over the layers
    they were handed, which later writes cannot change.
    """

    __slots__ = ("base", "delta", "size")

    def __init__(self, base: dict[KeyRef, Candidate]) -> None:
        self.base = base
        self.delta: dict[KeyRef, Any] = {}
        self.size = len(base)

    def apply(self, changes: dict[KeyRef, Candidate | None]) -> None:
        """Fold resolved changes in: ``None`` for a key that no longer resolves."""
        if not changes:
            return
        base = self.base
        delta = dict(self.delta)
        size = self.size
        for ref, winner in changes.items():
            before = delta.get(ref, _MISSING)
            present = ref in base if before is _MISSING else before is not _GONE
            if winner is None:
                if present:
                    size -= 1
                    delta[ref] = _GONE
            else:
                if not present:
                    size += 1
                delta[ref] = winner
        if len(delta) * _RESORT_FRACTION > len(base) + 1024:
            merged = dict(base)
            for ref, value in delta.items():
                if value is _GONE:
                    merged.pop(ref, None)
                else:
                    merged[ref] = value
            self.base, self.delta = merged, {}
        else:
            self.delta = delta
        self.size = size

    def snapshot(self) -> tuple[dict[KeyRef, Candidate], dict[KeyRef, Any], int]:
        return self.base, self.delta, self.size


_MISSING: Any = object()


class ActiveView(Mapping["KeyRef", "Candidate"]):
    """What ``Resolver.active()`` returns: a read-only mapping that later writes never change.

    ``{(domain, key): winner}`` in no particular order; ``dict(view)`` for a
    mutable copy.  Equality with a dict works as for any mapping.
    """

    __slots__ = ("_layers", "_size")

    def __init__(
        self, layers: Mapping[str, tuple[dict[KeyRef, Candidate], dict[KeyRef, Any], int]]
    ) -> None:
        self._layers = dict(layers)
        self._size = sum(part[2] for part in self._layers.values())

    def __getitem__(self, ref: KeyRef) -> Candidate:
        part = self._layers.get(ref[0]) if type(ref) is tuple and len(ref) == 2 else None
        if part is None:
            raise KeyError(ref)
        base, delta, _ = part
        value = delta.get(ref, _MISSING)
        if value is _MISSING:
            return base[ref]
        if value is _GONE:
            raise KeyError(ref)
        winner: Candidate = value
        return winner

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[KeyRef]:
        for base, delta, _ in self._layers.values():
            if not delta:
                yield from base
                continue
            for ref in base:
                if ref not in delta:
                    yield ref
            for ref, value in delta.items():
                if value is not _GONE:
                    yield ref

    def __repr__(self) -> str:
        return f"ActiveView({dict(self)!r})"
