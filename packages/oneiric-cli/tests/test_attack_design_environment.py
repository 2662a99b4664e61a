"""Issue 11: the CLI honours or rejects the original design's environment variables at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from oneiric.core import ConfigError, Resolver
from oneiric.lifecycle import SelectionWatcher


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ONEIRIC_PROFILE": "lambda"}, "ONEIRIC_PROFILE='lambda' is not supported"),
        ({"ONEIRIC_ACTIVITY_STORE": "/srv/a.db"}, "ONEIRIC_ACTIVITY_STORE='/srv/a.db'"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose' is not a log level"),
    ],
    ids=["profile", "activity-store", "log-level"],
)
def test_attack_cli_rejects_design_era_variable_in_one_line(
    oneiric: Callable[..., Any], env: dict[str, str], fragment: str
) -> None:
    result = oneiric("list", env=env)
    assert result.code == 4, (result.code, result.err)
    assert fragment in result.error_line()
    assert result.out == ""


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({}, logging.ERROR),
        ({"LOG_LEVEL": "info"}, logging.INFO),
        ({"LOG_LEVEL": "DEBUG"}, logging.DEBUG),
        ({"LOG_LEVEL": "debug", "ONEIRIC_LOG_LEVEL": "WARNING"}, logging.WARNING),
    ],
    ids=["default", "info", "debug", "oneiric-wins"],
)
def test_attack_cli_honours_log_level(
    oneiric_inproc: Callable[..., Any], env: dict[str, str], level: int
) -> None:
    """The CLI's log level follows LOG_LEVEL when ONEIRIC_LOG_LEVEL is not set."""
    root = logging.getLogger("oneiric")
    before = root.level
    try:
        result = oneiric_inproc("list", env={"ONEIRIC_LOG_LEVEL": "", **env})
        assert result.code == 0, result.err
        assert root.level == level
    finally:
        root.setLevel(before)


def test_attack_watcher_rejects_design_era_profile(
    workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEIRIC_PROFILE", "lambda")

    async def build() -> None:
        SelectionWatcher(workspace.config, None, Resolver(), state_dir=workspace.state)

    with pytest.raises(ConfigError, match="ONEIRIC_PROFILE"):
        asyncio.run(build())
