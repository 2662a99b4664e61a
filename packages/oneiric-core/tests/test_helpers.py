"""The shared mechanisms in ``oneiric.core.helpers``: one home each, exercised for real."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from oneiric.core import (
    ComponentPaused,
    ConfigError,
    FactoryError,
    NotRegisteredError,
    OneiricError,
    SelectionUnavailableError,
    SwapVetoed,
)
from oneiric.core.helpers import (
    EXIT_CODES,
    atomic_write,
    error_category,
    exit_code_for,
    format_timestamp,
    one_line,
    parse_timestamp,
    quote_name,
)

# ------------------------------------------------------------------ one line


def test_one_line_folds_every_line_break() -> None:
    assert one_line(ValueError("first\nsecond\r\n\tthird  ")) == "first second third"
    assert one_line("a\u2028b") == "a b"


def test_one_line_names_os_errors_by_file_and_empty_messages_by_type() -> None:
    assert one_line(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "No such file or directory: /x"
    )
    assert one_line(KeyError()) == "KeyError"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("adapter.cache", "adapter.cache"),
        ("a\nb", "'a\\nb'"),
        ("", "''"),
        ("a b", "'a b'"),
        ("x\u2028y", "'x\\u2028y'"),
        (42, "42"),
    ],
)
def test_quote_name_keeps_plain_names_and_quotes_the_rest(name: object, shown: str) -> None:
    assert quote_name(name) == shown


# ----------------------------------------------------------------- timestamps


def test_one_timestamp_format_from_datetimes_and_posix_seconds() -> None:
    moment = datetime(2026, 11, 30, 6, 0, 55, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-30T06:00:55.123Z"
    assert format_timestamp(moment.timestamp()) == "2026-11-30T06:00:55.123Z"
    other_zone = moment.astimezone(timezone(timedelta(hours=-5)))
    assert format_timestamp(other_zone) == "2026-11-30T06:00:55.123Z"


def test_manifest_form_has_whole_seconds() -> None:
    moment = datetime(2026, 11, 30, 6, 0, 55, 987654, tzinfo=UTC)
    assert format_timestamp(moment, seconds=True) == "2026-11-30T06:00:55Z"
    assert parse_timestamp(format_timestamp(moment, seconds=True)) == moment.replace(microsecond=0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        format_timestamp(datetime(2026, 1, 1))


def test_parse_timestamp_round_trips_and_accepts_manifest_shapes() -> None:
    text = format_timestamp(datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC))
    assert parse_timestamp(text) == datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)
    assert parse_timestamp("2026-01-31T12:00:00Z").tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T12:00:00Z\n",
        "2026-01-31T12:00:00+00:00",
        "2026-01-31T12:00:00",
        "2026-13-31T12:00:00Z",
        "2026-01-31 12:00:00Z",
        "",
    ],
)
def test_attack_parse_timestamp_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text)


# ------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_whole_file_private_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    old_umask = os.umask(0)
    try:
        atomic_write(target, b"new content")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_write_never_writes_through_a_symlink_at_the_target(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep me")
    target = tmp_path / "status.json"
    target.symlink_to(outside)
    atomic_write(target, b"snapshot", durable=False)
    assert outside.read_text() == "keep me"
    assert not target.is_symlink() and target.read_bytes() == b"snapshot"


def test_atomic_write_failure_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "child").write_text("x")
    with pytest.raises(OSError):
        atomic_write(target, b"data")
    assert target.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


# --------------------------------------------------------- error categories


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (NotRegisteredError("adapter", "cache"), "not_found"),
        (SelectionUnavailableError("adapter", "cache", "redis", "not registered"), "not_found"),
        (SelectionUnavailableError("adapter", "cache", "redis", "vetoed by p: no"), "refused"),
        (ConfigError("bad"), "invalid"),
        (FactoryError("bad"), "invalid"),
        (SwapVetoed("no"), "refused"),
        (ComponentPaused("paused"), "unavailable"),
        (OneiricError("?"), "unexpected"),
        (FileNotFoundError("x"), "not_found"),
        (ModuleNotFoundError("x"), "not_found"),
        (IsADirectoryError("x"), "invalid"),
        (ValueError("x"), "invalid"),
        (KeyError("x"), "unexpected"),
    ],
)
def test_every_error_has_one_category_and_exit_code(exc: BaseException, category: str) -> None:
    assert error_category(exc) == category
    assert exit_code_for(exc) == EXIT_CODES[category]
    if isinstance(exc, OneiricError):
        assert exc.exit_code == EXIT_CODES[category]


def test_a_package_declares_its_category_where_it_defines_the_error() -> None:
    class Throttled(OneiricError):
        category = "unavailable"

    assert exit_code_for(Throttled("slow down")) == 5


def test_an_instance_narrows_its_class_category_without_touching_the_class() -> None:
    class StoreProblem(OneiricError):
        category = "unavailable"

    broken = StoreProblem("store f is not SQLite", category="invalid")
    locked = StoreProblem("store f is locked")
    assert (str(broken), broken.category, exit_code_for(broken)) == (
        "store f is not SQLite", "invalid", EXIT_CODES["invalid"])
    assert (locked.category, StoreProblem.category) == ("unavailable", "unavailable")
    assert broken.args == ("store f is not SQLite",)


def test_a_foreign_exit_code_is_honoured_but_not_for_oneiric_errors() -> None:
    class UsageProblem(Exception):
        exit_code = 2

    assert exit_code_for(UsageProblem()) == 2


# ------------------------------------------------------------------- locks


@pytest.fixture
def held_lock(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real other process holding the lock on ``tmp_path/lock`` until told to let go."""
    import subprocess
    import sys

    lock = tmp_path / "lock"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from oneiric.core.helpers import exclusive_lock\n"
        "with exclusive_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield lock, proc
    if proc.poll() is None:
        proc.communicate("\n", timeout=60)


