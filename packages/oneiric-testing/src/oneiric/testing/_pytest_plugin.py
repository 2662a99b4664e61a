"""pytest plugin (auto-loaded via the ``pytest11`` entry point).

Under ``CI=true`` a test marked ``live`` that was skipped is turned into a
failure: CI starts every server, so a skip there means something is broken.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._helpers import in_ci
from ._redis import private_redis

__all__ = ["private_redis"]  # a fixture: tests that need their own Redis ask for it


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: needs a real server (skips locally without it, fails when CI=true)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and item.get_closest_marker("live") is not None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"live test skipped under CI=true: {reason}"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The spans Oneiric records during the test, in an in-memory exporter.

    Oneiric's tracer is pointed at a private ``TracerProvider`` (the global
    one is left alone, it can be set only once per process).  Needs the
    OpenTelemetry SDK; skips without it.  Read them with
    ``spans.get_finished_spans()``.
    """
    pytest.importorskip("opentelemetry.sdk")
    import importlib

    import oneiric.core._telemetry as telemetry

    # imported by name: the SDK is a test dependency, not this package's (no stubs needed)
    sdk = importlib.import_module("opentelemetry.sdk.trace")
    export = importlib.import_module("opentelemetry.sdk.trace.export")
    memory = importlib.import_module("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_tracer", provider.get_tracer("oneiric-test"))
    return exporter
