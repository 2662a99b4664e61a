"""Attack: a state dir others can write, or a symlink planted at the XDG default, used silently.

Whoever writes the state dir chooses providers (the overlay) and pauses
components, so, like ssh, a group/world-writable or foreign-owned state dir is
refused, directories created are 0700 even under umask 000, and a symlinked
last component is followed only when the operator named it.  Tests run as
root here: real chmod/chown (root may chown to another uid).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneiric.core import ConfigError, load_settings, state_dir

OTHER_UID = 54321


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv("ONEIRIC_STATE_DIR", raising=False)
    monkeypatch.delenv("ONEIRIC_CONFIG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    yield


def one_line(call: object, *fragments: str) -> str:
    with pytest.raises(ConfigError) as error:
        call()  # type: ignore[operator]
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o277], ids=oct)
@pytest.mark.parametrize("how", ["env", "argument", "xdg"])
def test_attack_umask_makes_created_parents_wide_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, umask: int, how: str
) -> None:
    base = tmp_path / "xdg" if how == "xdg" else tmp_path / "a"
    target = base / "oneiric" if how == "xdg" else base / "b" / "c" / "state"
    if how == "env":
        monkeypatch.setenv("ONEIRIC_STATE_DIR", str(target))
    old = os.umask(umask)
    try:
        got = state_dir(target if how == "argument" else None)
    finally:
        restored = os.umask(old)
    assert restored == umask  # the process umask was not changed behind our back
    assert got == target
    created = [target, *[p for p in target.parents if p.is_relative_to(base)]]
    for directory in created:
        assert mode(directory) == 0o700, (directory, oct(mode(directory)))


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777, 0o1777, 0o720, 0o702], ids=oct)
@pytest.mark.parametrize("how", ["env", "argument", "xdg"])
def test_attack_group_or_world_writable_state_dir_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bits: int, how: str
) -> None:
    target = tmp_path / "xdg" / "oneiric" if how == "xdg" else tmp_path / "shared"
    target.mkdir(parents=True)
    target.chmod(bits)
    if how == "env":
        monkeypatch.setenv("ONEIRIC_STATE_DIR", str(target))
    arg = target if how == "argument" else None
    for create in (True, False):
        one_line(
            lambda create=create: state_dir(arg, create=create),
            str(target), "group- or world-writable", f"chmod 700 {target}", "ONEIRIC_STATE_DIR",
        )
    # The overlay in it is not read either: it would choose providers.
    if how != "argument":
        one_line(lambda: load_settings(None), "group- or world-writable")
    target.chmod(0o700)
    assert state_dir(arg) == target


@pytest.mark.parametrize("how", ["env", "argument", "xdg"])
def test_attack_foreign_owned_state_dir_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another uid")
    target = tmp_path / "xdg" / "oneiric" if how == "xdg" else tmp_path / "theirs"
    target.mkdir(parents=True, mode=0o700)
    os.chown(target, OTHER_UID, OTHER_UID)
    if how == "env":
        monkeypatch.setenv("ONEIRIC_STATE_DIR", str(target))
    arg = target if how == "argument" else None
    one_line(lambda: state_dir(arg), str(target), f"owned by uid {OTHER_UID}", "ONEIRIC_STATE_DIR")
    one_line(lambda: state_dir(arg, create=False), f"owned by uid {OTHER_UID}")


def test_attack_symlink_planted_at_the_xdg_default_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker-chosen"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "xdg" / "oneiric"
    link.parent.mkdir()
    link.symlink_to(elsewhere)
    for create in (True, False):
        one_line(
            lambda create=create: state_dir(create=create),
            str(link), "symbolic link", "ONEIRIC_STATE_DIR",
        )


@pytest.mark.parametrize("how", ["env", "argument"])
def test_symlink_named_by_the_operator_is_followed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    if how == "env":
        monkeypatch.setenv("ONEIRIC_STATE_DIR", str(link))
    assert state_dir(link if how == "argument" else None) == link
    # ...but the directory it names is checked like any other.
    real.chmod(0o777)
    one_line(lambda: state_dir(link if how == "argument" else None), "world-writable")


def test_private_existing_dir_is_accepted_and_not_rechmoded(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir(mode=0o750)
    target.chmod(0o750)  # readable by the group is the operator's choice
    assert state_dir(target) == target
    assert mode(target) == 0o750
