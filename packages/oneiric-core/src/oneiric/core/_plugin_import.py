"""Importing plugin modules off the calling thread, each with a deadline.

Plugin modules are imported by one daemon worker thread per ``load_plugins``
call, each with a deadline (``ONEIRIC_PLUGIN_TIMEOUT`` seconds, default 10):
Python cannot interrupt a hung import, so a plugin whose import hangs would
otherwise hang every process (and every CLI command) that loads plugins.  A
module that misses its deadline is reported as a ``PluginError`` and never
imported again in this process: its import lock stays held by the stuck
thread, and the caller must never wait on it.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import threading
import time

from ._errors import ConfigError, PluginError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_PLUGIN_TIMEOUT",
    "import_modules",
    "import_plugin",
    "module_of",
    "plugin_timeout",
]


#: Modules whose import missed its deadline in this process, with that deadline
#: (seconds).  Their import lock is held by a stuck thread: never import them again.
_stuck: dict[str, float] = {}
DEFAULT_PLUGIN_TIMEOUT = 10.0
_TIMEOUT_ENV = "ONEIRIC_PLUGIN_TIMEOUT"


def plugin_timeout() -> float:
    """``ONEIRIC_PLUGIN_TIMEOUT`` (seconds a plugin's import may take), validated."""
    raw = os.environ.get(_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_PLUGIN_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"{_TIMEOUT_ENV}={raw!r} is not a positive number of seconds; "
            f"set it to e.g. {DEFAULT_PLUGIN_TIMEOUT:g} or unset it"
        )
    return value


def module_of(value: str) -> str:
    return value.partition(":")[0].strip()


def _imported(name: str) -> bool:
    """Whether ``name`` is fully imported (not mid-import in some thread)."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return not getattr(getattr(module, "__spec__", None), "_initializing", False)


class _ImportJob:
    """One daemon thread importing ``names`` in order; the caller waits with a per-module deadline.

    One thread for the whole import phase (not one per plugin) keeps discovery
    fast; the caller is woken only when the job ends or the module being
    imported reaches its deadline.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.results: list[tuple[BaseException | None, float]] = []
        self.current: tuple[int, float] | None = None
        self.finished = False
        self.abandoned = False
        self.cond = threading.Condition()

    def _run(self) -> None:
        for index, name in enumerate(self.names):
            with self.cond:
                if self.abandoned:
                    return
                self.current = (index, time.monotonic())
            start = time.perf_counter()
            error: BaseException | None = None
            try:
                importlib.import_module(name)
            except BaseException as exc:  # handed to the caller, which decides
                error = exc
            with self.cond:
                self.results.append((error, time.perf_counter() - start))
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def run(self, timeout: float) -> int | None:
        """Import; return the index of the module that missed its deadline, or None."""
        thread = threading.Thread(target=self._run, name="oneiric-plugin-import", daemon=True)
        with self.cond:
            thread.start()
            try:
                while not self.finished:
                    current = self.current
                    if current is None or current[0] < len(self.results):
                        self.cond.wait(timeout)  # between two modules: look again soon
                        continue
                    remaining = current[1] + timeout - time.monotonic()
                    if remaining <= 0:
                        return current[0]
                    self.cond.wait(remaining)
            finally:
                if not self.finished:
                    self.abandoned = True
        return None


def import_modules(
    names: list[str], timeout: float
) -> dict[str, tuple[BaseException | None, float]]:
    """Import ``names`` off the calling thread: ``{name: (error or None, seconds)}``.

    Modules already imported are not touched (the second ``load_plugins`` of a
    process starts no thread); a module that misses its deadline is recorded in
    ``_stuck`` and its result is a ``PluginError``; the rest are imported by a
    fresh worker.
    """
    results: dict[str, tuple[BaseException | None, float]] = {}
    todo: list[str] = []
    for name in dict.fromkeys(names):
        if name in _stuck:
            results[name] = (_stuck_error(name, _stuck[name], earlier=True), 0.0)
        elif _imported(name):
            results[name] = (None, 0.0)
        else:
            todo.append(name)
    while todo:
        job = _ImportJob(todo)
        late = job.run(timeout)
        for name, result in zip(todo, job.results, strict=False):
            results[name] = result
        if late is None:
            break
        name = todo[late]
        _stuck[name] = timeout
        results[name] = (_stuck_error(name, timeout, earlier=False), timeout)
        todo = [n for n in todo[late + 1 :] if n not in _stuck]
    return results


def _stuck_error(name: str, timeout: float, *, earlier: bool) -> PluginError:
    when = " (earlier in this process; restart it after fixing the plugin)" if earlier else ""
    return PluginError(
        f"import of {name} did not finish within {timeout:g} s{when}; "
        f"set {_TIMEOUT_ENV} or fix the plugin"
    )


def import_plugin(value: str, error: BaseException | None = None) -> object:
    """The plugin object of ``value`` (``module[:attr]``); ``error``: its import failure."""
    if error is not None:
        raise error
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj
