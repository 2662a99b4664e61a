"""Entry-point discovery: find, import and register plugin distributions.

``load_plugins`` is deterministic (sorted by distribution, then entry point),
isolates every failure to the plugin that caused it, registers all candidates
in one resolver batch and is idempotent per resolver.

Discovery reads ``entry_points.txt`` of the installed distributions directly
(one ``scandir`` per ``sys.path`` directory, a substring test before parsing)
and caches the result per process, keyed by the path directories' mtimes,
which change whenever a distribution is installed or removed.

Plugin modules are imported by one daemon worker thread per ``load_plugins``
call, each with a deadline (``ONEIRIC_PLUGIN_TIMEOUT`` seconds, default 10):
Python cannot interrupt a hung import, so a plugin whose import hangs would
otherwise hang every process (and every CLI command) that loads plugins.  A
module that misses its deadline is reported as a ``PluginError`` and never
imported again in this process: its import lock stays held by the stuck
thread, and the caller must never wait on it.  Hooks (``oneiric_register``)
run on the caller's thread, after the import phase.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
import threading
import time
import weakref
from types import ModuleType

from ._candidate import Candidate, Source
from ._errors import ConfigError, PluginError
from ._frozen import Frozen
from ._hooks import HOOKSPEC_VERSION, PROJECT
from ._logging import get_logger

# pluggy and typing are imported only when needed: ``import oneiric.core`` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    import pluggy

    from ._resolver import Resolver

__all__ = [
    "DiscoveryReport",
    "EntryPointInfo",
    "PluginLoad",
    "PluginRegistry",
    "check_namespace",
    "discover_entry_points",
    "load_plugins",
]

_log = get_logger("oneiric.core.plugins")
_NORMALIZE = re.compile(r"[-_.]+")


def _normalize(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


class EntryPointInfo(Frozen):
    """One entry point of the plugin group, as found on disk."""

    __slots__ = ("distribution", "name", "value", "version")
    _fields = ("distribution", "version", "name", "value")
    distribution: str
    version: str
    name: str
    value: str  # "module" or "module:attr"

    def __init__(self, distribution: str, version: str, name: str, value: str) -> None:
        _set = object.__setattr__
        _set(self, "distribution", distribution)
        _set(self, "version", version)
        _set(self, "name", name)
        _set(self, "value", value)

    @property
    def plugin_name(self) -> str:
        """The name the plugin is registered under with pluggy: ``dist:entry point``."""
        return f"{self.distribution}:{self.name}"


class PluginLoad(Frozen):
    """What happened to one plugin during ``load_plugins``."""

    __slots__ = (
        "candidates", "distribution", "entry_point", "error", "load_time_s", "module", "version"
    )
    _fields = (
        "distribution", "version", "entry_point", "module", "candidates", "load_time_s", "error"
    )
    distribution: str
    version: str
    entry_point: str
    module: str
    candidates: int
    load_time_s: float
    error: str | None

    def __init__(
        self,
        distribution: str,
        version: str,
        entry_point: str,
        module: str,
        candidates: int,
        load_time_s: float,
        error: str | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "distribution", distribution)
        _set(self, "version", version)
        _set(self, "entry_point", entry_point)
        _set(self, "module", module)
        _set(self, "candidates", candidates)
        _set(self, "load_time_s", load_time_s)
        _set(self, "error", error)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form (``oneiric plugins --json``)."""
        return {name: getattr(self, name) for name in self._fields}


