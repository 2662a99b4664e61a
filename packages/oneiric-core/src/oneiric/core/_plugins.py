"""Loading plugins: import, validate and register every plugin of an entry-point group.

``load_plugins`` is deterministic (sorted by distribution, then entry point),
isolates every failure to the plugin that caused it, registers all candidates
in one resolver batch and is idempotent per resolver.  Where the parts live:
discovery ``_discovery``, the import worker ``_plugin_import``, the report types
``_plugin_report``, the registry a plugin receives ``_registry``.  Hooks
(``oneiric_register``) run on the caller's thread, after the import phase.
"""

from __future__ import annotations

import time
from types import ModuleType

from ._candidate import Source
from ._discovery import check_namespace, discover_entry_points
from ._errors import PluginError
from ._hooks import HOOKSPEC_VERSION
from ._logging import get_logger
from ._markers import PROJECT
from ._plugin_import import import_modules, import_plugin, module_of, plugin_timeout
from ._plugin_report import DiscoveryReport, EntryPointInfo, PluginLoad
from ._registry import PluginRegistry
from ._text import describe_exception

# pluggy and typing are imported only when needed: ``import oneiric.core`` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

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
#: The plugins already loaded into a resolver, by plugin name (``Resolver.extension``).
_LOADED = "oneiric.core.plugins.loaded"
#: What a plugin may raise that is turned into its ``PluginError``.  Any other
#: ``BaseException`` (``KeyboardInterrupt``...) propagates after the batch is
#: rolled back: it was meant for the process, not for one plugin.
_PLUGIN_FAULTS = (Exception, SystemExit, GeneratorExit)


def _only_registers(obj: object) -> bool:
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


def _register_with_pluggy(hooks: pluggy.PluginManager, obj: object, name: str) -> bool:
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
        raise PluginError(f"invalid hook implementation: {describe_exception(exc)}") from exc
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
    done: dict[str, PluginLoad] = resolver.extension(_LOADED, dict)
    todo = [
        info for info in found
        if info.plugin_name not in done and not hooks.is_blocked(info.plugin_name)
    ]
    imports = import_modules([module_of(info.value) for info in todo], timeout)
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
                    resolver, hooks, info, imports.get(module_of(info.value), (None, 0.0))
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
    module_name = module_of(info.value)
    registered_here = False
    try:
        if hooks.is_blocked(info.plugin_name):
            raise PluginError(
                f"plugin {info.plugin_name!r} is blocked in the plugin manager; "
                "unblock it to load it"
            )
        try:
            obj = import_plugin(info.value, imported[0])
        except PluginError:
            raise
        except _PLUGIN_FAULTS as exc:
            raise PluginError(
                f"import of {info.value!r} failed: {describe_exception(exc)}; "
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
                    f"oneiric_register raised {describe_exception(exc)}; "
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
