"""Attack: a ``${secret:...}`` escapes redaction once it is no longer a ``SecretStr``.

A secret interpolated into a longer string, converted to ``str`` by a
provider's own settings model, or placed in a list or mapping, must still be
redacted in every output: ``redact`` (status, CLI), ``Settings.as_dict``,
explanations, log records and settings error messages.  The secret comes from
each built-in source: ``ONEIRIC_SECRET_<NAME>`` and the secrets directory.
"""

from __future__ import annotations

import io
import json
import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, field_validator

from oneiric.core import (
    Candidate,
    ConfigError,
    Resolver,
    _redact,
    configure_logging,
    get_logger,
    load_settings,
    redact,
)
from oneiric.core._secrets import oneiric_secret

SECRET = "hunter2-Sup3rS3cret"
REDACTED = "**********"


class DsnSettings(BaseModel):
    """A provider's own model: the DSN is a plain ``str``, as most drivers want."""

    model_config = ConfigDict(extra="forbid")

    dsn: str
    replicas: list[str] = []
    options: dict[str, str] = {}


class PickySettings(BaseModel):
    """A provider model whose validator quotes the value in its error."""

    dsn: str

    @field_validator("dsn")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith("redis://"):
            raise ValueError(f"unsupported DSN {value}")
        return value


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ONEIRIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(tmp_path / "secrets"))
    _redact.reset_registry()
    yield
    _redact.reset_registry()


