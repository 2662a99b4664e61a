"""OpenTelemetry through the API only: a no-op unless the application installs an SDK.

The API is imported lazily, on the first span or metric, so ``import
oneiric.core`` stays cheap.  ``span()`` goes further: when the process has not
imported ``opentelemetry`` at all, no SDK can be installed, so it skips even
the API import and returns a null context.  Spans: ``oneiric.swap``, ``oneiric.remote.sync``,
``oneiric.explain`` (around a ranking computation, not a cached read).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

__all__ = ["counter", "histogram", "span", "tracer"]

_tracer: Any = None
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
    """A cached counter instrument named ``name`` (a no-op without OpenTelemetry loaded)."""
    if "opentelemetry" not in sys.modules:
        return _NOOP
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = _meter_().create_counter(
            name, unit=unit, description=description
        )
    return inst


def histogram(name: str, description: str = "", unit: str = "s") -> Any:
    """A cached histogram instrument named ``name`` (a no-op without OpenTelemetry loaded)."""
    if "opentelemetry" not in sys.modules:
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
    if "opentelemetry" not in sys.modules:
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
