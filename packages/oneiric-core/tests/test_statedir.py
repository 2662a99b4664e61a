"""The state directory: where it is, and that it is private and usable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oneiric.core import ConfigError, state_dir


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ONEIRIC_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_env_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "explicit"))
    assert state_dir(create=False) == tmp_path / "explicit"


def test_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir(create=False) == tmp_path / "xdg" / "oneiric"


def test_xdg_default_and_relative_xdg_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = tmp_path / "home" / ".local" / "state" / "oneiric"
    assert state_dir(create=False) == expected
    # The XDG spec says relative paths are invalid and must be ignored.
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    assert state_dir(create=False) == expected


def test_explicit_path_argument(tmp_path: Path) -> None:
    assert state_dir(tmp_path / "arg", create=False) == tmp_path / "arg"
    assert not (tmp_path / "arg").exists()


def test_created_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state"
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(target))
    old_umask = os.umask(0o022)
    try:
        assert state_dir() == target
    finally:
        os.umask(old_umask)
    assert target.is_dir()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert state_dir() == target  # idempotent


def test_not_created_when_asked(tmp_path: Path) -> None:
    state_dir(tmp_path / "lazy", create=False)
    assert not (tmp_path / "lazy").exists()


def test_unusable_path_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(blocker / "state"))
    with pytest.raises(ConfigError) as error:
        state_dir()
    message = str(error.value)
    assert "\n" not in message
    assert f"cannot create state directory {str(blocker / 'state')!r}" in message
    assert "set ONEIRIC_STATE_DIR to a writable directory" in message


def test_a_file_is_not_a_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as error:
        state_dir(blocker)
    message = str(error.value)
    assert "\n" not in message
    assert "set ONEIRIC_STATE_DIR to a writable directory" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_directory_is_a_config_error(tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match=r"is not writable; set ONEIRIC_STATE_DIR"):
            state_dir(target)
    finally:
        target.chmod(0o700)
