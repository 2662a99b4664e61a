"""``debug.console`` (builtin): echo + one line on a stream or the logger, secrets redacted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from oneiric.actions import ActionInputError
from oneiric.actions._kits.console import LOGGER, Console, ConsoleSettings
from oneiric.actions._spec import ActionContext
from oneiric.core._redact import register_secret, reset_registry

pytestmark = pytest.mark.anyio

CTX = ActionContext("debug.console", "builtin", 1, float("inf"), "k")
M = "**********"


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    yield
    reset_registry()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger(LOGGER)
    handler = _Records()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old)


SECRETIVE = {
    "message": "calling with Authorization: Bearer abc.def.ghi",
    "data": {"user": "ada", "password": "pw1", "headers": {"authorization": "Basic Zm9v"},
             "api_key": "k-123", "nested": [{"refresh_token": "r-456"}], "count": 3},
}
REDACTED = {
    "message": f"calling with Authorization: Bearer {M}",
    "data": {"user": "ada", "password": M, "headers": {"authorization": M},
             "api_key": M, "nested": [{"refresh_token": M}], "count": 3},
}


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_echo_and_one_line_on_the_stream_with_secrets_redacted(
    stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Console(ConsoleSettings(stream=stream)).invoke(SECRETIVE, CTX)  # type: ignore[arg-type]
    assert out == REDACTED
    captured = capsys.readouterr()
    text = captured.out if stream == "stdout" else captured.err
    other = captured.err if stream == "stdout" else captured.out
    assert other == ""
    lines = text.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line == {"action": "debug.console", "level": "info", **REDACTED}
    for secret in ("pw1", "abc.def.ghi", "Zm9v", "k-123", "r-456"):
        assert secret not in text


def test_message_with_line_breaks_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    Console().invoke({"message": "a\nb\u2028c\rd"}, CTX)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert json.loads(err)["message"] == "a\nb\u2028c\rd"


def test_input_is_not_mutated(capsys: pytest.CaptureFixture[str]) -> None:
    import copy

    payload = copy.deepcopy(SECRETIVE)
    Console().invoke(payload, CTX)
    assert payload == SECRETIVE


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_log_stream_writes_one_redacted_event_at_the_level(
    level: str, records: list[logging.LogRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = ConsoleSettings(stream="log", level=level)  # type: ignore[arg-type]
    out = Console(settings).invoke(SECRETIVE, CTX)
    assert out == REDACTED
    assert len(records) == 1
    record = records[0]
    assert record.levelname == level.upper()
    event = record.msg
    assert isinstance(event, dict)
    assert event["event"] == "action.console"
    assert event["data"] == REDACTED["data"] and event["message"] == REDACTED["message"]
    assert "pw1" not in str(event) and "abc.def.ghi" not in str(event)
    assert capsys.readouterr() == ("", "")  # nothing on the streams


def test_secret_str_and_bytes_values(capsys: pytest.CaptureFixture[str]) -> None:
    out = Console().invoke({"data": {"s": SecretStr("hidden"), "b": b"\x00\x01"}}, CTX)
    assert out == {"data": {"s": M, "b": b"\x00\x01"}}
    line = json.loads(capsys.readouterr().err)
    assert line["data"] == {"s": M, "b": {"base64": "AAE="}}


async def test_values_from_secret_settings_never_appear(
    make_actions: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_SERVICE_PW", "s3rv1ce-pw-value")
    actions = await make_actions(
        '[action.provider_settings."data.sanitize".builtin]\n'
        'salt = "${secret:service_pw}"\n'
        '[action.provider_settings."debug.console".builtin]\n'
        'stream = "stdout"\n'
        'level = "warning"\n'
    )
    capsys.readouterr()
    result = await actions.invoke(
        "debug.console",
        {"message": "dsn is redis://:s3rv1ce-pw-value@h", "data": ["s3rv1ce-pw-value", 1]},
    )
    assert result.value == {"message": M, "data": [M, 1]}
    out = capsys.readouterr().out
    assert "s3rv1ce-pw-value" not in out
    assert json.loads(out)["level"] == "warning"


def test_in_a_real_subprocess_stdout_carries_exactly_one_line() -> None:
    code = textwrap.dedent("""
        from oneiric.actions._kits.console import Console, ConsoleSettings
        from oneiric.actions._spec import ActionContext
        from oneiric.core._redact import register_secret
        register_secret("registered-secret-1")
        ctx = ActionContext("debug.console", "builtin", 1, float("inf"), "k")
        Console(ConsoleSettings(stream="stdout")).invoke(
            {"message": "hi registered-secret-1", "data": {"token": "t0k3n"}}, ctx)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stderr == ""
    assert json.loads(done.stdout) == {
        "action": "debug.console", "level": "info", "message": M, "data": {"token": M},
    }


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ("hello", "<payload>"),
        ({"message": 3}, "message"),
        ({"msg": "x"}, "msg"),
    ],
)
def test_attack_bad_payload_is_input_error(payload: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        Console().invoke(payload, CTX)
    assert info.value.path == path


def test_attack_deep_data_is_refused_not_recursion_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = {"a": deep}
    with pytest.raises(ActionInputError) as info:
        Console().invoke({"data": deep}, CTX)
    assert info.value.path == "data"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", [{"stream": "file"}, {"level": "trace"}, {"colour": 1}])
def test_settings_are_strict(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ConsoleSettings(**bad)


def test_registered_secret_in_a_key_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    register_secret("key-secret-xyz")
    out = Console().invoke({"data": {"key-secret-xyz": 1}}, CTX)
    assert out == {"data": {M: 1}}
    assert "key-secret-xyz" not in capsys.readouterr().err
