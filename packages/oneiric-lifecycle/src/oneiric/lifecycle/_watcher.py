"""``SelectionWatcher``: settings files and the selection overlay → the resolver.

The watcher's only write is ``Settings.apply(resolver)`` (selections); it
never swaps.  The lifecycle's resolver subscription sees the changed keys and
swaps them, so a swap requested by editing a file, by ``oneiric swap`` (which
writes ``<state dir>/selections.json``) or by code all take the same path,
with the same rollback, pause/drain deferral and status.

watchfiles (inotify/FSEvents) is used when it imports and starts; otherwise,
or when ``use_watchfiles=False``, the watcher polls file contents every
``poll_interval`` seconds.  Either way a reload happens only when the content
of a relevant file changed, and an invalid file is recorded (status, log)
while the current selections and providers stay as they are.

Hostile input: hashing and parsing run in a worker thread
(``asyncio.to_thread``), so a huge or slow settings file never blocks the
application's event loop; only applying the parsed selections runs on it.
Every failure of a reload cycle - a ``ConfigError``, a parser's
``RecursionError``, a loader's bug, the config directory deleted - is recorded
as a one-line ``ConfigError`` and the watcher keeps watching, so the next good
change (a fixed file, an overlay written by ``oneiric swap``) applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from oneiric.core import ConfigError, OneiricError, Resolver, get_logger, state_dir
from oneiric.core.helpers import OVERLAY_FILE, check_environment, one_line

from ._config import LifecycleConfig
from ._status import WatcherStatus, timestamp

if TYPE_CHECKING:
    from oneiric.core import Settings

    from ._manager import LifecycleManager

__all__ = ["SelectionWatcher"]

_log = get_logger("oneiric.lifecycle.watcher")

_SUFFIXES = (".toml", ".yaml", ".yml")


class SelectionWatcher:
    """Reload settings when files change and apply their selections to ``resolver``.

    ``settings_loader(config_dir) -> Settings`` defaults to
    ``load_settings(config_dir, state_dir=state_dir)``.  Pass ``lifecycle`` so
    reload errors show in its status and new provider settings/swap policies
    reach it.  Use as ``async with watcher:`` or ``await watcher.start()`` /
    ``await watcher.stop()``.
    """

    def __init__(
        self,
        config_dir: str | os.PathLike[str],
        settings_loader: Callable[[Path], Settings] | None,
        resolver: Resolver,
        *,
        lifecycle: LifecycleManager | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        poll_interval: float | None = None,
        use_watchfiles: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # ONEIRIC_PROFILE / ONEIRIC_ACTIVITY_STORE / LOG_LEVEL this version cannot
        # honour: a one-line ConfigError now, not a setting silently ignored
        check_environment()
        self.config_dir = Path(config_dir)
        self.resolver = resolver
        self.lifecycle = lifecycle
        self._state_dir_arg = state_dir
        self.state_dir: Path | None = Path(state_dir) if state_dir is not None else None
        self._loader = settings_loader
        if poll_interval is None:
            poll_interval = (
                lifecycle.config.watch_poll_interval
                if lifecycle is not None
                else LifecycleConfig().watch_poll_interval
            )
        self.poll_interval = max(float(poll_interval), 0.01)
        self._use_watchfiles = use_watchfiles
        self._clock = clock
        self.mode = "stopped"
        self.error: str | None = None
        #: the last reload failure (unknown exceptions wrapped), None after a good reload
        self.exception: ConfigError | OneiricError | None = None
        self.error_at: float | None = None
        self.applied_at: float | None = None
        self.reloads = 0
        self.failures = 0
        self._fingerprint: tuple[tuple[str, str], ...] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        if lifecycle is not None:
            lifecycle._watchers.append(self)

    # ----------------------------------------------------------------- files

    def _files(self) -> list[Path]:
        """The files whose content decides the settings (missing or unreadable: still listed)."""
        files: list[Path] = []
        try:
            if self.config_dir.is_file():
                files.append(self.config_dir)
            elif self.config_dir.is_dir():
                # a directory named like a settings file is listed too: the
                # loader decides what it means, the fingerprint sees the change
                files.extend(
                    p for p in sorted(self.config_dir.iterdir())
                    if p.suffix.lower() in _SUFFIXES
                )
        except OSError:  # deleted (or made unreadable) while we looked
            files.append(self.config_dir)
        if self.state_dir is not None:
            files.append(self.state_dir / OVERLAY_FILE)
        return files

    def _current_fingerprint(self) -> tuple[tuple[str, str], ...]:
        parts: list[tuple[str, str]] = []
        for path in self._files():
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except IsADirectoryError:
                digest = "dir"
            except OSError:
                digest = "-"
            parts.append((str(path), digest))
        return tuple(parts)

    def _relevant(self, _change: object, path: str) -> bool:
        target = Path(path)
        if target.name == OVERLAY_FILE:
            return True
        return target.suffix.lower() in _SUFFIXES

    # ---------------------------------------------------------------- reload

    def _load(self) -> Settings:
        if self._loader is not None:
            return self._loader(self.config_dir)
        from oneiric.core import load_settings

        return load_settings(self.config_dir, state_dir=self.state_dir)

    def _prepare(self) -> Settings:
        """Load and validate the settings; blocking, so callers on a loop run it in a thread."""
        settings = self._load()
        if self.lifecycle is not None:
            LifecycleConfig.from_settings(settings)  # validate before changing anything
        return settings

    def _overlay_digest(self) -> str | None:
        """The overlay's part of the current fingerprint (None before the first load)."""
        if self._fingerprint is None or self.state_dir is None:
            return None
        overlay = str(self.state_dir / OVERLAY_FILE)
        return next((digest for path, digest in self._fingerprint if path == overlay), None)

    def reload(self) -> bool:
        """Load settings now and apply their selections; return whether they applied.

        An invalid file (or settings that fail validation, or any other failure
        of the reload) changes nothing: the error is recorded in ``status()`` and
        the lifecycle's status.  Blocking: code on the event loop awaits
        ``areload()`` instead.
        """
        before = self._overlay_digest()
        self._fingerprint = self._current_fingerprint()
        try:
            settings = self._prepare()
        except Exception as exc:
            return self._failed(exc)
        return self._apply(settings, overlay_before=before)

    async def areload(self) -> bool:
        """``reload()`` with hashing and parsing off the event loop (in a worker thread)."""
        before = self._overlay_digest()
        try:
            self._fingerprint = await asyncio.to_thread(self._current_fingerprint)
            settings = await asyncio.to_thread(self._prepare)
        except Exception as exc:
            return self._failed(exc)
        return self._apply(settings, overlay_before=before)

    def _apply(self, settings: Settings, *, overlay_before: str | None = None) -> bool:
        """Apply ``settings``; a changed overlay (every ``oneiric swap`` changes it) reconciles.

        A re-issued selection changes no selection, so the resolver reports no
        change; the lifecycle is asked to swap selected keys whose bound
        provider is not the winner (e.g. a swap that failed before).
        """
        try:
            settings.apply(self.resolver)
            if self.lifecycle is not None:
                self.lifecycle.set_settings(settings)
        except Exception as exc:
            return self._failed(exc)
        self.reloads += 1
        self.error = None
        self.exception = None
        self.error_at = None
        self.applied_at = self._clock()
        _log.info("settings reloaded", config_dir=str(self.config_dir))
        if (
            self.lifecycle is not None
            and overlay_before is not None
            and self._overlay_digest() != overlay_before
        ):
            self.lifecycle.reconcile_selections()
        self._notify()
        return True

    def _failed(self, exc: Exception) -> bool:
        """Record a failed reload cycle; the current selections and providers keep serving."""
        error = _as_config_error(exc, self.config_dir)
        self.failures += 1
        self.exception = error
        self.error = one_line(error)
        self.error_at = self._clock()
        _log.error("settings reload failed; current selections kept", error=self.error)
        self._notify()
        return False

    async def _maybe_reload(self) -> None:
        """Reload if a relevant file changed; never raises (the watch loop must survive)."""
        try:
            changed = await asyncio.to_thread(self._current_fingerprint) != self._fingerprint
        except Exception as exc:
            self._failed(exc)
            return
        if changed:
            await self.areload()

    def _notify(self) -> None:
        if self.lifecycle is not None:
            self.lifecycle._dirty()

    # --------------------------------------------------------------- running

    async def start(self) -> None:
        """Apply the current settings once, then watch for changes in the background."""
        if self._task is not None:
            return
        if self.state_dir is None:
            self.state_dir = state_dir(self._state_dir_arg)
        await self.areload()
        # provisional: _run falls back to polling if watchfiles cannot start
        self.mode = "polling" if self._use_watchfiles is False else "watchfiles"
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="oneiric-selection-watcher"
        )

    async def stop(self) -> None:
        """Stop watching (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        assert self._stop is not None
        self._stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.mode = "stopped"

    async def _run(self) -> None:
        assert self._stop is not None
        if self._use_watchfiles is not False:
            try:
                await self._run_watchfiles()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # missing module, inotify limits, ...
                if self._use_watchfiles:
                    _log.warning("watchfiles unavailable; polling instead", error=str(exc))
        self.mode = "polling"
        self._notify()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_interval)
            if not self._stop.is_set():
                await self._maybe_reload()

    async def _run_watchfiles(self) -> None:
        from watchfiles import awatch  # lazy: only a running watcher needs it

        assert self._stop is not None and self.state_dir is not None
        roots = {self.config_dir if self.config_dir.is_dir() else self.config_dir.parent}
        roots.add(self.state_dir)
        for root in roots:
            root.mkdir(parents=True, exist_ok=True)
        self.mode = "watchfiles"
        self._notify()
        async for _changes in awatch(
            *sorted(roots),
            watch_filter=self._relevant,
            stop_event=self._stop,
            debounce=200,
            step=50,
            recursive=False,
            # also wake up every poll interval: catches a change that raced the
            # start of the OS watcher, at the cost of hashing a few small files
            rust_timeout=int(self.poll_interval * 1000),
            yield_on_timeout=True,
        ):
            await self._maybe_reload()

    async def __aenter__(self) -> SelectionWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def status(self) -> WatcherStatus:
        """The watcher's part of the lifecycle status."""
        return {
            "config_dir": str(self.config_dir),
            "state_dir": str(self.state_dir) if self.state_dir is not None else None,
            "mode": self.mode,
            "error": self.error,
            "error_at": timestamp(self.error_at),
            "applied_at": timestamp(self.applied_at),
            "reloads": self.reloads,
            "failures": self.failures,
        }

    def __repr__(self) -> str:
        return f"<SelectionWatcher {self.config_dir} mode={self.mode}>"


def _as_config_error(exc: Exception, config_dir: Path) -> ConfigError | OneiricError:
    """``exc`` as a one-line Oneiric error: unknown exceptions become ``ConfigError``."""
    if isinstance(exc, OneiricError):
        return exc
    if isinstance(exc, RecursionError):
        detail = "settings nested too deeply (RecursionError)"
    else:
        text = one_line(exc)
        detail = f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
    error = ConfigError(
        f"reloading settings from {config_dir} failed: {detail}; the current selections "
        "keep serving; fix the files (or the settings loader) and save again"
    )
    error.__cause__ = exc
    return error
