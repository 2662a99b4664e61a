"""Logging stays silent until the application asks, and never leaks secrets.

Also guards the import cost: ``import oneiric.core`` must not pull structlog,
pydantic or opentelemetry (serverless cold starts).
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog
from pydantic import SecretStr

from oneiric.core import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_oneiric_logger() -> Iterator[logging.Logger]:
    """``configure_logging`` changes the ``oneiric`` logger; put it back afterwards."""
    root = logging.getLogger("oneiric")
    saved = (list(root.handlers), root.level, root.propagate)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.propagate = saved[2]


def test_silent_without_configuration(capfd: pytest.CaptureFixture[str]) -> None:
    # Like a fresh process: no handler anywhere but what the library installs.
    stdlib_root = logging.getLogger()
    saved = list(stdlib_root.handlers)
    stdlib_root.handlers.clear()
    try:
        log = get_logger("oneiric.test.silent")
        log.warning("something odd", detail="x")
        log.error("something bad")
        logging.getLogger("oneiric.test.stdlib").warning("plain stdlib record")
    finally:
        stdlib_root.handlers[:] = saved
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_oneiric_logger_has_a_null_handler() -> None:
    get_logger("oneiric.test.null").info("first use installs it")
    handlers = logging.getLogger("oneiric").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_names_are_put_under_oneiric() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    get_logger("thirdparty").info("hello")
    assert json.loads(stream.getvalue())["logger"] == "oneiric.thirdparty"


def test_configure_logging_renders_json_lines(capfd: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", json=True, stream=stream)
    log = get_logger("oneiric.test.json")

    log.info("swapped", domain="adapter", key="cache", provider="redis")
    log.debug("below the level")
    log.warning("slow", seconds=1.5)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "swapped"
    assert first["level"] == "info"
    assert first["logger"] == "oneiric.test.json"
    assert (first["domain"], first["key"], first["provider"]) == ("adapter", "cache", "redis")
    assert "timestamp" in first
    assert (second["event"], second["level"], second["seconds"]) == ("slow", "warning", 1.5)
    assert handler in logging.getLogger("oneiric").handlers
    assert capfd.readouterr() == ("", "")  # the given stream only, not stdout/stderr


def test_configure_logging_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    old = configure_logging(json=True, stream=first)
    new = configure_logging(json=True, stream=second)
    get_logger("oneiric.test.replace").warning("once")
    root = logging.getLogger("oneiric")
    assert old not in root.handlers and new in root.handlers
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["event"] == "once"


def test_console_rendering_and_stdlib_records() -> None:
    stream = io.StringIO()
    configure_logging(logging.DEBUG, stream=stream)
    get_logger("oneiric.test.console").debug("console line", key="cache")
    logging.getLogger("oneiric.test.console").warning("from %s", "stdlib")
    text = stream.getvalue()
    assert "console line" in text and "key=cache" in text
    assert "from stdlib" in text
    assert len(text.splitlines()) == 2


def test_configure_logging_defaults_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    get_logger("oneiric.test.stderr").warning("to stderr")
    out, err = capfd.readouterr()
    assert out == ""
    assert json.loads(err.strip())["event"] == "to stderr"


def test_secrets_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    get_logger("oneiric.test.secret").warning(
        "connecting",
        password=SecretStr("hunter2"),
        settings={"url": "redis://x", "token": SecretStr("s3cr3t"), "list": [SecretStr("l1st")]},
    )
    text = stream.getvalue()
    for secret in ("hunter2", "s3cr3t", "l1st"):
        assert secret not in text
    event = json.loads(text)
    assert event["password"] == "**********"
    assert event["settings"] == {
        "url": "redis://x",
        "token": "**********",
        "list": ["**********"],
    }


def test_no_global_structlog_configuration() -> None:
    # A library must not call structlog.configure(): the application owns it.
    was_configured = structlog.is_configured()
    before = structlog.get_config()
    get_logger("oneiric.test.global").info("x")
    configure_logging(json=True, stream=io.StringIO())
    get_logger("oneiric.test.global").warning("y")
    assert structlog.is_configured() == was_configured
    assert structlog.get_config() == before


_IMPORT_SCRIPT = """
import sys
import oneiric.core
from oneiric.core import Candidate, Resolver, get_logger
log = get_logger("oneiric.lazy")  # creating a logger is free; only logging imports structlog
resolver = Resolver()
resolver.register(Candidate("adapter", "cache", "memory", "json:loads"))
resolver.resolve("adapter", "cache")
heavy = ("structlog", "pydantic", "opentelemetry", "yaml")
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
# Logging for real, in a fresh process: silent, and structlog is never configured.
import io
import logging
log.warning("must not be printed")
logging.getLogger("oneiric.core.other").warning("must not be printed either")
oneiric.core.configure_logging(json=True, stream=io.StringIO())
log.warning("to the configured stream only")
import structlog
print("configured" if structlog.is_configured() else "not configured")
"""


def test_import_is_cheap() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    heavy, configured = completed.stdout.splitlines()
    assert heavy == ""
    assert configured == "not configured"
    assert completed.stderr == ""
