"""A log call below the configured level costs no structlog import.

The CLI's control commands log at ``info`` (e.g. the activity store's "activity
changed") while the CLI shows warnings only; importing structlog for a record
that ``filter_by_level`` drops anyway was half of ``oneiric pause``'s start-up.
Asserted structurally (what the child imported), never by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _child(code: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


def test_attack_disabled_level_log_call_imports_structlog() -> None:
    out = _child(
        """
        import json, sys
        from oneiric.core import get_logger
        log = get_logger("oneiric.test")
        log.info("dropped", a=1)
        log.debug("dropped too")
        print(json.dumps({"structlog": "structlog" in sys.modules}))
        """
    )
    assert out["structlog"] is False
    assert out["stderr"] == ""


def test_enabled_level_still_renders_after_a_dropped_call() -> None:
    out = _child(
        """
        import io, json, logging, sys
        from oneiric.core import configure_logging, get_logger
        log = get_logger("oneiric.test")
        log.info("before configure")           # dropped: nothing configured
        stream = io.StringIO()
        configure_logging("INFO", json=True, stream=stream)
        log.info("kept", a=1)
        log.debug("dropped")
        lines = [json.loads(x) for x in stream.getvalue().splitlines()]
        print(json.dumps({"events": [x["event"] for x in lines]}))
        """
    )
    assert out["events"] == ["kept"]


def test_configure_logging_level_defaults_to_log_level_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging

    from oneiric.core import ConfigError, configure_logging

    root = logging.getLogger("oneiric")
    saved = (list(root.handlers), root.level, root.propagate)
    monkeypatch.delenv("ONEIRIC_LOG_LEVEL", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "warning")
    try:
        configure_logging(stream=io.StringIO())
        assert root.level == logging.WARNING
        monkeypatch.setenv("LOG_LEVEL", "loud")
        with pytest.raises(ConfigError, match="LOG_LEVEL='loud' is not a log level"):
            configure_logging(stream=io.StringIO())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]
