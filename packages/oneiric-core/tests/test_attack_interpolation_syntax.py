"""Issue #11: references in an unsupported syntax are errors, never literal text.

The original design wrote ``${ONEIRIC_SECRET_DB_PASSWORD}``; taken literally it
reached the provider as a password string and was never redacted.  Every
``${...}`` must be ``${env:...}`` or ``${secret:...}``; ``$${`` is a literal ``${``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oneiric.core import ConfigError, load_settings


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ONEIRIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.chdir(tmp_path)


def _settings(tmp_path: Path, value: str) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    (cfg / "oneiric.toml").write_text(f'[remote]\ntoken = "{escaped}"\n', encoding="utf-8")
    return cfg


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("${ONEIRIC_SECRET_DB_PASSWORD}", "${secret:DB_PASSWORD}"),
        ("postgres://u:${ONEIRIC_SECRET_DB_PASSWORD}@db/x", "${secret:DB_PASSWORD}"),
        ("${DB_PASSWORD}", "${env:DB_PASSWORD}"),
        ("${HOME}", "${env:HOME}"),
        ("${vault:db/password}", "${secret:NAME}"),
        ("${}", "${env:NAME}"),
        ("prefix ${", "${env:NAME}"),
    ],
)
def test_attack_original_design_secret_syntax_is_not_taken_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, hint: str
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "hunter2-secret")
    cfg = _settings(tmp_path, value)
    with pytest.raises(ConfigError) as error:
        load_settings(cfg)
    message = str(error.value)
    assert "\n" not in message
    assert f"{cfg / 'oneiric.toml'}:2: remote.token" in message, message
    assert hint in message, message
    assert "$${" in message, message  # says how to write a literal ${
    assert "hunter2-secret" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$${ONEIRIC_SECRET_DB_PASSWORD}", "${ONEIRIC_SECRET_DB_PASSWORD}"),
        ("a $${b} and ${env:ONEIRIC_TEST_X}", "a ${b} and x-value"),
        ("$${env:ONEIRIC_TEST_X}", "${env:ONEIRIC_TEST_X}"),
        ("costs $5 {not a ref}", "costs $5 {not a ref}"),
    ],
)
def test_attack_literal_dollar_brace_has_an_escape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("ONEIRIC_TEST_X", "x-value")
    settings = load_settings(_settings(tmp_path, value))
    assert settings.remote["token"] == expected


def test_supported_references_still_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("ONEIRIC_TEST_X", "x-value")
    settings = load_settings(
        _settings(tmp_path, "${env:ONEIRIC_TEST_X}:${secret:DB_PASSWORD}:${env:NOPE_X:-d}")
    )
    token = settings.remote["token"]
    assert token.get_secret_value() == "x-value:hunter2-secret:d"
