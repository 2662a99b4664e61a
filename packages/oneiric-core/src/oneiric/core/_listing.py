"""The sorted keys of each domain, kept as an index instead of sorted per listing.

``Resolver.keys()`` sorted every key of the domain on every call (2.2 s at a
million keys).  The index is built by one sort on the first listing of a
domain; after that, writers only note which keys were added or removed, and
the next listing patches the sorted list with a binary search per noted key
(a handful of insertions is a memmove each) or sorts again when so many keys
changed that one sort is cheaper.  The tuple handed out is cached until the
next change, so repeated listings cost nothing.  Domains never listed cost
nothing either: writers note changes only for domains that have an index.

Not thread-safe on its own: the resolver calls it with its fill lock held.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection

__all__ = ["KeyIndex"]

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
