"""SelectionWatcher under hostile input: it never blocks the loop and never stops watching.

A reload cycle that fails for any reason (a parser's ``RecursionError``, a
loader's ``RuntimeError``, a directory where a file was, the config directory
gone) is recorded in status while the last good settings keep serving, and the
next good change - a settings file or an overlay written by ``oneiric swap`` -
still applies.  The settings are parsed off the event loop.  No timing asserts:
threads are recorded, heartbeats counted, eventual states polled.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import ConfigError, Resolver, load_settings, write_overlay
from oneiric.lifecycle import DomainBridge, LifecycleManager, SelectionWatcher
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("use_watchfiles", [True, False], ids=["watchfiles", "polling"])


def _write(conf: Path, provider: str) -> None:
    (conf / "oneiric.toml").write_text(f'[adapter.selections]\ncache = "{provider}"\n')


def _bound(manager: LifecycleManager) -> str:
    return str(DomainBridge("adapter", manager).handle("cache").instance.provider)


def _watcher(conf: Path, resolver: Resolver, manager: LifecycleManager, state: Path,
             use_watchfiles: bool, loader: Any = None) -> SelectionWatcher:
    return SelectionWatcher(
        conf, loader, resolver, lifecycle=manager, state_dir=state,
        use_watchfiles=use_watchfiles, poll_interval=0.5 if use_watchfiles else None,
    )


def _task_alive(watcher: SelectionWatcher) -> bool:
    task = watcher._task
    return task is not None and not task.done()


def _one_line_error(watcher: SelectionWatcher, manager: LifecycleManager) -> str:
    error = watcher.error
    assert error is not None and "\n" not in error
    assert manager.status()["config"][0]["error"] == error
    assert isinstance(watcher.exception, ConfigError)
    return error


# ---------------------------------------------------------- off the loop


async def test_attack_settings_parse_runs_off_the_loop_thread(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path
) -> None:
    threads: list[threading.Thread] = []

    def loader(directory: Path) -> Any:
        threads.append(threading.current_thread())
        return load_settings(directory, state_dir=state)

    manager = make_manager()
    loop_thread = threading.current_thread()
    async with _watcher(conf, resolver, manager, state, False, loader):
        await manager.activate("adapter", "cache")
        _write(conf, "b")
        await apoll_until(lambda: _bound(manager) == "b", message="swap after the edit")
    await manager.shutdown()
    assert len(threads) >= 2  # the initial load and the reload
    assert all(t is not loop_thread for t in threads), threads


async def test_attack_slow_loader_never_blocks_the_loop(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path
) -> None:
    release = threading.Event()
    blocked = threading.Event()
    calls = 0

    def loader(directory: Path) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:  # the reload after the edit blocks until the test releases it
            blocked.set()
            release.wait(15)  # safety net: on a blocked loop nobody else could release it
            blocked.clear()
        return load_settings(directory, state_dir=state)

    ticks_while_blocked = 0

    async def heartbeat() -> None:
        nonlocal ticks_while_blocked
        while True:
            if blocked.is_set():
                ticks_while_blocked += 1
            await asyncio.sleep(0.005)

    manager = make_manager()
    beat = asyncio.create_task(heartbeat())
    try:
        async with _watcher(conf, resolver, manager, state, False, loader):
            await manager.activate("adapter", "cache")
            _write(conf, "b")
            await apoll_until(lambda: ticks_while_blocked >= 5,
                              message="the loop ticks while the parse is blocked")
            release.set()
            await apoll_until(lambda: _bound(manager) == "b", message="swap once it finished")
    finally:
        release.set()
        beat.cancel()
        await manager.shutdown()


# ----------------------------------------------------- every failure recorded


def _deep_toml(depth: int) -> str:
    return '[adapter.selections]\ncache = "b"\n[x]\nv = ' + "[" * depth + "]" * depth + "\n"


def _deep_yaml(depth: int) -> str:
    return "selections:\n  cache: b\nx: " + "[" * depth + "]" * depth + "\n"


def _deep_json(depth: int) -> str:
    return '{"selections": ' + "[" * depth + "]" * depth + "}"


NESTED = {
    "oneiric.toml": lambda conf, state: (conf / "oneiric.toml").write_text(_deep_toml(50_000)),
    "adapters.yaml": lambda conf, state: (conf / "adapters.yaml").write_text(_deep_yaml(50_000)),
    "selections.json": lambda conf, state: (state / "selections.json").write_text(
        _deep_json(200_000)),
}


@MODES
@pytest.mark.parametrize("where", sorted(NESTED))
async def test_attack_deeply_nested_file_is_recorded_and_overlay_still_swaps(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path, where: str,
    use_watchfiles: bool,
) -> None:
    manager = make_manager()
    watcher = _watcher(conf, resolver, manager, state, use_watchfiles)
    async with watcher:
        await manager.activate("adapter", "cache")
        NESTED[where](conf, state)
        await apoll_until(lambda: watcher.error is not None, message="the failure is recorded")
        _one_line_error(watcher, manager)
        assert _bound(manager) == "a" and resolver.selections("adapter") == {"cache": "a"}
        # repair, then `oneiric swap` writes the overlay: it applies
        if where == "selections.json":
            (state / "selections.json").unlink()
        elif where == "adapters.yaml":
            (conf / "adapters.yaml").unlink()
        else:
            _write(conf, "a")
        write_overlay(state, "adapter", "cache", "b")
        await apoll_until(lambda: _bound(manager) == "b", message="the overlay swap applied")
        assert watcher.error is None and _task_alive(watcher)
    await manager.shutdown()


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("loader bug"), KeyError("adapter"), RecursionError("too deep"),
     OSError(5, "I/O error"), TypeError("bad"), ZeroDivisionError("x")],
    ids=lambda e: type(e).__name__,
)
async def test_attack_any_loader_exception_is_recorded_as_config_error(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path, exc: Exception
) -> None:
    fail = False

    def loader(directory: Path) -> Any:
        if fail:
            raise exc
        return load_settings(directory, state_dir=state)

    manager = make_manager()
    watcher = _watcher(conf, resolver, manager, state, False, loader)
    async with watcher:
        await manager.activate("adapter", "cache")
        fail = True
        _write(conf, "b")
        await apoll_until(lambda: watcher.error is not None, message="the failure is recorded")
        error = _one_line_error(watcher, manager)
        assert type(exc).__name__ in error
        assert _bound(manager) == "a" and watcher.failures == 1
        fail = False
        write_overlay(state, "adapter", "cache", "b")
        await apoll_until(lambda: _bound(manager) == "b", message="the next good change applies")
        assert watcher.error is None
    await manager.shutdown()


async def test_attack_failing_initial_load_still_watches(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path
) -> None:
    (conf / "oneiric.toml").write_text(_deep_toml(50_000))
    manager = make_manager()
    watcher = _watcher(conf, resolver, manager, state, False)
    async with watcher:
        assert watcher.error is not None and _task_alive(watcher)
        _write(conf, "b")
        await apoll_until(lambda: resolver.selections("adapter") == {"cache": "b"})
    await manager.shutdown()


# --------------------------------------------------------- files that vanish


@MODES
async def test_attack_config_dir_deleted_and_recreated(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path, use_watchfiles: bool
) -> None:
    manager = make_manager()
    watcher = _watcher(conf, resolver, manager, state, use_watchfiles)
    async with watcher:
        await manager.activate("adapter", "cache")
        shutil.rmtree(conf)
        await apoll_until(lambda: watcher.error is not None, message="the loss is recorded")
        _one_line_error(watcher, manager)
        assert _bound(manager) == "a" and _task_alive(watcher)
        conf.mkdir()
        _write(conf, "b")
        await apoll_until(lambda: _bound(manager) == "b", message="recreated directory applies")
        assert watcher.error is None
    await manager.shutdown()


@MODES
async def test_attack_settings_file_replaced_by_a_directory(
    make_manager: Any, resolver: Resolver, conf: Path, state: Path, use_watchfiles: bool
) -> None:
    manager = make_manager()
    watcher = _watcher(conf, resolver, manager, state, use_watchfiles)
    async with watcher:
        await manager.activate("adapter", "cache")
        reloads = watcher.reloads + watcher.failures
        (conf / "oneiric.toml").unlink()
        (conf / "oneiric.toml").mkdir()
        await apoll_until(lambda: watcher.reloads + watcher.failures > reloads,
                          message="the change was seen")
        assert _task_alive(watcher)
        (conf / "oneiric.toml").rmdir()
        _write(conf, "b")
        await apoll_until(lambda: _bound(manager) == "b", message="the file back applies")
        assert watcher.error is None
    await manager.shutdown()
