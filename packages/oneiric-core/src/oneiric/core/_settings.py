"""Settings: selections, provider settings, tenants and swap policies from files.

Layout of the config directory (``path``, else ``ONEIRIC_CONFIG``, else
``./settings`` if it exists, else empty settings)::

    oneiric.toml            one section per domain ([adapter], [service], ...),
                            plus the reserved sections [remote] and [lifecycle]
    adapters.toml|yaml|yml  one domain per file; overrides that domain's section
    services.* tasks.* events.* workflows.* actions.*
    <domain>.toml|yaml|yml  any other domain (``remote``/``lifecycle`` are reserved:
                            they live in oneiric.toml only)

Per domain: ``selections`` (key -> provider), ``provider_settings.<key>.<provider>``
(validated by the candidate's ``settings_model``), ``tenants.<name>.selections``
and ``swap_policy.<key>`` (``sticky`` | ``greedy``).  ``${env:NAME}``,
``${env:NAME:-default}`` and ``${secret:NAME}`` are interpolated; a value that
contains a secret becomes a ``pydantic.SecretStr`` and is redacted in every
output.  The machine-owned overlay ``<state dir>/selections.json`` (written by
``oneiric swap``) takes precedence over the user's files, which are never
rewritten.

pydantic is imported by this module only, and this module only when settings
are loaded.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from ._candidate import Candidate, validate_name
from ._errors import ConfigError
from ._filelock import exclusive_lock
from ._loading import resolve_settings_model
from ._logging import get_logger
from ._precedence import parse_selection
from ._redact import redact, register_secret, scrub_text
from ._safeload import limited_loader_namespace, load_json, load_toml, load_yaml, read_text
from ._statedir import make_private_dirs
from ._statedir import state_dir as _state_dir

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

BUILTIN_DOMAINS = ("adapter", "service", "task", "event", "workflow", "action")
_PLURALS = {f"{d}s": d for d in BUILTIN_DOMAINS}
RESERVED_SECTIONS = ("remote", "lifecycle")
OVERLAY_FILE = "selections.json"
_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_INTERP = re.compile(r"\$\{(env|secret):([A-Za-z0-9_.\-]+)(?::-([^}]*))?\}")
# Anything that looks like a reference, so that a typo is an error, not a literal.
_REF = re.compile(r"\$\{\s*(?:env|secret)\b[^}]*\}?", re.I)


def _q(name: object) -> str:
    """``name`` as it may appear inside a one-line error message.

    Keys, tenant and provider names come from files: a newline (or any other
    line break or control character) would split the message.  Printable
    names are shown as they are; anything else - the empty name too - as its
    ``repr``, which escapes every such character.
    """
    text = str(name)
    if text and text.isprintable():
        return text
    return repr(text)


def _dotted(*parts: object) -> str:
    """A key path for an error message, each part quoted by ``_q``."""
    return ".".join(_q(p) for p in parts)


def _msg(text: str) -> str:
    """A quoted message (a validator's, a parser's) kept on one line."""
    return scrub_text(text).replace("\r", "\\r").replace("\n", "\\n")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantSettings(_Strict):
    selections: dict[str, str] = {}


class DomainSettings(_Strict):
    """The settings of one domain."""

    selections: dict[str, str] = {}
    provider_settings: dict[str, dict[str, dict[str, Any]]] = {}
    tenants: dict[str, TenantSettings] = {}
    swap_policy: dict[str, Literal["sticky", "greedy"]] = {}


# ------------------------------------------------------------------ parsing


class _Doc:
    """One parsed file: its data and enough text to locate keys by line."""

    def __init__(self, path: Path, data: dict[str, Any], text: str) -> None:
        self.path = path
        self.data = data
        self.text = text

    def line_of(self, parts: tuple[Any, ...]) -> int | None:
        """Best-effort line number of the key path ``parts``.

        Each key is searched after the previous one, as a TOML table header
        component (``[a.b]``), a TOML/YAML key (``b =``, ``b:``) or a dotted key
        (``a.b =``), so ``port`` is found under its own provider rather than
        at the first ``port`` of the file.  Returns the line of the deepest
        key found.
        """
        line: int | None = None
        pos = 0
        for part in parts:
            if not isinstance(part, str):
                continue
            name = re.escape(part)
            pattern = re.compile(
                rf"(?:^|(?<=[\[.\s{{,]))[\"']?{name}[\"']?[ \t]*(?:[=:.\]])", re.M
            )
            match = pattern.search(self.text, pos)
            if match is None:
                break
            pos = match.start()
            line = self.text.count("\n", 0, pos) + 1
        return line

    def where(self, parts: tuple[Any, ...]) -> str:
        line = self.line_of(parts)
        return f"{self.path}:{line}" if line else str(self.path)


@functools.cache
def _yaml_loader() -> Any:
    """A ``yaml.SafeLoader`` subclass that refuses duplicate keys (None without PyYAML).

    PyYAML keeps the last of two equal keys; a silently ignored selection is
    exactly the kind of surprise settings must not have.
    """
    try:
        import yaml
    except ImportError:
        return None

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)  # YAML merge keys (<<: *base)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in mapping
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable key {key!r}", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            mapping[key] = loader.construct_object(value_node, deep=deep)
        return mapping

    # Built with type() so that mypy accepts it with and without types-PyYAML.
    # It counts expanded nodes and depth while composing (oneiric.core._safeload).
    namespace = {"__doc__": _yaml_loader.__doc__, **limited_loader_namespace()}
    loader: Any = type("StrictLoader", (yaml.SafeLoader,), namespace)
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return loader


def _parse_file(path: Path) -> _Doc:
    fmt = _FORMATS[path.suffix.lower()]
    try:
        text = read_text(path, "settings file", "fix the file or its permissions")
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file disappeared while loading; retry") from None
    if fmt == "toml":
        data: Any = load_toml(text, path)
    else:
        loader = _yaml_loader()
        if loader is None:
            raise ConfigError(
                f"{path}: YAML settings need PyYAML; run 'pip install \"oneiric-core[yaml]\"' "
                "or use TOML"
            )
        data = load_yaml(text, path, loader)
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return _Doc(path, data, text)


def _domain_of_section(name: str, where: str) -> str:
    domain = _PLURALS.get(name, name)
    try:
        return validate_name(domain, "domain")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ------------------------------------------------------------ interpolation


class _Interpolator:
    """Replaces ``${env:...}`` and ``${secret:...}`` in string values.

    Errors name the file, the line of the key and its dotted path, like every
    other settings error.
    """

    def __init__(self, hooks: pluggy.PluginManager | None, environ: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.environ = environ

    def secret(self, name: str, where: str) -> str:
        hooks = self.hooks
        if hooks is None:
            from ._hooks import get_plugin_manager

            hooks = get_plugin_manager()
        try:
            value = hooks.hook.oneiric_secret(name=name)
        except Exception as exc:
            detail = scrub_text(" ".join(str(exc).split()))
            raise ConfigError(
                f"{where}: secret source failed for {name!r}: {type(exc).__name__}: {detail}; "
                "check the secrets plugin and its configuration"
            ) from None
        if value is None:
            from ._secrets import env_name, secrets_dir

            raise ConfigError(
                f"{where}: secret {name!r} not found; set {env_name(name)} or create "
                f"{secrets_dir() / name} (or install a secrets plugin)"
            )
        value = str(value)
        # Recorded before anything can print it: from here on every output that
        # contains it is redacted, whatever type a provider's model gives it.
        register_secret(value)
        return value

    def value(self, value: Any, doc: _Doc, parts: tuple[str, ...], keypath: tuple[str, ...]) -> Any:
        """Interpolate ``value`` found at ``parts`` of ``doc`` (shown as ``keypath``)."""
        if isinstance(value, dict):
            return {
                k: self.value(v, doc, (*parts, str(k)), (*keypath, str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            head, last = keypath[:-1], keypath[-1]
            return [
                self.value(v, doc, parts, (*head, f"{last}[{i}]")) for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or "${" not in value:
            return value
        where = f"{doc.where(parts)}: {_dotted(*keypath)}"
        for ref in _REF.finditer(value):
            if not _INTERP.fullmatch(ref.group(0)):
                raise ConfigError(
                    f"{where}: malformed reference {ref.group(0)!r}; write ${{env:NAME}}, "
                    "${env:NAME:-default} or ${secret:NAME}"
                )
        is_secret = False

        def replace(match: re.Match[str]) -> str:
            nonlocal is_secret
            kind, name, default = match.group(1), match.group(2), match.group(3)
            if kind == "env":
                found = self.environ.get(name)
                if found is None:
                    if default is not None:
                        return default
                    raise ConfigError(
                        f"{where}: environment variable {name} is not set; set it or write "
                        f"${{env:{name}:-default}}"
                    )
                return found
            if default is not None:
                raise ConfigError(
                    f"{where}: ${{secret:{name}}} takes no default; "
                    "a missing secret is always an error"
                )
            is_secret = True
            return self.secret(name, where)

        result = _INTERP.sub(replace, value)
        return SecretStr(result) if is_secret else result


def _reveal(value: Any) -> Any:
    """Unwrap SecretStr values so a provider's own model decides how to hold them."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        register_secret(secret)  # also a SecretStr built in code: it is about to become a str
        return secret
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