@pytest.fixture(params=["env", "secrets_dir"])
def secret_source(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """Provide secret ``redis_pw`` from one built-in source."""
    if request.param == "env":
        monkeypatch.setenv("ONEIRIC_SECRET_REDIS_PW", SECRET)
    else:
        directory = tmp_path / "secrets"
        directory.mkdir()
        (directory / "redis_pw").write_text(SECRET + "\n", encoding="utf-8")
    return str(request.param)


def _config(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    (cfg / "oneiric.toml").write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return cfg


SHAPES = {
    "embedded_in_dsn": """
        [adapter.provider_settings.cache.redis]
        dsn = "redis://:${secret:redis_pw}@host/0"
    """,
    "whole_value": """
        [adapter.provider_settings.cache.redis]
        dsn = "${secret:redis_pw}"
    """,
    "in_a_list": """
        [adapter.provider_settings.cache.redis]
        dsn = "redis://host/0"
        replicas = ["redis://:${secret:redis_pw}@replica/0"]
    """,
    "in_a_mapping": """
        [adapter.provider_settings.cache.redis]
        dsn = "redis://host/0"
        options = { auth = "token ${secret:redis_pw} end" }
    """,
}


def _candidate(model: type[BaseModel] = DsnSettings) -> Candidate:
    return Candidate("adapter", "cache", "redis", "json:loads", settings_model=model)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_attack_secret_via_provider_str_field_is_redacted(
    tmp_path: Path, secret_source: str, shape: str
) -> None:
    settings = load_settings(_config(tmp_path, SHAPES[shape]))
    model = settings.settings_for(_candidate())
    # The provider gets the real value...
    assert SECRET in json.dumps(model.model_dump())
    # ...and no output built from it shows it.
    for output in (redact(model), redact(model.model_dump()), settings.as_dict()):
        text = json.dumps(output)
        assert SECRET not in text, (shape, text)
        assert REDACTED in text
    # Values that contain no secret stay readable.
    assert redact({"host": "redis://host/0"}) == {"host": "redis://host/0"}


@pytest.mark.parametrize(
    "container",
    [
        lambda s: s,
        lambda s: [s],
        lambda s: (s, "x"),
        lambda s: {"nested": {"deeper": [s]}},
        lambda s: {s: "as a key"},
        lambda s: RuntimeError(f"cannot connect to {s}"),
    ],
    ids=["str", "list", "tuple", "nested_dict", "dict_key", "exception"],
)
def test_attack_registered_secret_in_any_container_is_redacted(
    tmp_path: Path, secret_source: str, container: Any
) -> None:
    load_settings(_config(tmp_path, SHAPES["whole_value"]))
    value = container(f"redis://:{SECRET}@host/0")
    assert SECRET not in json.dumps(redact(value))


def test_attack_secret_quoted_by_a_model_validator_not_in_config_error(
    tmp_path: Path, secret_source: str
) -> None:
    cfg = _config(
        tmp_path,
        """
        [adapter.provider_settings.cache.redis]
        dsn = "mysql://:${secret:redis_pw}@host/0"
        """,
    )
    settings = load_settings(cfg)
    with pytest.raises(ConfigError) as error:
        settings.settings_for(_candidate(PickySettings))
    message = str(error.value)
    assert SECRET not in message
    assert "oneiric.toml" in message and "unsupported DSN" in message and REDACTED in message


@pytest.mark.parametrize("how", ["structlog_kwarg", "structlog_message", "stdlib_args", "exc"])
def test_attack_secret_in_a_log_record_is_redacted(
    tmp_path: Path, secret_source: str, how: str
) -> None:
    settings = load_settings(_config(tmp_path, SHAPES["embedded_in_dsn"]))
    dsn = settings.settings_for(_candidate()).dsn
    stream = io.StringIO()
    handler = configure_logging(json=True, stream=stream)
    try:
        if how == "structlog_kwarg":
            get_logger("oneiric.test.attack").warning("connecting", dsn=dsn, cfg={"d": [dsn]})
        elif how == "structlog_message":
            get_logger("oneiric.test.attack").warning(f"connecting to {dsn}")
        elif how == "stdlib_args":
            logging.getLogger("oneiric.test.attack.std").warning("connecting to %s", dsn)
        else:
            try:
                raise ConnectionError(f"refused: {dsn}")
            except ConnectionError:
                get_logger("oneiric.test.attack").exception("connect failed")
    finally:
        logging.getLogger("oneiric").removeHandler(handler)
    text = stream.getvalue()
    assert text.strip(), "nothing was logged"
    assert SECRET not in text, text
    assert REDACTED in text


def test_attack_secret_in_an_explanation_is_redacted(
    tmp_path: Path, secret_source: str
) -> None:
    load_settings(_config(tmp_path, SHAPES["whole_value"]))
    from oneiric.core import get_plugin_manager, hookimpl

    class Leaky:
        @hookimpl
        def oneiric_candidate_veto(self, candidate: Candidate, request: Any) -> str | None:
            return f"bad credentials {SECRET}" if candidate.provider == "redis" else None

    hooks = get_plugin_manager()
    hooks.register(Leaky(), name="leaky-veto")
    try:
        resolver = Resolver(hooks=hooks)
        resolver.register(_candidate())
        resolver.register(Candidate("adapter", "cache", "memory", "json:loads"))
        explanation = resolver.explain("adapter", "cache")
    finally:
        hooks.unregister(name="leaky-veto")
    assert SECRET in json.dumps([r.reason for r in explanation.ranking])  # the attack is real
    assert SECRET not in json.dumps(explanation.as_dict())
    assert SECRET not in str(explanation)


def test_short_secrets_are_redacted_only_as_whole_values() -> None:
    """Documented choice: a secret under 4 characters would otherwise redact every output."""
    _redact.register_secret("abc")
    _redact.register_secret("long-secret")
    assert redact("abc") == REDACTED
    assert redact("xabcx") == "xabcx"
    assert redact("a long-secret here") == REDACTED
    assert _redact.scrub_text("see long-secret!") == f"see {REDACTED}!"
    _redact.reset_registry()
    assert redact("a long-secret here") == "a long-secret here"


def test_attack_secret_file_name_with_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``^...$`` accepted ``"token\\n"``: names must match in full before touching files."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "token\n").write_text("from-a-strange-file", encoding="utf-8")
    (directory / "token").write_text("right", encoding="utf-8")
    assert oneiric_secret("token") == "right"
    assert oneiric_secret("token\n") is None