def test_lock_held_by_another_process_times_out_then_is_taken(held_lock) -> None:  # type: ignore[no-untyped-def]
    from oneiric.core.helpers import exclusive_lock

    lock, proc = held_lock
    with pytest.raises(TimeoutError, match="waiting for"), exclusive_lock(lock, timeout=0.2):
        pass
    proc.communicate("\n", timeout=60)
    with exclusive_lock(lock, timeout=30):
        pass


def test_async_lock_polls_without_blocking_the_loop(held_lock) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from oneiric.core.helpers import async_exclusive_lock

    lock, proc = held_lock

    async def main() -> int:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        with pytest.raises(TimeoutError):
            async with async_exclusive_lock(lock, timeout=0.2):
                pass
        beat.cancel()
        return ticks

    assert asyncio.run(main()) > 1  # the loop ran while the lock was polled
    proc.communicate("\n", timeout=60)

    async def take() -> None:
        async with async_exclusive_lock(lock, timeout=30):
            pass

    asyncio.run(take())


def test_attack_lock_file_symlink_is_not_followed(tmp_path: Path) -> None:
    from oneiric.core.helpers import exclusive_lock

    target = tmp_path / "elsewhere"
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(OSError), exclusive_lock(tmp_path / "lock"):
        pass
    assert not target.exists()


# ------------------------------------------------------------- lazy exports


def test_lazy_exports_import_on_first_use_and_then_are_plain_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from oneiric.core.helpers import lazy_exports\n"
        "__getattr__ = lazy_exports(__name__, {'Heavy': '_heavy', 'Other': '._heavy'})\n"
    )
    (pkg / "_heavy.py").write_text("Heavy = 'heavy'\nOther = 'other'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg  # type: ignore[import-not-found]

    try:
        assert "lazypkg._heavy" not in sys.modules
        assert lazypkg.Heavy == "heavy" and lazypkg.Other == "other"
        assert "lazypkg._heavy" in sys.modules and "Heavy" in vars(lazypkg)
        with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nope'"):
            _ = lazypkg.nope
    finally:
        for name in ("lazypkg", "lazypkg._heavy"):
            sys.modules.pop(name, None)


def test_apply_overlay_sets_every_scope_without_settings_models(tmp_path: Path) -> None:
    from oneiric.core import Candidate, Resolver, write_overlay
    from oneiric.core.helpers import apply_overlay

    state = tmp_path / "state"
    assert apply_overlay(Resolver(), tmp_path) is False  # no overlay: nothing to do
    write_overlay(state, "adapter", "cache", "redis")
    write_overlay(state, "adapter", "cache", "memory", tenant="acme")
    resolver = Resolver()
    for name in ("memory", "redis"):
        resolver.register(Candidate("adapter", "cache", name, "collections:OrderedDict"))
    assert apply_overlay(resolver, state) is True
    assert resolver.resolve("adapter", "cache").provider == "redis"
    assert resolver.resolve("adapter", "cache", tenant="acme").provider == "memory"
