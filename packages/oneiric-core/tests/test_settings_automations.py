"""``[automations.<id>]``: a reserved section of oneiric.toml, passed raw to oneiric-runtime.

Its payloads are templates (``${event.payload.path}``): the settings loader
must keep those references verbatim (the runtime checks and fills them), still
resolve ``${env:}``/``${secret:}``, and still refuse a malformed env/secret
reference in one line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from oneiric.core import ConfigError, Settings, load_settings


def _load(tmp_path: Path, toml: str, **kwargs: object) -> Settings:
    config = tmp_path / "settings"
    config.mkdir(exist_ok=True)
    (config / "oneiric.toml").write_text(textwrap.dedent(toml))
    return load_settings(config, state_dir=tmp_path / "state", **kwargs)  # type: ignore[arg-type]


def test_automations_is_a_reserved_section_not_a_domain(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
        [automations.ship]
        on = "orders.paid"
        run = "action:debug.console"
        payload = { order = "${event.payload.order.id}", topic = "${event.topic}" }
    """)
    assert "automations" not in settings.domains
    assert settings.automations == {"ship": {
        "on": "orders.paid", "run": "action:debug.console",
        "payload": {"order": "${event.payload.order.id}", "topic": "${event.topic}"},
    }}
    assert settings.as_dict()["automations"]["ship"]["on"] == "orders.paid"


def test_automation_templates_keep_the_escape_for_the_runtime(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
        [automations.a]
        payload = { text = "price $${event.id} for ${event.id}" }
    """)
    assert settings.automations["a"]["payload"]["text"] == "price $${event.id} for ${event.id}"


def test_automation_payload_still_resolves_env_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_HOOK", "s3cr3t")
    settings = _load(tmp_path, """
        [automations.a]
        payload = { region = "${env:REGION}", token = "${secret:HOOK} ${event.id}" }
    """, environ={"REGION": "eu"})
    payload = settings.automations["a"]["payload"]
    assert payload["region"] == "eu"
    assert isinstance(payload["token"], SecretStr)
    assert payload["token"].get_secret_value() == "s3cr3t ${event.id}"
    assert "s3cr3t" not in str(settings.as_dict())


@pytest.mark.parametrize("reference", ["${env:}", "${secret:X:-d}", "${ENV:lower case}"])
def test_attack_malformed_env_reference_in_an_automation_is_still_refused(
    tmp_path: Path, reference: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"""
            [automations.a]
            payload = {{ x = "{reference}" }}
        """, environ={})
    message = str(info.value)
    assert "automations.a.payload.x" in message
    assert "\n" not in message


def test_attack_other_sections_still_refuse_unknown_references(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"host\.note: unsupported reference"):
        _load(tmp_path, """
            [host]
            note = "${event.id}"
        """)


def test_attack_automations_file_is_refused_as_a_domain(tmp_path: Path) -> None:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "automations.toml").write_text("[a]\non = 'x'\n")
    with pytest.raises(ConfigError, match="reserved section"):
        load_settings(config, state_dir=tmp_path / "state")


def test_attack_automations_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[automations\] must be a table"):
        _load(tmp_path, 'automations = "x"\n')
