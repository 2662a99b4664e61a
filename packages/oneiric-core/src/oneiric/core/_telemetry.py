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


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """Start a span when OpenTelemetry is in use in this process, else do nothing."""
    if "opentelemetry" not in sys.modules:
        return nullcontext()
    clean = {k: v for k, v in attributes.items() if v is not None}
    return tracer().start_as_current_span(name, attributes=clean)  # type: ignore[no-any-return]
