"""Public OpenTelemetry helpers for Oneiric packages and plugins.

``span(name, **attributes)`` and the ``counter``/``histogram`` instruments are
no-ops (without even importing the OpenTelemetry API) unless ``active()``: an
OpenTelemetry SDK provider is installed in this process.
"""

from __future__ import annotations

from ._telemetry import active, counter, histogram, span, tracer

__all__ = ["active", "counter", "histogram", "span", "tracer"]
