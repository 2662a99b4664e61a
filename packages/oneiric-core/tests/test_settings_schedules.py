"""``[schedules.<id>]``: a reserved section of oneiric.toml, passed raw to oneiric-runtime.

Like ``[automations]``: the runtime owns the grammar (cron, zones, targets,
``${schedule...}`` payload references), so the loader keeps those references
verbatim, still resolves ``${env:}``/``${secret:}`` and still refuses a
malformed env/secret reference in one line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from oneiric.core import ConfigError, Settings, load_settings


def _load(tmp_path: Path, toml: str, **kwargs: object) -> Settings:
    config = tmp_path / "settings"
    config.mkdir(exist_ok=True)
    (config / "oneiric.toml").write_text(textwrap.dedent(toml))
    return load_settings(config, state_dir=tmp_path / "state", **kwargs)  # type: ignore[arg-type]


def test_schedules_is_a_reserved_section_not_a_domain(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
        [schedules.nightly]
        cron = "30 2 * * *"
        timezone = "America/New_York"
        run = "workflow:report"
        payload = { when = "${schedule.fire_time}", region = "${env:REGION}" }
    """, environ={"REGION": "eu"})
    assert "schedules" not in settings.domains
    assert settings.schedules == {"nightly": {
        "cron": "30 2 * * *", "timezone": "America/New_York", "run": "workflow:report",
        "payload": {"when": "${schedule.fire_time}", "region": "eu"},
    }}
    assert settings.as_dict()["schedules"]["nightly"]["cron"] == "30 2 * * *"


@pytest.mark.parametrize("reference", ["${env:}", "${secret:X:-d}"])
def test_attack_malformed_env_reference_in_a_schedule_is_still_refused(
    tmp_path: Path, reference: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"""
            [schedules.a]
            payload = {{ x = "{reference}" }}
        """, environ={})
    assert "schedules.a.payload.x" in str(info.value)
    assert "\n" not in str(info.value)


def test_attack_schedules_file_is_refused_as_a_domain(tmp_path: Path) -> None:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "schedules.toml").write_text("[a]\nevery = '5m'\n")
    with pytest.raises(ConfigError, match="reserved section"):
        load_settings(config, state_dir=tmp_path / "state")


def test_attack_schedules_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[schedules\] must be a table"):
        _load(tmp_path, 'schedules = "x"\n')