class DiscoveryReport(Frozen):
    """The outcome of ``load_plugins``: one ``PluginLoad`` per entry point."""

    __slots__ = ("entries",)
    _fields = ("entries",)
    entries: tuple[PluginLoad, ...]

    def __init__(self, entries: Iterable[PluginLoad]) -> None:
        object.__setattr__(self, "entries", tuple(entries))

    @property
    def errors(self) -> tuple[PluginLoad, ...]:
        """The plugins that failed to load (their candidates were not registered)."""
        return tuple(e for e in self.entries if e.error is not None)

    @property
    def candidates(self) -> int:
        return sum(e.candidates for e in self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {"plugins": [e.as_dict() for e in self.entries]}


class PluginRegistry:
    """The ``registry`` a plugin's ``oneiric_register`` receives.

    Whatever source a plugin passes, ``source`` is set to the plugin's own
    distribution and version: a plugin cannot impersonate another origin.
    Candidates are collected and registered only if the whole hook succeeds.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.candidates: list[Candidate] = []

    def register(self, candidate: Candidate | None = None, /, **fields: Any) -> Candidate:
        """Register ``candidate`` or build one from ``fields`` (``domain``, ``key``, ...)."""
        if candidate is not None:
            if fields:
                raise TypeError("register() takes a Candidate or keyword fields, not both")
            if not isinstance(candidate, Candidate):
                raise TypeError(
                    f"register() expects a Candidate, got {type(candidate).__name__}"
                )
            candidate = candidate.evolve(source=self.source)
        else:
            fields["source"] = self.source
            candidate = Candidate(**fields)
        self.candidates.append(candidate)
        return candidate


def check_namespace() -> None:
    """Fail in one line if the unrelated PyPI distribution ``oneiric`` shadows our namespace.

    That distribution ships a regular ``oneiric/__init__.py``.  A regular package
    anywhere on ``sys.path`` beats every namespace portion, so it is looked for on
    the path as well as in ``sys.modules``: a process that imported our namespace
    before the path changed would still break in the next process.
    """
    module = sys.modules.get("oneiric")
    found = getattr(module, "__file__", None) if module is not None else None
    if not found:
        for entry in sys.path:
            candidate = os.path.join(entry or os.getcwd(), "oneiric", "__init__.py")
            if os.path.isfile(candidate):
                found = candidate
                break
    if found:
        raise PluginError(
            f"an unrelated package named 'oneiric' is installed ({found}) and breaks "
            "the oneiric.* namespace; run 'pip uninstall oneiric' and reinstall oneiric-core"
        )


# ---------------------------------------------------------------- discovery

_scan_cache: dict[str, tuple[tuple[tuple[str, int], ...], tuple[EntryPointInfo, ...]]] = {}
#: A directory modified this recently may be modified again within the same
#: file-system timestamp tick, leaving its mtime unchanged; such a fingerprint is
#: not trusted (the "racy timestamp" problem git solves the same way).
_RACY_NS = 2_000_000_000


def _path_fingerprint() -> tuple[tuple[str, int], ...] | None:
    """``(directory, mtime)`` per ``sys.path`` entry, or None if one is too fresh to trust."""
    parts = []
    now = time.time_ns()
    racy = False
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue
        racy = racy or now - mtime < _RACY_NS
        parts.append((path, mtime))
    return None if racy else tuple(parts)


def _read_header(path: str) -> tuple[str | None, str | None]:
    """Read ``Name`` and ``Version`` from a METADATA/PKG-INFO header."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name and version:
                    break
    except OSError:
        pass
    return name, version


def _parse_group(text: str, group: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            section = line[1:-1].strip()
            continue
        if section != group:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if "[" in value:  # "module:attr [extra]"
            value = value[: value.index("[")].strip()
        found.append((name.strip(), value))
    return found


def _scan(group: str) -> tuple[EntryPointInfo, ...]:
    header = f"[{group}]"
    seen: set[str] = set()
    result: list[EntryPointInfo] = []
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            it = os.scandir(path)
        except OSError:
            continue
        with it:
            names = sorted(
                e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))
            )
        for dirname in names:
            folder = os.path.join(path, dirname)
            stem = dirname.rsplit(".", 1)[0]
            norm = _normalize(stem.split("-", 1)[0])
            if norm in seen:
                continue  # first on sys.path wins, as in importlib.metadata
            seen.add(norm)
            try:
                with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if header not in text:
                continue
            eps = _parse_group(text, group)
            if not eps:
                continue
            meta = "METADATA" if dirname.endswith(".dist-info") else "PKG-INFO"
            name, version = _read_header(os.path.join(folder, meta))
            if not name:
                name = stem.split("-", 1)[0]
            if not version:
                version = stem.split("-", 1)[1] if "-" in stem else "0"
            result.extend(EntryPointInfo(name, version, ep, value) for ep, value in eps)
    result.sort(key=lambda e: (_normalize(e.distribution), e.name))
    return tuple(result)


def discover_entry_points(
    group: str = PROJECT, *, use_cache: bool = True
) -> tuple[EntryPointInfo, ...]:
    """The entry points of ``group`` of the installed distributions, in load order.

    Cached per process, keyed by the mtimes of the ``sys.path`` directories, so
    installing or removing a distribution is seen by the next call.
    """
    fingerprint = _path_fingerprint()
    if use_cache and fingerprint is not None:
        cached = _scan_cache.get(group)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
    # Something may have been installed since the import system listed these
    # directories: make sure the plugin modules found now can be imported.
    importlib.invalidate_caches()
    found = _scan(group)
    if fingerprint is not None:
        _scan_cache[group] = (fingerprint, found)
    else:
        _scan_cache.pop(group, None)
    return found


# ------------------------------------------------------------------ loading

