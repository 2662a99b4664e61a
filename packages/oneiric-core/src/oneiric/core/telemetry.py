"""Public OpenTelemetry helpers for Oneiric packages and plugins.

``span(name, **attributes)`` and the ``counter``/``histogram`` instruments are
no-ops (without even importing the OpenTelemetry API) unless the process has
imported ``opentelemetry`` - the only way an SDK can be installed.
"""

from __future__ import annotations

from ._telemetry import counter, histogram, span, tracer

__all__ = ["counter", "histogram", "span", "tracer"]
