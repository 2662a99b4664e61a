"""OpenTelemetry through the API only: a no-op unless the application installs an SDK.

The API is imported lazily, on the first span or metric, so ``import
oneiric.core`` stays cheap.  ``active()`` decides whether anything is recorded
at all: not when the process never imported ``opentelemetry``, and not when it
did (a library may import the API: redis-py 8 does, for its own metrics) but
no SDK provider is installed - the API would only hand out no-op spans, at the
cost of building them (measured: a no-op action invocation and a workflow
node twice as slow).  Spans: ``oneiric.swap``, ``oneiric.remote.sync``,
``oneiric.explain`` (around a ranking computation, not a cached read).
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

__all__ = ["active", "counter", "histogram", "span", "tracer"]

_tracer: Any = None
_active = False  # an SDK provider was seen: OpenTelemetry sets its globals once, for good
_NOOP_PROVIDERS = frozenset({"ProxyTracerProvider", "NoOpTracerProvider",
                             "_ProxyMeterProvider", "NoOpMeterProvider"})
_NOOP_TRACERS = frozenset({"ProxyTracer", "NoOpTracer"})
_UNKNOWN = object()
#: (module holding the global, the global, (API module, its getter), the variable that names
#: a provider to load)
_PROVIDERS = (
    ("opentelemetry.trace", "_TRACER_PROVIDER", ("trace", "get_tracer_provider"),
     "OTEL_PYTHON_TRACER_PROVIDER"),
    ("opentelemetry.metrics._internal", "_METER_PROVIDER", ("metrics", "get_meter_provider"),
     "OTEL_PYTHON_METER_PROVIDER"),
)


@functools.cache
def _named_providers() -> frozenset[str]:
    """The ``OTEL_PYTHON_*_PROVIDER`` variables set (read once: they are set before start)."""
    return frozenset(env for _m, _v, _g, env in _PROVIDERS if env in os.environ)


def active() -> bool:
    """Whether spans and metrics are recorded: an SDK tracer or meter provider is installed
    (or a test pointed Oneiric's tracer at one)."""
    global _active
    if _active:
        return True
    if "opentelemetry" not in sys.modules:
        return False
    if _tracer is not None and type(_tracer).__name__ not in _NOOP_TRACERS:
        return True  # a real tracer given to Oneiric (the testing ``spans`` fixture)
    for module_name, variable, getter, env in _PROVIDERS:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        # the API's own global (None until an SDK sets it) is a dict lookup; its public
        # getter costs ~1 us a call and this runs per action and per node.  The getter is
        # used when the global is gone (a future API) or an environment variable names a
        # provider the getter would load.
        provider = getattr(module, variable, _UNKNOWN)
        if provider is _UNKNOWN or (provider is None and env in _named_providers()):
            provider = getattr(sys.modules["opentelemetry." + getter[0]], getter[1])()
        if provider is not None and type(provider).__name__ not in _NOOP_PROVIDERS:
            _active = True
            return True
    return False
_meter: Any = None
_instruments: dict[str, Any] = {}


def tracer() -> Any:
    """The ``oneiric`` tracer (no-op without an SDK)."""
    global _tracer
    if _tracer is None:
        from opentelemetry import trace

        from .__about__ import __version__

        _tracer = trace.get_tracer("oneiric", __version__)
    return _tracer


def _meter_() -> Any:
    global _meter
    if _meter is None:
        from opentelemetry import metrics

        from .__about__ import __version__

        _meter = metrics.get_meter("oneiric", __version__)
    return _meter


class _NoOpInstrument:
    """Stands in for an instrument while the process has not imported OpenTelemetry."""

    def add(self, amount: float, attributes: Any = None) -> None:
        return None

    def record(self, amount: float, attributes: Any = None) -> None:
        return None


_NOOP = _NoOpInstrument()


def counter(name: str, description: str = "", unit: str = "1") -> Any:
    """A cached counter instrument named ``name`` (a no-op unless ``active()``)."""
    if not active():
        return _NOOP
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = _meter_().create_counter(
            name, unit=unit, description=description
        )
    return inst


def histogram(name: str, description: str = "", unit: str = "s") -> Any:
    """A cached histogram instrument named ``name`` (a no-op unless ``active()``)."""
    if not active():
        return _NOOP
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = _meter_().create_histogram(
            name, unit=unit, description=description
        )
    return inst


def span(name: str, *, new_trace: bool = False, **attributes: Any) -> AbstractContextManager[Any]:
    """Start a span when OpenTelemetry is in use in this process, else do nothing.

    ``new_trace=True`` starts a root span (a trace of its own) *linked* to the
    current span instead of a child of it: a workflow run is one trace however
    long it lives and whatever resumes it, and the event that started it is a
    link, not a parent whose trace the run would stretch for hours.
    """
    if not active():
        return nullcontext()
    clean = {k: v for k, v in attributes.items() if v is not None}
    if not new_trace:
        return tracer().start_as_current_span(name, attributes=clean)  # type: ignore[no-any-return]
    from opentelemetry import context, trace

    current = trace.get_current_span().get_span_context()
    links = [trace.Link(current)] if current.is_valid else []
    return tracer().start_as_current_span(  # type: ignore[no-any-return]
        name, context=context.Context(), links=links, attributes=clean
    )
