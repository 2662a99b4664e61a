"""``/metrics``: the orchestrator's state as Prometheus text, read at scrape time.

Why a custom collector and not counters updated as things happen: the numbers
already exist - the lifecycle's status document counts swaps and failures and
holds each key's activity and last probe, the dispatcher knows its in-flight
calls and inbox, the dead-letter and checkpoint stores hold their records.  A
second set of counters would drift from them (and cost the hot paths).  The
collector reads them when Prometheus scrapes, in a registry of its own (the
process-wide default registry is the application's).  prometheus-client is
imported only when ``oneiric orchestrate`` builds the endpoint.

Names (all ``oneiric_*``; labels ``domain``, ``key``, ``tenant`` - empty when
global - and ``provider``):

* ``oneiric_up`` 1 while serving; ``oneiric_ready`` 1 when ``/readyz`` is 200;
* ``oneiric_component_up``, ``_paused``, ``_draining``, ``_health_ok`` (1/0),
  ``_in_flight`` (leases held), ``_swaps_total``, ``_failures_total``;
* ``oneiric_event_in_flight``, ``oneiric_event_inbox_depth``,
  ``oneiric_event_dropped_total``, ``oneiric_event_delivered_total``,
  ``oneiric_event_dead_letters`` (records now);
* ``oneiric_workflow_runs{status}`` (runs in the checkpoint store by status).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from oneiric.core import OneiricError, get_logger
from oneiric.core.helpers import one_line

from ._probes import readiness
from ._runs import RUN_STATUSES

__all__ = ["exposition"]

_log = get_logger("oneiric.runtime.metrics")
_KEY = ["domain", "key", "tenant", "provider"]


class StateCollector:
    """A prometheus-client collector over the running host's current state."""

    def __init__(self, host: Callable[[], Any], state_dir: Callable[[], Path | None]) -> None:
        self._host = host
        self._state_dir = state_dir
        self._checkpoints: Any = None

    def describe(self) -> list[Any]:
        return []  # state-driven: nothing to describe before the first scrape

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        host = self._host()
        up = GaugeMetricFamily("oneiric_up", "1 while the orchestrator serves its host")
        up.add_metric([], 1 if host is not None else 0)
        yield up
        if host is None:
            return
        document = host.lifecycle.status()
        ready = GaugeMetricFamily("oneiric_ready", "1 when /readyz answers 200")
        ready.add_metric([], 0 if readiness(document) else 1)
        yield ready
        families: dict[str, Any] = {
            "up": GaugeMetricFamily("oneiric_component_up", "1 when a provider is bound",
                                    labels=_KEY),
            "paused": GaugeMetricFamily("oneiric_component_paused", "1 when paused",
                                        labels=_KEY),
            "draining": GaugeMetricFamily("oneiric_component_draining",
                                          "1 when draining (or drained)", labels=_KEY),
            "health": GaugeMetricFamily("oneiric_component_health_ok",
                                        "1 when the last health probe was ok", labels=_KEY),
            "in_flight": GaugeMetricFamily("oneiric_component_in_flight",
                                           "Leases held on the key", labels=_KEY),
            "swaps": CounterMetricFamily("oneiric_component_swaps",
                                         "Swaps of the key since start", labels=_KEY),
            "failures": CounterMetricFamily("oneiric_component_failures",
                                            "Failed activations and swaps since start",
                                            labels=_KEY),
        }
        for key in document["keys"]:
            labels = [key["domain"], key["key"], key["tenant"] or "", key["bound"] or ""]
            activity = key["activity"]
            health = key["last_health"]
            families["up"].add_metric(labels, 1 if key["bound"] is not None else 0)
            families["paused"].add_metric(labels, 1 if activity["state"] == "paused" else 0)
            families["draining"].add_metric(labels, 1 if activity["state"] == "draining" else 0)
            families["health"].add_metric(labels, 1 if health is not None and health["ok"] else 0)
            families["in_flight"].add_metric(labels, activity["in_flight"])
            families["swaps"].add_metric(labels, key["swaps"])
            families["failures"].add_metric(labels, key["failures"])
        yield from families.values()
        yield from self._events(host)
        yield from self._workflows()

    def _events(self, host: Any) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ._host import dispatcher_for

        dispatcher = dispatcher_for(host.lifecycle, state_dir=host.state_dir)
        stats = dispatcher.stats()
        for name, text, field in (
            ("oneiric_event_in_flight", "Handler calls running now", "in_flight"),
            ("oneiric_event_inbox_depth", "Events waiting in the local inbox", "inbox"),
        ):
            if field in stats:
                gauge = GaugeMetricFamily(name, text)
                gauge.add_metric([], stats[field])
                yield gauge
        for name, text, field in (
            ("oneiric_event_dropped", "Events the inbox dropped (overflow)", "dropped"),
            ("oneiric_event_delivered", "Events the inbox handed to its consumers",
             "delivered"),
        ):
            if field in stats:
                counter = CounterMetricFamily(name, text)
                counter.add_metric([], stats[field])
                yield counter
        outcomes = CounterMetricFamily("oneiric_event_handled",
                                       "Handler outcomes since start, by status", labels=["status"])
        for status in ("ok", "failed", "timed_out", "dead_lettered", "duplicate"):
            outcomes.add_metric([status], stats.get("outcomes", {}).get(status, 0))
        yield outcomes
        store = dispatcher.dead_letters
        if store is not None:
            try:
                count = len(store.list())
            except OneiricError as exc:
                _log.warning("dead letters not counted", error=one_line(exc))
            else:
                letters = GaugeMetricFamily("oneiric_event_dead_letters",
                                            "Dead-letter records kept (until redriven or pruned)")
                letters.add_metric([], count)
                yield letters

    def _workflows(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        store = self._store()
        if store is None:
            return
        runs = GaugeMetricFamily("oneiric_workflow_runs",
                                 "Workflow runs in the checkpoint store by status",
                                 labels=["status"])
        try:
            for status in RUN_STATUSES:
                runs.add_metric([status], len(store.list_runs(status=status)))
        except OneiricError as exc:
            _log.warning("workflow runs not counted", error=one_line(exc))
            return
        yield runs

    def _store(self) -> Any:
        """The state dir's checkpoint store, opened once it exists (never created here)."""
        if self._checkpoints is None:
            state = self._state_dir()
            from ._sqlitestore import DEFAULT_CHECKPOINTS, SQLiteCheckpointStore

            path = state / DEFAULT_CHECKPOINTS if state is not None else None
            if path is None or not path.is_file():
                return None
            try:
                self._checkpoints = SQLiteCheckpointStore(path)
            except OneiricError as exc:
                _log.warning("checkpoint store not opened", error=one_line(exc))
                return None
        return self._checkpoints

    def close(self) -> None:
        store, self._checkpoints = self._checkpoints, None
        if store is not None:
            with contextlib.suppress(OneiricError):
                store.close()


def exposition(collector: StateCollector) -> Callable[[], tuple[bytes, str]]:
    """A function rendering ``collector`` in the Prometheus text format.

    prometheus-client (~20 ms of imports) loads on the first scrape, not at
    start: it is not on the way to ``/readyz`` 200.
    """
    rendered: list[Callable[[], tuple[bytes, str]]] = []

    def render() -> tuple[bytes, str]:
        if not rendered:
            from prometheus_client import CollectorRegistry, generate_latest
            from prometheus_client.exposition import CONTENT_TYPE_LATEST

            registry = CollectorRegistry(auto_describe=False)
            registry.register(collector)
            rendered.append(lambda: (generate_latest(registry), CONTENT_TYPE_LATEST))
        return rendered[0]()

    return render