_loaded: weakref.WeakKeyDictionary[Resolver, dict[str, PluginLoad]] = weakref.WeakKeyDictionary()


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (pluggy's validation errors span several)."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: Modules whose import missed its deadline in this process, with that deadline
#: (seconds).  Their import lock is held by a stuck thread: never import them again.
_stuck: dict[str, float] = {}
DEFAULT_PLUGIN_TIMEOUT = 10.0
_TIMEOUT_ENV = "ONEIRIC_PLUGIN_TIMEOUT"
#: What a plugin may raise that is turned into its ``PluginError``.  Any other
#: ``BaseException`` (``KeyboardInterrupt``...) propagates after the batch is
#: rolled back: it was meant for the process, not for one plugin.
_PLUGIN_FAULTS = (Exception, SystemExit, GeneratorExit)


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


def _module_of(value: str) -> str:
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


def _import_modules(
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


def _import_plugin(value: str, error: BaseException | None = None) -> Any:
    """The plugin object of ``value`` (``module[:attr]``); ``error``: its import failure."""
    if error is not None:
        raise error
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _only_registers(obj: Any) -> bool:
    """True if ``oneiric_register`` is the plugin's only hook implementation.

    ``load_plugins`` calls that hook directly, so such a plugin (the common
    case) need not go through pluggy's registration, which inspects every
    attribute and signature: that is most of what discovery costs per plugin.
    Plugins with any other hook (a veto, pre-swap, secrets...) or a misspelt
    ``oneiric_*`` hook are registered with pluggy and validated as usual.
    """
    names = vars(obj) if isinstance(obj, ModuleType) else dir(obj)
    hooks = [
        n
        for n in names
        if n.startswith(f"{PROJECT}_")
        and getattr(getattr(obj, n, None), f"{PROJECT}_impl", None) is not None
    ]
    return hooks == ["oneiric_register"]


def _register_with_pluggy(hooks: pluggy.PluginManager, obj: Any, name: str) -> bool:
    """Register ``obj`` as ``name``; True if this call registered it (False: it already was).

    pluggy keeps a half-registered plugin when a hook implementation fails
    validation, so on any failure the plugin is unregistered again: a plugin
    that failed to load must not keep hooks (a veto, a pre-swap refusal) alive.
    """
    current = hooks.get_plugin(name)
    if current is obj:
        return False
    if current is not None:
        raise PluginError(
            f"plugin name {name!r} is already taken by another object; "
            "rename the entry point or unregister the other plugin"
        )
    other = hooks.get_name(obj)
    if other is not None:
        raise PluginError(
            f"the same object is already registered as plugin {other!r}; "
            "give each entry point its own module"
        )
    try:
        hooks.register(obj, name=name)
        unknown = sorted(
            caller.name
            for caller in hooks.get_hookcallers(obj) or ()
            if not caller.has_spec() and caller.name.startswith(f"{PROJECT}_")
        )
        if unknown:
            raise PluginError(
                f"unknown hook {', '.join(unknown)}; known hooks: "
                f"{', '.join(sorted(_known_hooks(hooks)))}; check the spelling"
            )
    except BaseException as exc:
        if hooks.get_plugin(name) is obj:
            hooks.unregister(name=name)
        if isinstance(exc, PluginError) or not isinstance(exc, Exception):
            raise
        # pluggy.PluginValidationError: wrong argument names, hookwrapper misuse...
        raise PluginError(f"invalid hook implementation: {_one_line(exc)}") from exc
    return True


def _known_hooks(hooks: pluggy.PluginManager) -> list[str]:
    return [
        name
        for name, caller in vars(hooks.hook).items()
        if name.startswith(f"{PROJECT}_") and caller.has_spec()
    ]


def load_plugins(
    resolver: Resolver,
    *,
    group: str = PROJECT,
    hooks: pluggy.PluginManager | None = None,
    entry_points: Iterable[EntryPointInfo] | None = None,
) -> DiscoveryReport:
    """Load every plugin of entry-point ``group`` into ``resolver``.

    Each plugin is registered with pluggy as ``"<distribution>:<entry point>"``
    and its ``oneiric_register`` is called with its own ``PluginRegistry``.
    A plugin that fails (import error, exception - including ``SystemExit`` and
    ``GeneratorExit`` -, an import exceeding ``ONEIRIC_PLUGIN_TIMEOUT``, invalid
    candidate, invalid or unknown hook, newer hook-spec version) contributes
    nothing, is not left registered with pluggy and is reported in
    ``DiscoveryReport.errors``; the others load.  Calling it again for the same
    resolver changes nothing.

    Any other ``BaseException`` a plugin raises (``KeyboardInterrupt``...)
    propagates after the whole call is rolled back (no candidates, no hooks,
    nothing remembered as loaded), so a retry loads everything.  A bad
    ``ONEIRIC_PLUGIN_TIMEOUT`` raises ``ConfigError``.

    ``hooks`` defaults to the resolver's plugin manager (``Resolver(hooks=...)``)
    so that the vetoes of the loaded plugins apply to that resolver, else the
    process-wide one.
    """
    check_namespace()
    timeout = plugin_timeout()
    if hooks is None:
        hooks = resolver.hooks
    found = tuple(entry_points) if entry_points is not None else discover_entry_points(group)
    done = _loaded.setdefault(resolver, {})
    todo = [
        info for info in found
        if info.plugin_name not in done and not hooks.is_blocked(info.plugin_name)
    ]
    imports = _import_modules([_module_of(info.value) for info in todo], timeout)
    loads: list[PluginLoad] = []
    new: dict[str, PluginLoad] = {}
    registered: list[str] = []
    try:
        with resolver.batch():
            for info in found:
                plugin_name = info.plugin_name
                previous = done.get(plugin_name)
                if previous is not None:
                    loads.append(previous)
                    continue
                load, registered_here = _load_one(
                    resolver, hooks, info, imports.get(_module_of(info.value), (None, 0.0))
                )
                if registered_here:
                    registered.append(plugin_name)
                new[plugin_name] = load
                loads.append(load)
    except BaseException:
        # the batch discarded the candidates: take the hooks back as well
        for name in registered:
            if hooks.get_plugin(name) is not None:
                hooks.unregister(name=name)
        raise
    done.update(new)
    report = DiscoveryReport(tuple(loads))
    for failed in report.errors:
        _log.warning(
            "plugin failed to load",
            plugin=f"{failed.distribution}:{failed.entry_point}",
            error=failed.error,
        )
    return report


def _load_one(
    resolver: Resolver,
    hooks: pluggy.PluginManager,
    info: EntryPointInfo,
    imported: tuple[BaseException | None, float],
) -> tuple[PluginLoad, bool]:
    """Load one plugin; return its ``PluginLoad`` and whether it is now registered with pluggy."""
    start = time.perf_counter()
    module_name = _module_of(info.value)
    registered_here = False
    try:
        if hooks.is_blocked(info.plugin_name):
            raise PluginError(
                f"plugin {info.plugin_name!r} is blocked in the plugin manager; "
                "unblock it to load it"
            )
        try:
            obj = _import_plugin(info.value, imported[0])
        except PluginError:
            raise
        except _PLUGIN_FAULTS as exc:
            raise PluginError(
                f"import of {info.value!r} failed: {_one_line(exc)}; "
                f"fix or reinstall {info.distribution}"
            ) from exc
        wanted = getattr(obj, "ONEIRIC_HOOKSPEC", None)
        if wanted is not None and (type(wanted) is not int or wanted < 1):
            raise PluginError(
                f"ONEIRIC_HOOKSPEC must be a positive int, got {wanted!r}; "
                f"fix {info.distribution}"
            )
        if wanted is not None and wanted > HOOKSPEC_VERSION:
            raise PluginError(
                f"needs hook-spec version {wanted} but this oneiric-core provides "
                f"{HOOKSPEC_VERSION}; upgrade oneiric-core"
            )
        if not _only_registers(obj):
            registered_here = _register_with_pluggy(hooks, obj, info.plugin_name)
        registry = PluginRegistry(
            Source("entry_point", info.distribution, info.version, detail=info.name)
        )
        register = getattr(obj, "oneiric_register", None)
        if register is not None and getattr(register, f"{PROJECT}_impl", None) is not None:
            try:
                register(registry=registry)
            except _PLUGIN_FAULTS as exc:
                raise PluginError(
                    f"oneiric_register raised {_one_line(exc)}; "
                    f"no candidates of {info.distribution} were registered"
                ) from exc
        for candidate in registry.candidates:
            resolver.register(candidate)
        error = None
        count = len(registry.candidates)
    except PluginError as exc:
        error = str(exc)
        count = 0
        if registered_here:
            hooks.unregister(name=info.plugin_name)
            registered_here = False
    except BaseException:
        if registered_here:
            hooks.unregister(name=info.plugin_name)
        raise
    elapsed = time.perf_counter() - start + imported[1]
    load = PluginLoad(
        distribution=info.distribution,
        version=info.version,
        entry_point=info.name,
        module=module_name,
        candidates=count,
        load_time_s=elapsed,
        error=error,
    )
    return load, registered_here


def loaded_plugins(resolver: Resolver) -> Mapping[str, PluginLoad]:
    """The plugins already loaded into ``resolver`` (by plugin name)."""
    return dict(_loaded.get(resolver, {}))
