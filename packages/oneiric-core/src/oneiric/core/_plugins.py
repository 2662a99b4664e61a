"""Entry-point discovery: find, import and register plugin distributions.

``load_plugins`` is deterministic (sorted by distribution, then entry point),
isolates every failure to the plugin that caused it, registers all candidates
in one resolver batch and is idempotent per resolver.

Discovery reads ``entry_points.txt`` of the installed distributions directly
(one ``scandir`` per ``sys.path`` directory, a substring test before parsing)
and caches the result per process, keyed by the path directories' mtimes,
which change whenever a distribution is installed or removed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._candidate import Candidate, Source
from ._errors import PluginError
from ._hooks import HOOKSPEC_VERSION, PROJECT, get_plugin_manager
from ._logging import get_logger

if TYPE_CHECKING:
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


@attrs.frozen(slots=True)
class EntryPointInfo:
    """One entry point of the plugin group, as found on disk."""

    distribution: str
    version: str
    name: str
    value: str  # "module" or "module:attr"

    @property
    def plugin_name(self) -> str:
        """The name the plugin is registered under with pluggy: ``dist:entry point``."""
        return f"{self.distribution}:{self.name}"


@attrs.frozen(slots=True)
class PluginLoad:
    """What happened to one plugin during ``load_plugins``."""

    distribution: str
    version: str
    entry_point: str
    module: str
    candidates: int
    load_time_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(slots=True)
class DiscoveryReport:
    """The outcome of ``load_plugins``: one ``PluginLoad`` per entry point."""

    entries: tuple[PluginLoad, ...]

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
    """Fail in one line if the unrelated PyPI distribution ``oneiric`` shadows our namespace."""
    module = sys.modules.get("oneiric")
    if module is None:
        try:
            module = importlib.import_module("oneiric")
        except ImportError:
            return
    if getattr(module, "__file__", None):
        raise PluginError(
            f"an unrelated package named 'oneiric' is installed ({module.__file__}) and breaks "
            "the oneiric.* namespace; run 'pip uninstall oneiric' and reinstall oneiric-core"
        )


# ---------------------------------------------------------------- discovery

_scan_cache: dict[str, tuple[tuple[tuple[str, int], ...], tuple[EntryPointInfo, ...]]] = {}


def _path_fingerprint() -> tuple[tuple[str, int], ...]:
    parts = []
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            parts.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            continue
    return tuple(parts)


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


def discover_entry_points(group: str = PROJECT, *, use_cache: bool = True) -> tuple[EntryPointInfo, ...]:
    """The entry points of ``group`` of the installed distributions, in load order.

    Cached per process, keyed by the mtimes of the ``sys.path`` directories.
    """
    fingerprint = _path_fingerprint()
    if use_cache:
        cached = _scan_cache.get(group)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
    found = _scan(group)
    _scan_cache[group] = (fingerprint, found)
    return found


# ------------------------------------------------------------------ loading

_loaded: weakref.WeakKeyDictionary[Resolver, dict[str, PluginLoad]] = weakref.WeakKeyDictionary()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _import_plugin(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _register_with_pluggy(hooks: pluggy.PluginManager, obj: Any, name: str) -> None:
    current = hooks.get_plugin(name)
    if current is obj:
        return
    if current is not None:
        raise PluginError(f"plugin name {name!r} is already taken by another object")
    other = hooks.get_name(obj)
    if other is not None:
        raise PluginError(f"the same module is already registered as plugin {other!r}")
    hooks.register(obj, name=name)


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
    A plugin that fails (import error, exception, invalid candidate, newer
    hook-spec version) contributes nothing and is reported in
    ``DiscoveryReport.errors``; the others load.  Calling it again for the same
    resolver changes nothing.
    """
    check_namespace()
    hooks = hooks if hooks is not None else get_plugin_manager()
    found = tuple(entry_points) if entry_points is not None else discover_entry_points(group)
    done = _loaded.setdefault(resolver, {})
    loads: list[PluginLoad] = []
    with resolver.batch():
        for info in found:
            plugin_name = info.plugin_name
            previous = done.get(plugin_name)
            if previous is not None:
                loads.append(previous)
                continue
            load = _load_one(resolver, hooks, info)
            done[plugin_name] = load
            loads.append(load)
    report = DiscoveryReport(tuple(loads))
    for failed in report.errors:
        _log.warning(
            "plugin failed to load",
            plugin=f"{failed.distribution}:{failed.entry_point}",
            error=failed.error,
        )
    return report


def _load_one(resolver: Resolver, hooks: pluggy.PluginManager, info: EntryPointInfo) -> PluginLoad:
    start = time.perf_counter()
    module_name = info.value.partition(":")[0].strip()
    registered_here = False
    obj: Any = None
    try:
        try:
            obj = _import_plugin(info.value)
        except Exception as exc:
            raise PluginError(f"import of {info.value!r} failed: {_one_line(exc)}") from exc
        wanted = getattr(obj, "ONEIRIC_HOOKSPEC", None)
        if wanted is not None and (not isinstance(wanted, int) or wanted > HOOKSPEC_VERSION):
            raise PluginError(
                f"needs hook-spec version {wanted!r} but this oneiric-core provides "
                f"{HOOKSPEC_VERSION}; upgrade oneiric-core"
            )
        registered_here = hooks.get_plugin(info.plugin_name) is None
        try:
            _register_with_pluggy(hooks, obj, info.plugin_name)
        except PluginError:
            registered_here = False
            raise
        except Exception as exc:  # pluggy.PluginValidationError and friends
            registered_here = False
            raise PluginError(f"invalid hook implementation: {_one_line(exc)}") from exc
        registry = PluginRegistry(
            Source("entry_point", info.distribution, info.version, detail=info.name)
        )
        register = getattr(obj, "oneiric_register", None)
        if register is not None and getattr(register, f"{PROJECT}_impl", None) is not None:
            try:
                register(registry=registry)
            except Exception as exc:
                raise PluginError(f"oneiric_register raised {_one_line(exc)}") from exc
        for candidate in registry.candidates:
            resolver.register(candidate)
        error = None
        count = len(registry.candidates)
    except PluginError as exc:
        error = str(exc)
        count = 0
        if registered_here and obj is not None:
            hooks.unregister(name=info.plugin_name)
    elapsed = time.perf_counter() - start
    return PluginLoad(
        distribution=info.distribution,
        version=info.version,
        entry_point=info.name,
        module=module_name,
        candidates=count,
        load_time_s=elapsed,
        error=error,
    )


def loaded_plugins(resolver: Resolver) -> Mapping[str, PluginLoad]:
    """The plugins already loaded into ``resolver`` (by plugin name)."""
    return dict(_loaded.get(resolver, {}))
