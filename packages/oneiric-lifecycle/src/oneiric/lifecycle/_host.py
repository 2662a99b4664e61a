"""``Host``: one ``async with`` that runs Oneiric inside an application.

Hand-assembling resolver, plugins, settings, activity store, watcher, status
and health in every application is where deployments diverge (an app built
without an activity store silently ignored ``oneiric pause``).  ``Host`` does
it once, in the order ARCHITECTURE §9 fixes, and tears down everything it
started when any step fails, so a failed start leaves no task or file behind.

Background services of other packages (event consumers, schedulers, the fleet
agent) plug in through the ``oneiric_host_services(host)`` hook: lifecycle
never imports them.

The control plane (``control_plane(...)``: the provider the settings files
select) is resolved once, from the installed plugins' candidates and the
settings files (before the application's code and manifests register
anything), and kept until the host stops; its instance side
(``plane.attach(host)``) is entered before any key is activated, so desired
state applies to the first activation and status is published while the host
runs.  The host never asks which provider it is.
"""


from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING

from oneiric.core import (
    ConfigError,
    PluginError,
    Resolver,
    call_hook,
    get_logger,
)
from oneiric.core.helpers import (
    PROFILES,
    import_reference,
    one_line,
    profile_from_environment,
)

from ._bridge import DomainBridge, Lease
from ._config import LifecycleConfig
from ._manager import LifecycleManager
from ._planes import control_plane
from ._watcher import SelectionWatcher

if TYPE_CHECKING:
    from oneiric.core import Settings

    from ._control import ControlPlane

__all__ = ["Host"]

_log = get_logger("oneiric.lifecycle.host")

#: ``app``: called with the resolver after settings load (like the CLI's ``--app``).
AppSetup = Callable[[Resolver], object]

_DEFAULT_HEALTH_INTERVAL = 15.0


def _service_list(plugin: str, value: object) -> list[AbstractAsyncContextManager[object]]:
    """Normalise one ``oneiric_host_services`` result; refuse anything else by name."""
    if value is None:
        return []
    items: Iterable[object] = (
        [value] if hasattr(value, "__aenter__") or not isinstance(value, Iterable) else value
    )
    services: list[AbstractAsyncContextManager[object]] = []
    for item in items:
        if not (hasattr(item, "__aenter__") and hasattr(item, "__aexit__")):
            raise PluginError(
                f"plugin {plugin!r}: oneiric_host_services returned {type(item).__name__}, "
                "expected an async context manager, an iterable of them, or None; fix the plugin"
            )
        services.append(item)
    return services


def _activate_list(settings: Settings, extra: Sequence[str]) -> list[tuple[str, str]]:
    """Keys of ``[host] activate`` and ``activate=``: ``"domain.key"`` (as in the contract,
    split at the first dot like ``allowed_keys``) or ``"domain/key"``."""
    section = getattr(settings, "host", None) or {}
    listed = section.get("activate", []) if isinstance(section, dict) else []
    if not isinstance(listed, list):
        raise ConfigError(
            f"[host] activate must be a list of 'domain.key' strings, got "
            f"{type(listed).__name__}; e.g. activate = [\"adapter.cache\"]"
        )
    pairs: list[tuple[str, str]] = []
    for entry in [*listed, *extra]:
        text = str(entry)
        domain, sep, key = text.partition("/" if "/" in text else ".")
        if not sep or not domain or not key or "/" in key:
            raise ConfigError(
                f"cannot activate {text!r}: expected 'domain.key' (or 'domain/key'), "
                "e.g. 'adapter.cache'"
            )
        if (domain, key) not in pairs:
            pairs.append((domain, key))
    return pairs


async def _load_remote_last_good(
    resolver: Resolver,
    settings: Settings,
    state_dir: str | os.PathLike[str] | None,
    serverless: bool,
) -> None:
    """Register each ``[remote]`` source's last-good manifest, offline: bundle or cache.

    The app starts with what the last ``oneiric remote sync`` delivered even
    when the repository is unreachable (signatures, expiry and artifact hashes
    re-verified by oneiric-remote).  With ``[remote] bundle`` or
    ``ONEIRIC_REMOTE_BUNDLE`` set it comes from that bundle, read-only (a
    serverless package cannot be written; the cache load locks and cleans);
    otherwise from the cache - in the serverless profile with a warning, since
    that cache must then be writable.  An invalid ``[remote]`` section or a
    missing/garbled bundle stops the start (``ConfigError``); a source that
    fails verification is logged and skipped, like one never synced.
    oneiric-remote is imported only when sources are configured.
    """
    if not settings.remote.get("sources"):
        return
    from importlib.util import find_spec

    if find_spec("oneiric.remote") is None:
        _log.warning("[remote] sources configured but oneiric-remote is not installed")
        return
    from oneiric.remote import configured_bundle, load_bundle, load_last_good

    bundle = configured_bundle(settings.remote, settings.config_dir)
    if bundle is not None:
        failed = load_bundle(resolver, settings.remote, bundle, settings.config_dir)
    else:
        if serverless:
            _log.warning(
                "serverless profile without a remote bundle: loading the last-good cache, "
                "which takes a lock and needs a writable cache dir; run 'oneiric remote "
                "bundle OUT' and set [remote] bundle or ONEIRIC_REMOTE_BUNDLE"
            )
        failed = await load_last_good(
            resolver, settings.remote, settings.config_dir, state_dir=state_dir
        )
    for name, exc in failed.items():
        _log.error("remote source: last-good manifest not loaded", source=name,
                   error=one_line(exc), bundle=str(bundle) if bundle is not None else None)


