"""The two value types everything else passes around: ``Source`` and ``Candidate``.

Both are frozen so that a cached winner can be handed to any thread without
copying, and so that an explanation computed once stays true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._errors import InvalidCandidateError

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
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not _NAME_RE.match(value) or value.endswith("\n"):
        raise InvalidCandidateError(
            f"invalid {what} name {value!r}: use 1-64 characters of a-z, 0-9, '_', '.', '-' "
            "starting with a letter or digit"
        )
    if len(_valid_names) < 65536:
        _valid_names.add(value)
    return value


def is_reference(value: str) -> bool:
    """True if ``value`` is a syntactically valid ``"module:attr"`` reference."""
    return bool(_REF_RE.match(value))


@attrs.frozen(slots=True)
class Source:
    """Where a candidate came from.

    ``kind`` and ``name`` form the stable ``origin`` used for identity and for the
    operator's stack order; ``version`` and ``detail`` are provenance only, so a
    plugin upgrade replaces its candidates instead of duplicating them.
    """

    kind: str
    name: str
    version: str | None = None
    detail: str | None = None

    def __attrs_post_init__(self) -> None:
        for field, value in (("kind", self.kind), ("name", self.name)):
            if not isinstance(value, str) or not value or ":" in value or "@" in value:
                raise InvalidCandidateError(
                    f"invalid Source {field} {value!r}: a non-empty string without ':' or '@'"
                )

    @property
    def origin(self) -> tuple[str, str]:
        """``(kind, name)``: the part of a source that identifies it."""
        return (self.kind, self.name)

    def __str__(self) -> str:
        text = f"{self.kind}:{self.name}"
        return f"{text}=={self.version}" if self.version else text


APP_SOURCE = Source("code", "app")


def _to_capabilities(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


def _to_metadata(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(slots=True, kw_only=False)
class Candidate:
    """One provider that could serve ``(domain, key)``.

    Identity is ``(domain, key, provider, source.origin)``: registering the same
    identity again replaces the previous candidate.  ``factory`` and
    ``settings_model`` may be ``"module:attr"`` strings so that registering a
    candidate never imports the code behind it; they are imported at activation.
    ``metadata`` is free-form and takes no part in equality.
    """

    domain: str
    key: str
    provider: str
    factory: Callable[..., Any] | str
    priority: int | None = attrs.field(default=None, kw_only=True)
    stack_level: int = attrs.field(default=0, kw_only=True)
    capabilities: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_capabilities, kw_only=True
    )
    source: Source = attrs.field(default=APP_SOURCE, kw_only=True)
    settings_model: Any = attrs.field(default=None, kw_only=True)
    description: str = attrs.field(default="", kw_only=True)
    metadata: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_to_metadata, kw_only=True, eq=False
    )
    _identity: tuple[str, str, str, tuple[str, str]] = attrs.field(
        init=False, repr=False, eq=False, default=None
    )

    def __attrs_post_init__(self) -> None:
        validate_name(self.domain, "domain")
        validate_name(self.key, "key")
        validate_name(self.provider, "provider")
        factory = self.factory
        if isinstance(factory, str):
            if not is_reference(factory):
                raise InvalidCandidateError(
                    f"invalid factory {factory!r} for {self.domain}/{self.key}/{self.provider}: "
                    "expected a callable or a 'package.module:attr' string"
                )
        elif not callable(factory):
            raise InvalidCandidateError(
                f"invalid factory {factory!r} for {self.domain}/{self.key}/{self.provider}: "
                "expected a callable or a 'package.module:attr' string"
            )
        model = self.settings_model
        if isinstance(model, str) and not is_reference(model):
            raise InvalidCandidateError(
                f"invalid settings_model {model!r} for {self.domain}/{self.key}/{self.provider}: "
                "expected a pydantic model class or a 'package.module:attr' string"
            )
        if self.priority is not None and (
            type(self.priority) is not int  # bool is not a priority
        ):
            raise InvalidCandidateError(f"invalid priority {self.priority!r}: expected an int or None")
        if type(self.stack_level) is not int:
            raise InvalidCandidateError(f"invalid stack_level {self.stack_level!r}: expected an int")
        if not isinstance(self.source, Source):
            raise InvalidCandidateError(f"invalid source {self.source!r}: expected a Source")
        for cap in self.capabilities:
            if not isinstance(cap, str) or not cap:
                raise InvalidCandidateError(f"invalid capability {cap!r}: expected a non-empty string")
        object.__setattr__(
            self,
            "_identity",
            (self.domain, self.key, self.provider, (self.source.kind, self.source.name)),
        )

    @property
    def identity(self) -> tuple[str, str, str, tuple[str, str]]:
        """``(domain, key, provider, source.origin)``."""
        return self._identity

    @property
    def qualified_provider(self) -> str:
        """``provider@kind:name``: how a selection names this exact candidate."""
        return f"{self.provider}@{self.source.kind}:{self.source.name}"

    def evolve(self, **changes: Any) -> Candidate:
        """Return a copy with ``changes`` applied (validated again)."""
        return attrs.evolve(self, **changes)
