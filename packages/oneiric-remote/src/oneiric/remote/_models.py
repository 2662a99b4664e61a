"""The manifest schema (pydantic, unknown fields forbidden) and its time rules.

The schema runs on a payload whose signature and canonical form were already
verified: it decides whether an *authentic* document is also a *well-formed*
one.  Strict types everywhere (no coercion of ``"1"`` to ``1``), because what
the publisher signed must be exactly what the client acts on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oneiric.core.helpers import format_timestamp, one_line, parse_timestamp, quote_name

from ._errors import ExpiredManifestError, FutureIssuedError, ManifestFormatError
from ._metadata import check_metadata

__all__ = [
    "ArtifactSpec",
    "ComponentSpec",
    "Manifest",
    "check_time",
    "parse_manifest",
    "parse_timestamp",
]

NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
#: every regex is applied with ``fullmatch``: ``$`` would accept a trailing newline
_FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)

Name = Annotated[str, Field(pattern=NAME)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ArtifactSpec(_Strict):
    """One downloadable archive, named by content: sha256 and size are mandatory."""

    urls: list[str] = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    kind: Literal["wheel", "zip"]


class ComponentSpec(_Strict):
    """One candidate the manifest delivers."""

    domain: Name
    key: Name
    provider: Name
    factory: str
    artifact: Name | None = None
    priority: int | None = None
    stack_level: int = 0
    capabilities: list[Annotated[str, Field(min_length=1)]] = []
    description: str = ""
    #: spec 1.1: a JSON object, shape-checked per domain (``_metadata.check_metadata``)
    metadata: Any = None

    @field_validator("factory")
    @classmethod
    def _factory(cls, value: str) -> str:
        if not _FACTORY.fullmatch(value):
            raise ValueError("expected 'package.module:attr'")
        module, _, attr = value.partition(":")
        if any(part.startswith("_") for part in (*module.split("."), *attr.split("."))):
            raise ValueError("no segment may start with '_'")
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_object(cls, value: Any) -> Any:
        # runs only when the field is present: an explicit null is refused too
        if not isinstance(value, dict):
            raise ValueError(f"metadata must be a JSON object, got {_json_type(value)}")
        return value

    @property
    def module(self) -> str:
        return self.factory.partition(":")[0]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", list: "an array"}.get(type(value), "a value")


class Manifest(_Strict):
    """The signed payload."""

    type_: Literal["oneiric.manifest"] = Field(alias="_type")
    spec_version: str
    repository: Name
    version: int = Field(ge=1)
    issued_at: str
    expires: str
    artifacts: dict[Name, ArtifactSpec] = {}
    components: list[ComponentSpec] = []

    @field_validator("spec_version")
    @classmethod
    def _spec(cls, value: str) -> str:
        if not re.fullmatch(r"\d+\.\d+", value, re.ASCII):
            raise ValueError("expected 'MAJOR.MINOR'")
        if value.split(".")[0] != "1":
            raise ValueError(f"unsupported major version {value!r}; this client reads 1.x")
        return value

    @field_validator("issued_at", "expires")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_timestamp(value)
        return value

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        seen: set[tuple[str, str, str]] = set()
        for index, comp in enumerate(self.components):
            ident = (comp.domain, comp.key, comp.provider)
            if ident in seen:
                raise ValueError(
                    f"components[{index}]: {'/'.join(ident)} appears more than once"
                )
            seen.add(ident)
            if comp.metadata is not None and not _has_metadata(self.spec_version):
                raise ValueError(
                    f"components[{index}]: metadata needs spec_version 1.1 or later (this "
                    f"manifest says {self.spec_version}); set spec_version to 1.1"
                )
            if comp.metadata is not None:
                try:
                    check_metadata(comp.domain, comp.key, comp.metadata)
                except ValueError as exc:
                    raise ValueError(f"components[{index}] {'/'.join(ident)}: {exc}") from None
            if comp.artifact is not None and comp.artifact not in self.artifacts:
                raise ValueError(
                    f"components[{index}]: artifact {comp.artifact!r} is not in artifacts "
                    f"(known: {', '.join(sorted(self.artifacts)) or 'none'})"
                )
        if parse_timestamp(self.expires) <= parse_timestamp(self.issued_at):
            raise ValueError("expires must be after issued_at")
        return self

    @property
    def issued(self) -> datetime:
        return parse_timestamp(self.issued_at)

    @property
    def expiry(self) -> datetime:
        return parse_timestamp(self.expires)


def _has_metadata(spec_version: str) -> bool:
    """Component ``metadata`` exists from spec 1.1 on."""
    return int(spec_version.split(".")[1]) >= 1


def manifest_timestamp(moment: datetime) -> str:
    """``moment`` in the manifest's own form (REMOTE.md: seconds, ``Z``), for payloads.

    ``format_timestamp(..., seconds=True)``: JSON *outputs* carry milliseconds,
    a manifest keeps the form its publishers sign; both parse with
    ``parse_timestamp``.
    """
    return format_timestamp(moment, seconds=True)


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """Validate a verified payload against the schema (``ManifestFormatError``, one line)."""
    try:
        return Manifest.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(quote_name(p) for p in first.get("loc", ()))
        kind = first.get("type")
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "missing":
            msg = "required field is missing"
        else:
            msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            msg = one_line(msg)  # pydantic's own texts are one line; ours too
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = f"manifest field {loc}" if loc else "manifest"
        raise ManifestFormatError(
            f"{where}: {msg}{more}; fix the manifest and sign it again"
        ) from None


def check_time(
    manifest: Manifest, now: datetime, *, max_lifetime_days: float, future_skew_s: float = 300.0
) -> None:
    """Freshness: not expired, not issued in the future, lifetime within the maximum."""
    lifetime = manifest.expiry - manifest.issued
    if lifetime > timedelta(days=max_lifetime_days):
        raise ManifestFormatError(
            f"manifest version {manifest.version} lives {lifetime.days} days "
            f"({manifest.issued_at} to {manifest.expires}), above the maximum of "
            f"{max_lifetime_days:g} days; re-sign it with a shorter expiry"
        )
    if now >= manifest.expiry:
        raise ExpiredManifestError(
            f"manifest {manifest.repository} version {manifest.version} expired at "
            f"{manifest.expires} (now {manifest_timestamp(now)}); the publisher must re-sign it "
            "(a mirror serving it may be stale or freezing you)"
        )
    if manifest.issued - now > timedelta(seconds=future_skew_s):
        raise FutureIssuedError(
            f"manifest {manifest.repository} version {manifest.version} is issued at "
            f"{manifest.issued_at}, in the future (now {manifest_timestamp(now)}); "
            "check this machine's clock or the publisher's"
        )
