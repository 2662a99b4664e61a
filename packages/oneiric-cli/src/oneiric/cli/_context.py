"""What every command shares: the global options and a resolver built on first use.

Why lazy: ``oneiric --help`` and ``oneiric activity`` need no plugins, and
``oneiric status`` needs no settings; building the resolver (entry-point
discovery, settings, pydantic) only when a command asks for it keeps those
fast.  The order when it is built is the contract's: plugins, then settings
(with the state dir's selection overlay), then the last-good manifests of the
configured ``[remote]`` sources (read from the cache, never the network, as an
application's offline start does), then ``--app module:callable`` called with
the resolver, so the CLI sees what the application registers in code and what
``oneiric remote sync`` delivered.

``CliContext`` is a ``dict`` of the global options (``config_dir``,
``state_dir``, ``app``, ``json``, ``debug``).  Commands contributed by other
packages (``oneiric action``, ``oneiric event``) call ``current_context()``
and use its resolver, settings and state dir, so they see exactly what
``oneiric list``/``explain`` see.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric.core import FactoryError
from oneiric.core.helpers import (
    ACTIVITY_FILE,
    describe_exception,
    import_reference,
    one_line,
)

from ._errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_UNEXPECTED, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from oneiric.core import DiscoveryReport, Resolver, Settings
    from oneiric.lifecycle import ActivityStore, ControlPlane

__all__ = ["CliContext", "current_context", "load_app"]


def load_app(spec: str) -> Callable[[Resolver], object]:
    """Import ``"module:callable"`` (the current directory first on the path, like flask).

    The import is ``oneiric.core.helpers.import_reference``; its ``FactoryError``
    is classified here by what failed, because ``--app`` is an option (a
    malformed one is a usage error) and a missing module means "run from the
    application's directory".  Raises ``CliError``: malformed (2), module or
    attribute missing (3), import failed (1), not callable (2).
    """
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        obj = import_reference(spec, what="--app")
    except FactoryError as exc:
        cause = exc.__cause__
        if cause is None:  # refused before importing: not a 'module:attr' reference
            raise CliError(
                f"invalid --app {spec!r}: expected 'module:callable' "
                "(e.g. 'myapp.wiring:register'), called with the resolver",
                EXIT_USAGE,
            ) from None
        if isinstance(cause, ModuleNotFoundError):
            code, hint = EXIT_NOT_FOUND, "; or run from the application's directory"
        elif isinstance(cause, AttributeError):
            code, hint = EXIT_NOT_FOUND, ""
        else:  # the module raised while importing: a bug in the application
            code, hint = EXIT_UNEXPECTED, ""
        raise CliError(f"{exc}{hint}", code) from cause
    finally:
        if added:
            try:
                sys.path.remove(cwd)
            except ValueError:
                pass
    if not callable(obj):
        raise CliError(
            f"--app {spec!r} is a {type(obj).__name__}, not a callable taking the resolver",
            EXIT_USAGE,
        )
    return obj  # type: ignore[no-any-return]


class CliContext(dict[str, Any]):
    """Global options plus the lazily built resolver, settings and stores."""

    def __init__(
        self,
        *,
        config_dir: str | None = None,
        state_dir: str | None = None,
        app: str | None = None,
        json: bool = False,
        debug: bool = False,
    ) -> None:
        super().__init__(
            config_dir=config_dir, state_dir=state_dir, app=app, json=json, debug=debug
        )
        self._resolver: Resolver | None = None
        self._settings: Settings | None = None
        self._report: DiscoveryReport | None = None
        self._plane: ControlPlane | None = None
        self._discovered: Resolver | None = None  # plugins loaded, nothing else yet
        self._settings_read = False
        self.warnings: list[str] = []
        self._closers: list[Callable[[], object]] = []

    def close(self) -> None:
        """Release what commands opened (activity store connections)."""
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            closer()

    # ---------------------------------------------------------------- options

    @property
    def json(self) -> bool:
        return bool(self["json"])

    @property
    def debug(self) -> bool:
        return bool(self["debug"])

    # -------------------------------------------------------------- state dir

    def state_path(self, *, must_exist: bool = False, create: bool = False) -> Path:
        """The state directory (``--state-dir``, else ``ONEIRIC_STATE_DIR``, else XDG).

        ``must_exist``: a missing directory is an error (3) - reading commands
        must not invent an empty state and report "nothing paused".
        ``create``: created 0700 (writing commands).
        """
        from oneiric.core import state_dir

        given = self["state_dir"]
        path = state_dir(given, create=create) if create else state_dir(given, create=False)
        if must_exist and not path.is_dir():
            where = "--state-dir" if given else "ONEIRIC_STATE_DIR or the default state dir"
            raise CliError(
                f"state directory {str(path)!r} does not exist (from {where}); pass the "
                "--state-dir of the running application",
                EXIT_NOT_FOUND,
            )
        return path

    def activity_store(self, *, create: bool) -> ActivityStore | None:
        """The shared activity store; None when reading and it was never written."""
        # Its own module: ``oneiric.lifecycle`` itself imports the manager and host.
        from oneiric.lifecycle._activity import ActivityStore

        path = self.state_path(must_exist=not create, create=create) / ACTIVITY_FILE
        if not create and not path.exists():
            return None
        store = ActivityStore(path)
        self._closers.append(store.close)
        return store

    @property
    def control_plane(self) -> ControlPlane:
        """The control plane the settings files select (built once, after the resolver).

        ``swap``/``pause``/``drain``/``resume``/``status`` write and read only
        through it, whichever provider it is (``local``: the state dir).
        """
        if self._plane is None:
            from oneiric.lifecycle import control_plane

            # Installed plugins and the settings files only, as a Host resolves it:
            # not --app code, manifests or the other domains' provider settings,
            # so 'status' works wherever the application's own settings load;
            # plugins are loaded only when the settings select a plane.
            plane = control_plane(self._settings_files(), resolver=self._plugins,
                                  state_dir=self["state_dir"])
            self._closers.append(plane.close)
            self._plane = plane
        return self._plane

    # --------------------------------------------------------------- resolver

    def _has_settings_files(self) -> bool:
        """Whether a settings directory is given or present (pydantic is loaded only then)."""
        if self["config_dir"] is not None or os.environ.get("ONEIRIC_CONFIG"):
            return True
        return Path("settings").is_dir()

    def _check_config_path(self) -> None:
        """Classify a bad ``--config`` / ``ONEIRIC_CONFIG``: missing is 3, the wrong kind is 4."""
        given = self["config_dir"]
        origin = "--config"
        if given is None:
            given, origin = os.environ.get("ONEIRIC_CONFIG") or None, "ONEIRIC_CONFIG"
        if given is None:
            return
        path = Path(given).expanduser()
        try:
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise CliError(
                f"config directory {str(path)!r} (from {origin}) does not exist; create it or "
                f"pass another {origin}",
                EXIT_NOT_FOUND,
            ) from None
        except OSError as exc:
            raise CliError(
                f"config directory {str(path)!r} (from {origin}) cannot be read: "
                f"{exc.strerror or type(exc).__name__}",
                EXIT_INVALID,
            ) from None
        import stat

        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            raise CliError(
                f"{origin} {str(path)!r} is neither a settings directory nor a settings file; "
                f"pass the directory holding oneiric.toml",
                EXIT_INVALID,
            )

    @property
    def settings(self) -> Settings | None:
        """The loaded settings (None when there are none to load)."""
        self.resolver  # noqa: B018 - builds everything in the contract's order
        return self._settings

    @property
    def report(self) -> DiscoveryReport:
        """What ``load_plugins`` found (plugins are loaded on first use)."""
        self.resolver  # noqa: B018
        assert self._report is not None
        return self._report

    @property
    def resolver(self) -> Resolver:
        """Plugins, then settings, then ``--app``: the resolver the commands inspect."""
        if self._resolver is not None:
            return self._resolver
        resolver = self._plugins()
        if not self._has_settings_files():
            # only the overlay: its selections without the settings models (pydantic)
            from oneiric.core import state_dir
            from oneiric.core.helpers import apply_overlay

            apply_overlay(resolver, state_dir(self["state_dir"], create=False))
        else:
            settings = self._settings_files()
            assert settings is not None
            for text in settings.apply(resolver):
                self.warnings.append(text)
            self._load_remote(resolver, settings)
        if self["app"]:
            register = load_app(self["app"])
            try:
                register(resolver)
            except Exception as exc:
                if exc.__class__.__module__.startswith("oneiric."):
                    raise
                text = describe_exception(exc, join=" ")
                raise CliError(f"--app {self['app']!r} raised {text}", EXIT_UNEXPECTED) from exc
        self._resolver = resolver
        from ._output import warn

        for text in self.warnings:
            warn(text)
        return resolver

    def _plugins(self) -> Resolver:
        """A resolver with the installed plugins loaded (the first step of ``resolver``)."""
        if self._discovered is None:
            from oneiric.core import Resolver, check_namespace, load_plugins

            check_namespace()
            resolver = Resolver()
            self._report = load_plugins(resolver)
            for failed in self._report.errors:
                self.warnings.append(
                    f"plugin {failed.distribution}:{failed.entry_point} failed to load: "
                    f"{failed.error}"
                )
            self._discovered = resolver
        return self._discovered

    def _settings_files(self) -> Settings | None:
        """The settings files, loaded once and not yet applied (None when there are none)."""
        if not self._settings_read:
            if self._has_settings_files():
                # a lazy attribute of oneiric.core: naming it imports pydantic, so only here
                from oneiric.core import load_settings

                self._check_config_path()
                self._settings = load_settings(self["config_dir"], state_dir=self.state_path())
            self._settings_read = True
        return self._settings

    def _load_remote(self, resolver: Resolver, settings: Settings) -> None:
        """Register the last-good manifest of each ``[remote]`` source (offline).

        oneiric-remote is imported only when sources are configured and it is
        installed; a source that fails (tampered or expired cache, bad section)
        becomes a one-line warning and the command goes on without it.
        """
        if not settings.remote.get("sources"):
            return
        from importlib.util import find_spec

        if find_spec("oneiric.remote") is None:
            self.warnings.append(
                "[remote] sources are configured but oneiric-remote is not installed; "
                "pip install oneiric-remote to see what they deliver"
            )
            return
        import asyncio

        from oneiric.core import ConfigError
        from oneiric.remote import load_last_good

        try:
            failed = asyncio.run(load_last_good(resolver, settings.remote, settings.config_dir))
        except ConfigError as exc:
            self.warnings.append(f"[remote] not loaded: {one_line(exc)}")
            return
        for name, error in failed.items():
            self.warnings.append(
                f"remote source {name!r}: last-good manifest not loaded: {one_line(error)}"
            )

    def known_domain(self, domain: str) -> None:
        """Raise (3) if no candidate is registered in ``domain``."""
        from oneiric.core import validate_name

        try:
            validate_name(domain, "domain")
        except ValueError as exc:
            raise CliError(str(exc), EXIT_INVALID) from None
        domains = self.resolver.domains()
        if domain not in domains:
            raise CliError(
                f"no candidates registered in domain {domain!r}; known domains: "
                f"{', '.join(domains) or 'none'}; install a plugin or pass --app",
                EXIT_NOT_FOUND,
            )


def current_context() -> CliContext:
    """The running command's ``CliContext`` (a fresh one when a group runs on its own).

    Commands other packages contribute call this for the resolver, settings
    and state dir every built-in command uses.
    """
    import click

    ctx = click.get_current_context()
    found = ctx.find_object(CliContext)
    return found if found is not None else ctx.ensure_object(CliContext)
