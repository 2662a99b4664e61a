"""The routing table: every handler's current subscription, and which ones match a topic.

Built from the resolver (domain ``event``: each key's winning candidate and
its metadata, or the ``Subscription`` a ``subscribe()`` call registered) on
first use and dropped when the resolver reports a change in that domain;
matches are cached per topic (bounded).  Handlers whose subscription is
invalid, or whose key has no eligible provider, are left out and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oneiric.core import ConfigError, OneiricError, Resolver
from oneiric.core.helpers import one_line

from ._handlers import Entry
from ._subscription import Subscription

__all__ = ["DOMAIN", "RoutingTable"]

#: The resolver domain of event handlers (key = handler name).
DOMAIN = "event"
#: Candidate metadata keys other packages write (provenance, extras): not subscription fields.
_FOREIGN_KEYS = frozenset({"manifest_url", "artifact", "sha256", "unavailable", "requires",
                           "install"})
_MAX_TOPIC_CACHE = 1024


class RoutingTable:
    """``entries()`` (every routable handler), ``matching(topic)``, ``errors()``."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.code: dict[str, tuple[Subscription, Callable[[], object]]] = {}
        self._table: list[Entry] | None = None
        self._errors: dict[str, str] = {}
        self._by_topic: dict[str, tuple[Entry, ...]] = {}
        self.unsubscribe = resolver.subscribe(self._on_change)

    def _on_change(self, changes: Any) -> None:
        if any(domain == DOMAIN for domain, _key in changes):
            self._table = None
            self._by_topic = {}

    def errors(self) -> dict[str, str]:
        self.entries()
        return dict(self._errors)

    def entries(self) -> list[Entry]:
        table = self._table
        if table is not None:
            return table
        resolver = self.resolver
        entries: list[Entry] = []
        errors: dict[str, str] = {}
        for key in sorted(resolver.keys(DOMAIN)):
            try:
                candidate = resolver.resolve(DOMAIN, key)
            except OneiricError as exc:
                errors[key] = one_line(exc)
                continue
            code = self.code.get(key)
            if code is not None and candidate.factory is code[1]:
                subscription = code[0]
            else:
                fields = {k: v for k, v in candidate.metadata.items() if k not in _FOREIGN_KEYS}
                try:
                    subscription = Subscription.from_fields(key, fields)
                except ConfigError as exc:
                    errors[key] = one_line(exc)
                    continue
            entries.append(Entry(subscription, subscription.matcher(), candidate.provider))
        self._errors = errors
        self._table = entries
        return entries

    def matching(self, topic: str) -> tuple[Entry, ...]:
        found = self._by_topic.get(topic)
        if found is None:
            found = tuple(e for e in self.entries() if e.matches(topic))
            if len(self._by_topic) >= _MAX_TOPIC_CACHE:
                self._by_topic.clear()
            self._by_topic[topic] = found
        return found
