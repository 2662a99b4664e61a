"""The two value types everything else passes around: ``Source`` and ``Candidate``.

Both are frozen so that a cached winner can be handed to any thread without
copying, and so that an explanation computed once stays true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._errors import InvalidCandidateError
from ._value import Value, readable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pydantic import BaseModel

__all__ = ["NAME_PATTERN", "Candidate", "Source", "validate_name"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
_REF_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
# Names seen valid before: registration of 100k candidates reuses a few domains.
_valid_names: set[str] = set()


def validate_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid domain/key/provider name, else raise ``ValueError``.

    One pattern everywhere (code, config, manifests) so that a name that works
    in Python also works in a TOML table, a CLI argument and a manifest.
    """
    if value in _valid_names:
        return value
    if not isinstance(value, str) or not _NAME_RE.match(value) or value.endswith("\n"):
        raise InvalidCandidateError(
            f"invalid {what} name {value!r}: use 1-64 characters of a-z, 0-9, '_', '.', '-' "
            "starting with a letter or digit"
        )
    if len(_valid_names) < 65536:
        _valid_names.add(value)
    return value


_valid_refs: set[str] = set()


def is_reference(value: str) -> bool:
    """True if ``value`` is a syntactically valid ``"module:attr"`` reference."""
    if value in _valid_refs:
        return True
    if not _REF_RE.match(value) or value.endswith("\n"):
        return False
    if len(_valid_refs) < 65536:
        _valid_refs.add(value)
    return True


def _check_settings_model(model: object, domain: str, key: str, provider: str) -> None:
    if isinstance(model, str) and not is_reference(model):
        raise InvalidCandidateError(
            f"invalid settings_model {model!r} for {domain}/{key}/{provider}: "
            "expected a pydantic model class or a 'package.module:attr' string"
        )


def _bad_number(
    priority: object, stack_level: object, domain: str, key: str, provider: str
) -> None:
    where = f"{domain}/{key}/{provider}"
    if priority is not None and type(priority) is not int:  # bool is not a priority
        raise InvalidCandidateError(
            f"invalid priority {priority!r} for {where}: expected an int or None"
        )
    raise InvalidCandidateError(f"invalid stack_level {stack_level!r} for {where}: expected an int")


@readable
@dataclass(frozen=True, slots=True, init=False)
class Source(Value):
    """Where a candidate came from.

    ``kind`` and ``name`` form the stable ``origin`` used for identity and for the
    operator's stack order; ``version`` and ``detail`` are provenance only, so a
    plugin upgrade replaces its candidates instead of duplicating them.
    """

    kind: str
    name: str
    version: str | None
    detail: str | None
    # built once: every candidate's identity holds this same tuple (72 bytes each otherwise)
    _origin: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __init__(
        self, kind: str, name: str, version: str | None = None, detail: str | None = None
    ) -> None:
        for what, value in (("kind", kind), ("name", name)):
            if not isinstance(value, str) or not value or ":" in value or "@" in value:
                raise InvalidCandidateError(
                    f"invalid Source {what} {value!r}: a non-empty string without ':' or '@'"
                )
        _set = object.__setattr__
        _set(self, "kind", kind)
        _set(self, "name", name)
        _set(self, "version", None if version is None else str(version))
        _set(self, "detail", detail)
        _set(self, "_origin", (kind, name))

    @property
    def origin(self) -> tuple[str, str]:
        """``(kind, name)``: the part of a source that identifies it."""
        return self._origin

    def __str__(self) -> str:
        text = f"{self.kind}:{self.name}"
        return f"{text}=={self.version}" if self.version else text