# ------------------------------------------------------------------ overlay


def read_overlay(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``<state dir>/selections.json`` (empty if absent); ConfigError if malformed."""
    path = Path(state_dir) / OVERLAY_FILE
    fix = "fix or delete the file (it is written by 'oneiric swap')"
    try:
        text = read_text(
            path, "selection overlay", "check its permissions or set ONEIRIC_STATE_DIR"
        )
    except FileNotFoundError:
        return {"selections": {}, "tenants": {}}
    data = load_json(text, path, "selection overlay", fix)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("selections", {}), dict)
        or not isinstance(data.get("tenants", {}), dict)
    ):
        raise ConfigError(
            f"{path}: selection overlay must be an object with 'selections' and 'tenants' "
            "mappings; fix or delete the file"
        )
    data.setdefault("selections", {})
    data.setdefault("tenants", {})
    return data


def write_overlay(
    state_dir: str | os.PathLike[str],
    domain: str,
    key: str,
    provider: str | None,
    *,
    tenant: str | None = None,
) -> Path:
    """Set (or with ``provider=None`` clear) one selection in the overlay, atomically.

    Read, changed and written under an exclusive lock (``.selections.json.lock``
    beside it), so concurrent ``oneiric swap`` commands each keep their
    selection; written to a temporary file, fsynced and renamed (then the
    directory fsynced), so a running application's watcher never reads half
    a file and a crash never loses an acknowledged write.
    """
    directory = Path(state_dir)
    validate_name(domain, "domain")
    validate_name(key, "key")
    if provider is not None:
        validate_name(parse_selection(provider)[0], "provider")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ConfigError(f"invalid tenant {tenant!r}: expected a non-empty string")
    target = directory / OVERLAY_FILE
    fix = "set ONEIRIC_STATE_DIR to a writable directory"
    try:
        make_private_dirs(directory)
        with exclusive_lock(directory / f".{OVERLAY_FILE}.lock"):
            # Read, change, replace - all under the lock, so no concurrent writer's
            # selection is lost (a rename alone makes writes atomic, not updates).
            # Inside, only ConfigError is raised: the OSError below is the lock's.
            data = read_overlay(directory)
            # The whole file is checked before it is changed: a domain entry that is
            # not an object would crash the update, and rewriting the file would
            # keep any other malformed entry.  Nothing is written on error.
            _check_overlay(data, target)
            if tenant is None:
                scope = data["selections"].setdefault(domain, {})
            else:
                scope = data["tenants"].setdefault(domain, {}).setdefault(tenant, {})
            if provider is None:
                scope.pop(key, None)
            else:
                scope[key] = provider
            _replace_json(target, data, fix)
    except OSError as exc:
        raise ConfigError(
            f"{target}: cannot lock selection overlay: {exc.strerror or exc}; {fix}"
        ) from None
    return target


def _replace_json(target: Path, data: Any, fix: str) -> None:
    """Write ``data`` to ``target`` atomically and durably (temp file, fsync, rename, dir fsync)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ConfigError(
            f"{target}: cannot write selection overlay: {exc.strerror or exc}; {fix}"
        ) from None
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is done
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ----------------------------------------------------------------- settings

_applied: weakref.WeakKeyDictionary[Resolver, set[tuple[str | None, str]]] = (
    weakref.WeakKeyDictionary()
)


class Settings:
    """Validated settings; immutable after loading.  Build with ``load_settings``."""

    def __init__(
        self,
        domains: Mapping[str, DomainSettings] | None = None,
        *,
        config_dir: Path | None = None,
        files: tuple[Path, ...] = (),
        origins: Mapping[str, tuple[_Doc, tuple[str, ...]]] | None = None,
        remote: Mapping[str, Any] | None = None,
        lifecycle: Mapping[str, Any] | None = None,
        overlay: Mapping[str, Any] | None = None,
    ) -> None:
        self.domains: dict[str, DomainSettings] = dict(domains or {})
        self.config_dir = config_dir
        self.files = files
        self.remote: dict[str, Any] = dict(remote or {})
        self.lifecycle: dict[str, Any] = dict(lifecycle or {})
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

    def settings_for(self, candidate: Candidate) -> Any:
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
            return model.model_validate(_reveal(raw))
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
                msg = f"{_msg(first['msg'])}; fix the value"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ConfigError(f"{where}: {_dotted(*path, *loc)}: {msg}{more}") from None

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
        previous = _applied.get(resolver, set())
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
        _applied[resolver] = {scope for scope, selections in scopes.items() if selections}
        for text in warnings:
            _log.warning("settings warning", detail=text)
        return warnings

    def as_dict(self) -> dict[str, Any]:
        """Redacted, JSON-serializable view."""
        return {
            "config_dir": str(self.config_dir) if self.config_dir else None,
            "files": [str(p) for p in self.files],
            "domains": {d: redact(ds.model_dump()) for d, ds in sorted(self.domains.items())},
            "overlay": self._overlay,
            "remote": redact(self.remote),
            "lifecycle": redact(self.lifecycle),
        }

    def __repr__(self) -> str:
        return f"<Settings dir={self.config_dir} domains={sorted(self.domains)}>"


def _config_dir(path: str | os.PathLike[str] | None) -> Path | None:
    if path is not None:
        target = Path(path).expanduser()
        if not target.exists():
            raise ConfigError(
                f"config directory {str(target)!r} does not exist; create it or pass another "
                "--config / ONEIRIC_CONFIG"
            )
        return target
    env = os.environ.get("ONEIRIC_CONFIG")
    if env:
        target = Path(env).expanduser()
        if not target.exists():
            raise ConfigError(
                f"ONEIRIC_CONFIG points to {str(target)!r}, which does not exist; "
                "create it or unset ONEIRIC_CONFIG"
            )
        return target
    local = Path("settings")
    return local if local.is_dir() else None


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
    directory = _config_dir(path)
    docs: list[tuple[_Doc, str]] = []  # (doc, domain) of the per-domain files
    main: _Doc | None = None
    if directory is not None:
        if not directory.is_dir():
            if directory.suffix.lower() not in _FORMATS:
                raise ConfigError(f"{directory}: expected a .toml, .yaml or .yml settings file")
            main = _parse_file(directory)
        else:
            per_domain: dict[str, Path] = {}
            try:
                entries = sorted(directory.iterdir())
            except OSError as exc:
                raise ConfigError(
                    f"{directory}: cannot list the config directory: {exc.strerror or exc}; "
                    "check its permissions"
                ) from None
            for file in entries:
                # Not only regular files: a directory or FIFO named like a settings
                # file is an error (read_text says so), never silently skipped.
                if file.suffix.lower() not in _FORMATS:
                    continue
                if file.stem == "oneiric":
                    if file.suffix.lower() != ".toml":
                        raise ConfigError(f"{file}: the main settings file must be oneiric.toml")
                    main = _parse_file(file)
                    continue
                if file.stem in RESERVED_SECTIONS:
                    raise ConfigError(
                        f"{file}: {file.stem!r} is a reserved section, not a domain; "
                        f"move it to [{file.stem}] in oneiric.toml"
                    )
                domain = _domain_of_section(file.stem, str(file))
                if domain in per_domain:
                    raise ConfigError(
                        f"{file}: domain {domain!r} is also configured by {per_domain[domain]}; "
                        "keep one file per domain"
                    )
                per_domain[domain] = file
            for domain, file in per_domain.items():
                docs.append((_parse_file(file), domain))

    interp = _Interpolator(hooks, environ if environ is not None else os.environ)
    raw: dict[str, tuple[dict[str, Any], _Doc, tuple[str, ...]]] = {}
    remote: dict[str, Any] = {}
    lifecycle: dict[str, Any] = {}
    if main is not None:
        seen_from: dict[str, str] = {}
        for section, body in main.data.items():
            if section in RESERVED_SECTIONS:
                if not isinstance(body, dict):
                    raise ConfigError(
                        f"{main.where((section,))}: [{section}] must be a table, got "
                        f"{type(body).__name__}; write it as a [{section}] section"
                    )
                value = interp.value(body, main, (section,), (section,))
                (remote if section == "remote" else lifecycle).update(value)
                continue
            domain = _domain_of_section(section, main.where((section,)))
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
    origins: dict[str, tuple[_Doc, tuple[str, ...]]] = {}
    for domain, (body, doc, prefix) in raw.items():
        body = interp.value(body, doc, prefix, (domain,))
        try:
            ds = DomainSettings.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(str(p) for p in first.get("loc", ()))
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            msg = f"{_msg(first['msg'])}; fix the value"
            if first.get("type") == "extra_forbidden":
                msg = (
                    "unknown setting; expected selections, provider_settings, tenants or "
                    "swap_policy"
                    if len(loc) == 1
                    else "unknown setting; remove it or check the spelling"
                )
            raise ConfigError(
                f"{doc.where(prefix + loc)}: {_dotted(domain, *loc)}: {msg}{more}"
            ) from None
        _check_names(domain, ds, doc, prefix)
        domains[domain] = ds
        origins[domain] = (doc, prefix)

    # An existing state dir must be private: its overlay chooses providers.
    overlay_dir = _state_dir(state_dir, create=False)
    overlay = read_overlay(overlay_dir)
    _check_overlay(overlay, overlay_dir / OVERLAY_FILE)
    files = tuple(d.path for d, _ in docs) + ((main.path,) if main else ())
    return Settings(
        domains,
        config_dir=directory,
        files=tuple(sorted(files)),
        origins=origins,
        remote=remote,
        lifecycle=lifecycle,
        overlay=overlay,
    )


def _check_selection_map(
    mapping: Mapping[str, Any], locate: Callable[[str], str], path: str
) -> None:
    for key, value in mapping.items():
        try:
            validate_name(key, "key")
            if not isinstance(value, str):
                raise ValueError(
                    f"expected a provider name, got {type(value).__name__}; "
                    "write the provider name as a string"
                )
            provider, _ = parse_selection(value)
            validate_name(provider, "provider")
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{locate(key)}: {path}.{_q(key)}: {_msg(str(exc))}") from None


def _where_key(doc: _Doc, scope: tuple[str, ...], key: str) -> str:
    return doc.where((*scope, key))


def _check_names(domain: str, ds: DomainSettings, doc: _Doc, prefix: tuple[str, ...]) -> None:
    _check_selection_map(
        ds.selections,
        lambda key: doc.where((*prefix, "selections", key)),
        f"{domain}.selections",
    )
    for tenant, ts in ds.tenants.items():
        if not tenant:
            raise ConfigError(
                f"{doc.where((*prefix, 'tenants'))}: {domain}.tenants: empty tenant name; "
                "name the tenant"
            )
        scope = (*prefix, "tenants", tenant, "selections")
        _check_selection_map(
            ts.selections,
            functools.partial(_where_key, doc, scope),
            _dotted(domain, "tenants", tenant, "selections"),
        )
    for key, providers in ds.provider_settings.items():
        for provider in providers:
            try:
                validate_name(key, "key")
                validate_name(provider, "provider")
            except ValueError as exc:
                where = doc.where((*prefix, "provider_settings", key, provider))
                raise ConfigError(
                    f"{where}: {_dotted(domain, 'provider_settings', key, provider)}: {exc}"
                ) from None


def _check_overlay(overlay: Mapping[str, Any], path: Path) -> None:
    fix = "fix or delete the file (it is written by 'oneiric swap')"
    try:
        _check_overlay_content(overlay, path, fix)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if fix in message else f"{message}; {fix}") from None


def _check_overlay_content(overlay: Mapping[str, Any], path: Path, fix: str) -> None:
    def here(_key: str) -> str:
        return str(path)

    for domain, mapping in overlay["selections"].items():
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: selections.{_q(domain)} must be an object; {fix}")
        _check_overlay_domain(domain, path, fix)
        _check_selection_map(mapping, here, _dotted("selections", domain))
    for domain, tenants in overlay["tenants"].items():
        if not isinstance(tenants, dict):
            raise ConfigError(f"{path}: tenants.{_q(domain)} must be an object; {fix}")
        _check_overlay_domain(domain, path, fix)
        for tenant, mapping in tenants.items():
            if not tenant or not isinstance(mapping, dict):
                raise ConfigError(
                    f"{path}: {_dotted('tenants', domain, tenant)} must be an object under a "
                    f"non-empty tenant name; {fix}"
                )
            _check_selection_map(mapping, here, _dotted("tenants", domain, tenant))


def _check_overlay_domain(domain: str, path: Path, fix: str) -> None:
    try:
        validate_name(domain, "domain")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}; {fix}") from None
