"""Issue 11: the original design's environment variables are honoured or rejected in one line.

``ONEIRIC_PROFILE``, ``ONEIRIC_ACTIVITY_STORE`` and ``LOG_LEVEL`` were silently
ignored.  ``LOG_LEVEL`` is honoured (after ``ONEIRIC_LOG_LEVEL``); a profile
other than ``default`` or ``serverless`` (the orchestrator's profile) and any
activity-store path are ConfigErrors naming what exists.
"""

from __future__ import annotations

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import (
    check_environment,
    log_level_from_environment,
    profile_from_environment,
)


@pytest.mark.parametrize(
    ("environ", "fragments"),
    [
        ({"ONEIRIC_PROFILE": "lambda"}, ("ONEIRIC_PROFILE='lambda'", "default, serverless")),
        ({"ONEIRIC_PROFILE": "prod"}, ("ONEIRIC_PROFILE='prod'", "profiles that exist")),
        ({"ONEIRIC_ACTIVITY_STORE": "/srv/activity.db"},
         ("ONEIRIC_ACTIVITY_STORE='/srv/activity.db'", "ONEIRIC_STATE_DIR")),
        ({"LOG_LEVEL": "verbose"}, ("LOG_LEVEL='verbose'", "DEBUG", "ONEIRIC_LOG_LEVEL")),
        ({"ONEIRIC_LOG_LEVEL": "loud"}, ("ONEIRIC_LOG_LEVEL='loud'", "INFO")),
    ],
    ids=["profile-lambda", "profile-other", "activity-store", "log-level", "oneiric-log"],
)
def test_attack_design_era_variable_is_rejected_in_one_line(
    environ: dict[str, str], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as error:
        check_environment(environ)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert error.value.exit_code == 4


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"ONEIRIC_PROFILE": ""},
        {"ONEIRIC_PROFILE": "default"},
        {"ONEIRIC_PROFILE": "Default"},
        {"ONEIRIC_PROFILE": "serverless"},
        {"ONEIRIC_PROFILE": " Serverless "},
        {"ONEIRIC_ACTIVITY_STORE": ""},
        {"LOG_LEVEL": "debug"},
        {"LOG_LEVEL": "verbose", "ONEIRIC_LOG_LEVEL": "INFO"},  # ONEIRIC_ wins
    ],
)
def test_supported_environment_passes(environ: dict[str, str]) -> None:
    check_environment(environ)


@pytest.mark.parametrize(
    ("environ", "level"),
    [
        ({}, "ERROR"),
        ({"LOG_LEVEL": "info"}, "INFO"),
        ({"LOG_LEVEL": "warn"}, "WARNING"),
        ({"LOG_LEVEL": "info", "ONEIRIC_LOG_LEVEL": "debug"}, "DEBUG"),
        ({"LOG_LEVEL": " ", "ONEIRIC_LOG_LEVEL": ""}, "ERROR"),
    ],
)
def test_attack_log_level_from_design_variable_is_honoured(
    environ: dict[str, str], level: str
) -> None:
    assert log_level_from_environment("ERROR", environ) == level


def test_check_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_PROFILE", "edge")
    with pytest.raises(ConfigError):
        check_environment()
    monkeypatch.delenv("ONEIRIC_PROFILE")
    check_environment()


@pytest.mark.parametrize(
    ("environ", "profile"),
    [
        ({}, "default"),
        ({"ONEIRIC_PROFILE": ""}, "default"),
        ({"ONEIRIC_PROFILE": "DEFAULT"}, "default"),
        ({"ONEIRIC_PROFILE": "serverless"}, "serverless"),
        ({"ONEIRIC_PROFILE": " Serverless "}, "serverless"),
    ],
)
def test_serverless_profile_is_accepted_and_read(environ: dict[str, str], profile: str) -> None:
    assert profile_from_environment(environ) == profile


def test_attack_unknown_profile_is_refused_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_PROFILE", "server-less")
    with pytest.raises(ConfigError) as error:
        profile_from_environment()
    assert "\n" not in str(error.value)
    assert "default, serverless" in str(error.value)