APP_SOURCE = Source("code", "app")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@readable
@dataclass(frozen=True, slots=True, init=False)
class Candidate(Value):
    """One provider that could serve ``(domain, key)``.

    Identity is ``(domain, key, provider, source.origin)``: registering the same
    identity again replaces the previous candidate.  ``factory`` and
    ``settings_model`` may be ``"module:attr"`` strings so that registering a
    candidate never imports the code behind it; they are imported at activation.
    ``metadata`` is free-form (JSON values of any shape) and takes no part in
    equality.  The ``__init__`` is written out: it validates every field, and
    registration of 100k candidates measures its cost.
    """

    domain: str
    key: str
    provider: str
    factory: Callable[..., object] | str
    priority: int | None
    stack_level: int
    capabilities: frozenset[str]
    source: Source
    settings_model: type[BaseModel] | str | None
    description: str
    metadata: Mapping[str, Any] = field(compare=False)
    _identity: tuple[str, str, str, tuple[str, str]] = field(
        init=False, repr=False, compare=False
    )

    def __init__(
        self,
        domain: str,
        key: str,
        provider: str,
        factory: Callable[..., object] | str,
        *,
        priority: int | None = None,
        stack_level: int = 0,
        capabilities: Iterable[str] = frozenset(),
        source: Source = APP_SOURCE,
        settings_model: type[BaseModel] | str | None = None,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        # Fast checks first; the error messages are built only when something is wrong.
        if domain not in _valid_names:
            validate_name(domain, "domain")
        if key not in _valid_names:
            validate_name(key, "key")
        if provider not in _valid_names:
            validate_name(provider, "provider")
        if isinstance(factory, str):
            if factory not in _valid_refs and not is_reference(factory):
                raise InvalidCandidateError(
                    f"invalid factory {factory!r} for {domain}/{key}/{provider}: "
                    "expected a callable or a 'package.module:attr' string"
                )
        elif not callable(factory):
            raise InvalidCandidateError(
                f"invalid factory {factory!r} for {domain}/{key}/{provider}: "
                "expected a callable or a 'package.module:attr' string"
            )
        if settings_model is not None:
            _check_settings_model(settings_model, domain, key, provider)
        if (priority is not None and type(priority) is not int) or type(stack_level) is not int:
            _bad_number(priority, stack_level, domain, key, provider)
        if type(source) is not Source and not isinstance(source, Source):
            raise InvalidCandidateError(
                f"invalid source {source!r} for {domain}/{key}/{provider}: expected a Source"
            )
        if type(capabilities) is not frozenset:
            capabilities = (
                frozenset((capabilities,))
                if isinstance(capabilities, str)
                else frozenset(capabilities)
            )
        if capabilities:
            for cap in capabilities:
                if not isinstance(cap, str) or not cap:
                    raise InvalidCandidateError(
                        f"invalid capability {cap!r} for {domain}/{key}/{provider}: "
                        "expected a non-empty string"
                    )
        if type(description) is not str:
            raise InvalidCandidateError(
                f"invalid description for {domain}/{key}/{provider}: expected a string"
            )
        # the slots' own setters (bound after the class is built, below): a third
        # faster than object.__setattr__ per field, and construction is on every
        # registration's path
        _set_domain(self, domain)
        _set_key(self, key)
        _set_provider(self, provider)
        _set_factory(self, factory)
        _set_priority(self, priority)
        _set_stack_level(self, stack_level)
        _set_capabilities(self, capabilities)
        _set_source(self, source)
        _set_settings_model(self, settings_model)
        _set_description(self, description)
        _set_metadata(self, MappingProxyType(dict(metadata)) if metadata else _EMPTY)
        _set_identity(self, (domain, key, provider, source._origin))

    @property
    def identity(self) -> tuple[str, str, str, tuple[str, str]]:
        """``(domain, key, provider, source.origin)``."""
        return self._identity

    @property
    def qualified_provider(self) -> str:
        """``provider@kind:name``: how a selection names this exact candidate."""
        return f"{self.provider}@{self.source.kind}:{self.source.name}"

    def evolve(self, **changes: object) -> Candidate:
        """Return a copy with ``changes`` applied (validated again); alias of ``replace``."""
        return self.replace(**changes)


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of slot ``name``: sets the field past the frozen ``__setattr__``."""
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


(
    _set_domain,
    _set_key,
    _set_provider,
    _set_factory,
    _set_priority,
    _set_stack_level,
    _set_capabilities,
    _set_source,
    _set_settings_model,
    _set_description,
    _set_metadata,
    _set_identity,
) = (
    _slot_setter(Candidate, name)
    for name in (
        "domain", "key", "provider", "factory", "priority", "stack_level", "capabilities",
        "source", "settings_model", "description", "metadata", "_identity",
    )
)
