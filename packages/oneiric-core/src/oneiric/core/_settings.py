"""Settings: selections, provider settings, tenants and swap policies from files.

Layout of the config directory (``path``, else ``ONEIRIC_CONFIG``, else
``./settings`` if it exists, else empty settings)::

    oneiric.toml            one section per domain ([adapter], [service], ...),
                            plus the reserved sections [remote], [lifecycle], [host],
                            [automations.<id>], [schedules.<id>] (validated by oneiric-runtime)
    adapters.toml|yaml|yml  one domain per file; overrides that domain's section
    services.* tasks.* events.* workflows.* actions.*
    <domain>.toml|yaml|yml  any other domain (``remote``/``lifecycle``/``host`` are reserved:
                            they live in oneiric.toml only)

Per domain: ``selections`` (key -> provider), ``provider_settings.<key>.<provider>``
(validated by the candidate's ``settings_model``), ``tenants.<name>.selections``
and ``swap_policy.<key>`` (``sticky`` | ``greedy``).  ``${env:NAME}``,
``${env:NAME:-default}`` and ``${secret:NAME}`` are interpolated; a value that
contains a secret becomes a ``pydantic.SecretStr`` and is redacted in every
output.  The machine-owned overlay ``<state dir>/selections.json`` (written by
``oneiric swap``) takes precedence over the user's files, which are never
rewritten.

Where each part lives: finding and parsing the files ``_settings_files``, the
domain models ``_settings_model``, name checks ``_settings_checks``,
interpolation ``_interpolate``, the overlay ``_overlay``; this module holds
``Settings`` and ``load_settings``.  pydantic is imported by these modules
only, and they only when settings are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from ._candidate import Candidate
from ._errors import ConfigError
from ._interpolate import Interpolator, reveal
from ._loading import resolve_settings_model
from ._logging import get_logger
from ._overlay import Overlay, read_overlay, write_overlay
from ._redact import redact
from ._settings_checks import check_overlay, dotted, message
from ._settings_files import (
    BUILTIN_DOMAINS,
    RESERVED_SECTIONS,
    Doc,
    config_dir,
    domain_of_section,
    find_files,
)
from ._settings_model import DomainSettings, validate_domain
from ._statedir import OVERLAY_FILE
from ._statedir import state_dir as _state_dir
from ._text import one_line

if TYPE_CHECKING:
    import pluggy

    from ._resolver import Resolver

__all__ = [
    "BUILTIN_DOMAINS",
    "OVERLAY_FILE",
    "DomainSettings",
    "Settings",
    "load_settings",
    "read_overlay",
    "redact",
    "write_overlay",
]

_log = get_logger("oneiric.core.settings")
#: The scopes ``(tenant, domain)`` whose selections ``Settings.apply`` last set, per resolver.
_APPLIED = "oneiric.core.settings.applied"
#: Reserved sections holding runtime templates (``${event...}``, ``${schedule...}``).
_TEMPLATE_SECTIONS = frozenset({"automations", "schedules"})


class Settings:
    """Validated settings; immutable after loading.  Build with ``load_settings``."""

    def __init__(
        self,
        domains: Mapping[str, DomainSettings] | None = None,
        *,
        config_dir: Path | None = None,
        files: tuple[Path, ...] = (),
        origins: Mapping[str, tuple[Doc, tuple[str, ...]]] | None = None,
        remote: Mapping[str, Any] | None = None,
        lifecycle: Mapping[str, Any] | None = None,
        overlay: Overlay | None = None,
        host: Mapping[str, Any] | None = None,
        automations: Mapping[str, Any] | None = None,
        schedules: Mapping[str, Any] | None = None,
    ) -> None:
        self.domains: dict[str, DomainSettings] = dict(domains or {})
        self.config_dir = config_dir
        self.files = files
        self.remote: dict[str, Any] = dict(remote or {})
        self.lifecycle: dict[str, Any] = dict(lifecycle or {})
        self.host: dict[str, Any] = dict(host or {})  # [host]: e.g. activate = ["adapter.cache"]
        # [automations.<id>]: raw tables; oneiric-runtime validates them (it owns the grammar
        # of topics, filters, run targets and ${event...} templates), like [remote]/[host].
        self.automations: dict[str, Any] = dict(automations or {})
        # [schedules.<id>]: raw tables too (cron, zones, targets, ${schedule...} payloads).
        self.schedules: dict[str, Any] = dict(schedules or {})
        self._origins = dict(origins or {})
        self._overlay = overlay or {"selections": {}, "tenants": {}}

    # selections -----------------------------------------------------------

    def selections(self, domain: str, *, tenant: str | None = None) -> dict[str, str]:
        """Effective selections of one scope: user files, then the overlay on top."""
        ds = self.domains.get(domain)
        if tenant is None:
            result = dict(ds.selections) if ds else {}
            result.update(self._overlay["selections"].get(domain, {}))
        else:
            tenant_settings = ds.tenants.get(tenant) if ds else None
            result = dict(tenant_settings.selections) if tenant_settings else {}
            result.update(self._overlay["tenants"].get(domain, {}).get(tenant, {}))
        return result

    def tenants(self, domain: str) -> tuple[str, ...]:
        ds = self.domains.get(domain)
        names = set(ds.tenants) if ds else set()
        names.update(self._overlay["tenants"].get(domain, {}))
        return tuple(sorted(names))

    def all_domains(self) -> tuple[str, ...]:
        names = set(self.domains)
        names.update(self._overlay["selections"])
        names.update(self._overlay["tenants"])
        return tuple(sorted(names))

    def swap_policy(self, domain: str, key: str) -> Literal["sticky", "greedy"]:
        """``sticky`` (default): a better new candidate does not swap a bound provider."""
        ds = self.domains.get(domain)
        if ds is None:
            return "sticky"
        return ds.swap_policy.get(key, "sticky")

    # provider settings ----------------------------------------------------

    def raw_provider_settings(self, domain: str, key: str, provider: str) -> dict[str, Any]:
        """The interpolated mapping for one provider (secrets as SecretStr)."""
        ds = self.domains.get(domain)
        if ds is None:
            return {}
        return dict(ds.provider_settings.get(key, {}).get(provider, {}))

    def settings_for(self, candidate: Candidate) -> BaseModel | None:
        """Validate the provider's settings with ``candidate.settings_model``.

        Returns the model instance, or None when the candidate has no model.
        Raises ``ConfigError`` naming the file, line and key path (and
        ``FactoryError`` if the model reference does not import).
        """
        model = resolve_settings_model(candidate)
        if model is None:
            return None
        raw = self.raw_provider_settings(candidate.domain, candidate.key, candidate.provider)
        path = (candidate.domain, "provider_settings", candidate.key, candidate.provider)
        try:
            return model.model_validate(reveal(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(str(p) for p in first.get("loc", ()))
            origin = self._origins.get(candidate.domain)
            if origin is not None:
                doc, prefix = origin
                where = doc.where((*prefix, *path[1:], *loc))
            else:
                where = str(self.config_dir) if self.config_dir else "settings"
            kind = first.get("type")
            if kind == "missing":
                msg = f"required setting is missing; add it under {'.'.join(path)}"
            elif kind == "extra_forbidden":
                msg = "unknown setting; remove it or check the spelling"
            else:
                msg = f"{message(first['msg'])}; fix the value"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ConfigError(f"{where}: {dotted(*path, *loc)}: {msg}{more}") from None

    # applying -------------------------------------------------------------

    def apply(self, resolver: Resolver) -> list[str]:
        """Set the resolver's selections from these settings, in one batch.

        Provider settings of registered candidates are validated first, so an
        invalid file changes nothing.  Only scopes that have selections (or had
        them the last time these settings were applied to ``resolver``) are
        written, so selections an application set in code for other scopes
        survive.  Returns warnings (e.g. settings for a provider that is not
        registered); they are also logged.
        """
        warnings: list[str] = []
        for domain, ds in self.domains.items():
            for key, providers in ds.provider_settings.items():
                registered: dict[str, list[Candidate]] = {}
                for c in resolver.candidates(domain, key):
                    registered.setdefault(c.provider, []).append(c)
                for provider in providers:
                    if provider not in registered:
                        warnings.append(
                            f"settings for {domain}/{key}/{provider} but no such provider is "
                            f"registered (registered: {', '.join(sorted(registered)) or 'none'}); "
                            "check the provider name or install its plugin"
                        )
                        continue
                    for candidate in registered[provider]:
                        self.settings_for(candidate)
        self._derived(resolver)
        applied: set[tuple[str | None, str]] = resolver.extension(_APPLIED, set)
        previous = set(applied)
        scopes: dict[tuple[str | None, str], dict[str, str]] = {}
        for domain in self.all_domains():
            for tenant in (None, *self.tenants(domain)):
                selections = self.selections(domain, tenant=tenant)
                if selections or (tenant, domain) in previous:
                    scopes[(tenant, domain)] = selections
        with resolver.batch():
            for (tenant, domain), selections in scopes.items():
                resolver.set_selections(domain, selections, tenant=tenant)
            for tenant, domain in previous - scopes.keys():
                resolver.set_selections(domain, {}, tenant=tenant)
        applied.clear()
        applied.update(scope for scope, selections in scopes.items() if selections)
        for text in warnings:
            _log.warning("settings warning", detail=text)
        return warnings

    def _derived(self, resolver: Resolver) -> None:
        """``oneiric_settings_applied``: plugins register what they derive from these settings.

        Called after the provider settings validated and before any selection
        changes, so an invalid ``[automations]`` table (a ``ConfigError`` from
        its plugin, naming file and key) leaves the resolver as it was.  A
        plugin that fails otherwise is a ``PluginError``: what it should have
        registered is missing, and saying so beats a silently empty domain.
        """
        from ._errors import PluginError
        from ._hookcall import call_hook

        for result in call_hook(resolver.hooks, "oneiric_settings_applied",
                                resolver=resolver, settings=self):
            if isinstance(result.error, ConfigError):
                raise result.error
            if result.error is not None:
                raise PluginError(
                    f"plugin {result.plugin!r}: oneiric_settings_applied raised "
                    f"{type(result.error).__name__}: {one_line(result.error)}; fix or remove "
                    "the plugin"
                ) from result.error

    def as_dict(self) -> dict[str, Any]:
        """Redacted, JSON-serializable view."""
        return {
            "config_dir": str(self.config_dir) if self.config_dir else None,
            "files": [str(p) for p in self.files],
            "domains": {d: redact(ds.model_dump()) for d, ds in sorted(self.domains.items())},
            "overlay": self._overlay,
            "remote": redact(self.remote),
            "lifecycle": redact(self.lifecycle),
            "host": redact(self.host),
            "automations": redact(self.automations),
            "schedules": redact(self.schedules),
        }

    def __repr__(self) -> str:
        return f"<Settings dir={self.config_dir} domains={sorted(self.domains)}>"


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    hooks: pluggy.PluginManager | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings from ``path`` (see the module docstring for the layout).

    Raises ``ConfigError`` naming file, line (when known) and key path.
    """
    directory = config_dir(path)
    main: Doc | None = None
    docs: list[tuple[Doc, str]] = []  # (doc, domain) of the per-domain files
    if directory is not None:
        main, docs = find_files(directory)

    interp = Interpolator(hooks, environ if environ is not None else os.environ)
    raw: dict[str, tuple[dict[str, Any], Doc, tuple[str, ...]]] = {}
    reserved: dict[str, dict[str, Any]] = {name: {} for name in RESERVED_SECTIONS}
    if main is not None:
        seen_from: dict[str, str] = {}
        for section, body in main.data.items():
            if section in RESERVED_SECTIONS:
                if not isinstance(body, dict):
                    raise ConfigError(
                        f"{main.where((section,))}: [{section}] must be a table, got "
                        f"{type(body).__name__}; write it as a [{section}] section"
                    )
                # Automation and schedule payloads are templates: their ${event...} /
                # ${schedule...} references are the runtime's to check and fill, so only
                # ${env:}/${secret:} resolve here.
                value = interp.mapping(body, main, (section,), (section,),
                                       keep_others=section in _TEMPLATE_SECTIONS)
                reserved[section].update(value)
                continue
            domain = domain_of_section(section, main.where((section,)))
            if domain in seen_from:
                raise ConfigError(
                    f"{main.where((section,))}: domain {domain!r} appears as both "
                    f"[{seen_from[domain]}] and [{section}]; keep one"
                )
            seen_from[domain] = section
            if not isinstance(body, dict):
                raise ConfigError(
                    f"{main.where((section,))}: {section}: a domain must be a table, got "
                    f"{type(body).__name__}; write it as a [{section}] section"
                )
            raw[domain] = (body, main, (section,))
    for doc, domain in docs:
        raw[domain] = (doc.data, doc, ())  # a per-domain file overrides the section

    domains: dict[str, DomainSettings] = {}
    origins: dict[str, tuple[Doc, tuple[str, ...]]] = {}
    for domain, (body, doc, prefix) in raw.items():
        body = interp.mapping(body, doc, prefix, (domain,))
        domains[domain] = validate_domain(domain, body, doc, prefix)
        origins[domain] = (doc, prefix)

    # An existing state dir must be private: its overlay chooses providers.
    overlay_dir = _state_dir(state_dir, create=False)
    overlay = read_overlay(overlay_dir)
    check_overlay(overlay, overlay_dir / OVERLAY_FILE)
    files = tuple(d.path for d, _ in docs) + ((main.path,) if main else ())
    return Settings(
        domains,
        config_dir=directory,
        files=tuple(sorted(files)),
        origins=origins,
        remote=reserved["remote"],
        lifecycle=reserved["lifecycle"],
        overlay=overlay,
        host=reserved["host"],
        automations=reserved["automations"],
        schedules=reserved["schedules"],
    )
