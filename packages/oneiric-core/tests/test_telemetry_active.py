"""``telemetry.active()``: spans and metrics only when an OpenTelemetry SDK provider is installed.

Importing the API is not enough (redis-py 8 imports it for its own metrics):
without an SDK the spans would be no-ops that still cost their construction.
Each case runs in a fresh interpreter - OpenTelemetry's globals are set once.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("opentelemetry.sdk")


def _active_after(setup: str) -> str:
    code = f"{setup}\nfrom oneiric.core import telemetry\nprint(telemetry.active())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def test_nothing_imported_is_inactive() -> None:
    assert _active_after("") == "False"


def test_the_api_alone_is_inactive() -> None:
    assert _active_after("import opentelemetry.trace, opentelemetry.metrics") == "False"


def test_an_sdk_tracer_provider_makes_it_active() -> None:
    setup = ("from opentelemetry import trace\n"
             "from opentelemetry.sdk.trace import TracerProvider\n"
             "trace.set_tracer_provider(TracerProvider())")
    assert _active_after(setup) == "True"


def test_an_sdk_meter_provider_makes_it_active() -> None:
    setup = ("from opentelemetry import metrics\n"
             "from opentelemetry.sdk.metrics import MeterProvider\n"
             "metrics.set_meter_provider(MeterProvider())")
    assert _active_after(setup) == "True"


def test_the_spans_fixture_records(spans: object) -> None:
    from oneiric.core import telemetry

    assert telemetry.active()
    with telemetry.span("oneiric.test", answer=42):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["oneiric.test"]  # type: ignore[attr-defined]