class Host:
    """Plugins, settings, lifecycle (activity store, status, health), watcher and services.

    ``config`` is the settings directory (default: ``ONEIRIC_CONFIG``, else
    ``./settings`` if it exists; its ``[remote]`` sources' last-good manifests
    are loaded offline, from the cache or, with ``[remote] bundle`` /
    ``ONEIRIC_REMOTE_BUNDLE``, read-only from a bundle); ``state_dir`` where the activity store,
    status snapshots, overlay and (without ``[remote] cache_dir``) the remote
    cache live (default ``oneiric.core.state_dir()``);
    ``plugins=False`` skips entry-point discovery; ``watch=False`` runs no
    ``SelectionWatcher``; ``health_interval`` is the period of health probes
    (``[lifecycle] health_interval`` wins when this is left at its default);
    ``app`` — a callable or ``"module:callable"`` — is called with the
    resolver after settings load (register the application's own providers
    there); ``activate`` lists extra ``"domain/key"`` keys to activate;
    ``profile`` is ``"default"`` or ``"serverless"`` (no watcher, no poll, no
    periodic probes; ``None``: ``ONEIRIC_PROFILE``).
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        plugins: bool = True,
        watch: bool = True,
        health_interval: float = _DEFAULT_HEALTH_INTERVAL,
        app: AppSetup | str | None = None,
        activate: Sequence[str] = (),
        profile: str | None = None,
    ) -> None:
        if profile is not None and profile not in PROFILES:
            raise ConfigError(
                f"profile={profile!r} is not supported: the profiles that exist are "
                f"{', '.join(PROFILES)}; pass one of them or None (ONEIRIC_PROFILE)"
            )
        self._profile = profile
        self._config = config
        self._state_dir = state_dir
        self._plugins = plugins
        self._watch = watch
        self._health_interval = health_interval
        self._app = app
        self._activate = tuple(activate)
        self._resolver: Resolver | None = None
        self._lifecycle: LifecycleManager | None = None
        self._settings: Settings | None = None
        self._plane: ControlPlane | None = None
        self.watcher: SelectionWatcher | None = None
        self._stack: AsyncExitStack | None = None

    # ------------------------------------------------------------- accessors

    @property
    def resolver(self) -> Resolver:
        """The resolver (plugins and settings applied); set once the host is entered."""
        if self._resolver is None:
            raise RuntimeError("the Host is not running; use 'async with Host(...) as host:'")
        return self._resolver

    @property
    def lifecycle(self) -> LifecycleManager:
        """The lifecycle manager; set once the host is entered."""
        if self._lifecycle is None:
            raise RuntimeError("the Host is not running; use 'async with Host(...) as host:'")
        return self._lifecycle

    @property
    def control_plane(self) -> ControlPlane:
        """The control plane the settings files selected; set once the host is entered."""
        if self._plane is None:
            raise RuntimeError("the Host is not running; use 'async with Host(...) as host:'")
        return self._plane

    @property
    def settings(self) -> Settings | None:
        """The settings loaded at start (the watcher hands reloads to the lifecycle)."""
        return self._settings

    @property
    def state_dir(self) -> str | os.PathLike[str] | None:
        """The ``state_dir`` this host was given (``None``: ``oneiric.core.state_dir()``).

        Services contributed through ``oneiric_host_services`` keep their files
        (dead letters, checkpoints) where the host keeps its own.
        """
        return self._state_dir

    def bridge(self, domain: str) -> DomainBridge[object]:
        """A ``DomainBridge`` over this host's lifecycle (type it: ``DomainBridge[T](d, lc)``)."""
        return DomainBridge(domain, self.lifecycle)

    def lease(self, domain: str, key: str, *, tenant: str | None = None) -> Lease[object]:
        """``async with host.lease("adapter", "cache") as cache:`` — tracked use of a component."""
        return self.bridge(domain).lease(key, tenant=tenant)

    async def activate(self, domain: str, key: str, *, tenant: str | None = None) -> object:
        """Activate ``domain/key`` (idempotent); return the bound instance."""
        return await self.lifecycle.activate(domain, key, tenant=tenant)

    # ----------------------------------------------------------------- start

    async def __aenter__(self) -> Host:
        if self._stack is not None:
            raise RuntimeError("this Host is already running; create one Host per 'async with'")
        stack = AsyncExitStack()
        self._stack = stack
        try:
            await self._start(stack)
        except BaseException:
            await self._stop()
            raise
        return self

    async def _start(self, stack: AsyncExitStack) -> None:
        from oneiric.core import load_plugins, load_settings
        from oneiric.core.helpers import check_environment

        check_environment()  # design-era variables this version cannot honour: say so, once
        resolver = Resolver()
        hooks = resolver.hooks
        if self._plugins:
            report = load_plugins(resolver, hooks=hooks)
            for entry in report.errors:
                _log.error("plugin not loaded", plugin=entry.entry_point, error=entry.error)
        settings = load_settings(self._config, state_dir=self._state_dir, hooks=hooks)
        # installed plugins and the settings files only: not app code, not manifests
        plane = control_plane(settings, resolver=resolver, state_dir=self._state_dir, hooks=hooks)
        self._plane = plane
        stack.callback(plane.close)
        settings.apply(resolver)
        self._settings = settings
        self._resolver = resolver
        serverless = (self._profile or profile_from_environment()) == "serverless"
        await _load_remote_last_good(resolver, settings, self._state_dir, serverless)
        if self._app is not None:
            await self._run_app(resolver)
        config = LifecycleConfig.from_settings(settings)
        if self._health_interval != _DEFAULT_HEALTH_INTERVAL or "health_interval" not in (
            settings.lifecycle
        ):
            config = config.replace(health_interval=self._health_interval)
        if serverless:  # ONEIRIC_PROFILE=serverless: no watcher, no timers at all (§11)
            config = config.replace(health_interval=0, activity_poll_interval=0)
        # the local plane's decisions are the state dir's activity store; any other plane
        # feeds them through LifecycleManager.apply_activity (no second source of truth)
        lifecycle = LifecycleManager(
            resolver, settings=settings, hooks=hooks, config=config, state_dir=self._state_dir,
            activity_store=None if plane.provider == "local" else False,
        )
        self._lifecycle = lifecycle
        stack.push_async_callback(lifecycle.shutdown)
        await stack.enter_async_context(plane.attach(self))
        for domain, key in _activate_list(settings, self._activate):
            await lifecycle.activate(domain, key)
        if self._watch and not serverless and settings.config_dir is not None:
            config_dir = settings.config_dir
            state_dir = self._state_dir

            def loader(path: os.PathLike[str]) -> Settings:
                return load_settings(path, state_dir=state_dir, hooks=hooks)

            watcher = SelectionWatcher(
                config_dir, loader, resolver, lifecycle=lifecycle, state_dir=state_dir
            )
            await watcher.start()
            self.watcher = watcher
            stack.push_async_callback(watcher.stop)
        # Every plugin's answer is checked before any service starts: a broken
        # plugin stops the start with nothing of the others half-running.
        planned: list[tuple[str, AbstractAsyncContextManager[object]]] = []
        for result in call_hook(hooks, "oneiric_host_services", host=self):
            if isinstance(result.error, ConfigError):
                # the plugin refused *settings* (an invalid [automations] table, a bad
                # workflow file): the message names the file; "fix the plugin" would mislead
                raise result.error
            if result.error is not None:
                raise PluginError(
                    f"plugin {result.plugin!r}: oneiric_host_services raised "
                    f"{type(result.error).__name__}: {one_line(result.error)}; fix or remove "
                    "the plugin"
                ) from result.error
            planned += [(result.plugin, s) for s in _service_list(result.plugin, result.value)]
        for plugin, service in planned:
            try:
                await stack.enter_async_context(service)
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r}: host service {type(service).__name__} failed to "
                    f"start: {type(exc).__name__}: {one_line(exc)}"
                ) from exc

    async def _run_app(self, resolver: Resolver) -> None:
        setup = self._app
        if isinstance(setup, str):
            setup = import_reference(setup)
        if not callable(setup):
            raise ConfigError(
                f"app={self._app!r} is not callable; pass a function taking the resolver "
                "or 'module:function'"
            )
        result = setup(resolver)
        if inspect.isawaitable(result):
            await result

    # ------------------------------------------------------------------ stop

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    async def _stop(self) -> None:
        """Services in reverse, then the watcher, then the lifecycle (which drains leases)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self.watcher = None
        self._lifecycle = None
        self._resolver = None
        self._plane = None

    def __repr__(self) -> str:
        running = self._stack is not None
        return f"<Host config={self._config!r} running={running}>"

