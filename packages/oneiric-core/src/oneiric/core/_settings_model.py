"""The shape of one domain's settings (pydantic models) and its validation errors.

pydantic is imported here, and this module only when settings are loaded.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ._candidate import validate_name
from ._errors import ConfigError
from ._settings_checks import check_selection_map, dotted, message

if TYPE_CHECKING:
    from ._settings_files import Doc

__all__ = ["DomainSettings", "TenantSettings", "validate_domain"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantSettings(_Strict):
    selections: dict[str, str] = {}


class DomainSettings(_Strict):
    """The settings of one domain."""

    selections: dict[str, str] = {}
    # Provider settings are free-form here: each provider's own ``settings_model``
    # validates its mapping when the candidate is activated.
    provider_settings: dict[str, dict[str, dict[str, Any]]] = {}
    tenants: dict[str, TenantSettings] = {}
    swap_policy: dict[str, Literal["sticky", "greedy"]] = {}


def validate_domain(
    domain: str, body: dict[str, Any], doc: Doc, prefix: tuple[str, ...]
) -> DomainSettings:
    """``body`` (interpolated) as ``DomainSettings`` with its names checked.

    A ConfigError names the file, the line and the key path of the first problem.
    """
    try:
        ds = DomainSettings.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first.get("loc", ()))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = f"{message(first['msg'])}; fix the value"
        if first.get("type") == "extra_forbidden":
            msg = (
                "unknown setting; expected selections, provider_settings, tenants or "
                "swap_policy"
                if len(loc) == 1
                else "unknown setting; remove it or check the spelling"
            )
        raise ConfigError(
            f"{doc.where(prefix + loc)}: {dotted(domain, *loc)}: {msg}{more}"
        ) from None
    _check_names(domain, ds, doc, prefix)
    return ds


def _where_key(doc: Doc, scope: tuple[str, ...], key: str) -> str:
    return doc.where((*scope, key))


def _check_names(domain: str, ds: DomainSettings, doc: Doc, prefix: tuple[str, ...]) -> None:
    """Keys, providers and tenant names of one validated domain."""
    check_selection_map(
        ds.selections,
        functools.partial(_where_key, doc, (*prefix, "selections")),
        f"{domain}.selections",
    )
    for tenant, ts in ds.tenants.items():
        if not tenant:
            raise ConfigError(
                f"{doc.where((*prefix, 'tenants'))}: {domain}.tenants: empty tenant name; "
                "name the tenant"
            )
        check_selection_map(
            ts.selections,
            functools.partial(_where_key, doc, (*prefix, "tenants", tenant, "selections")),
            dotted(domain, "tenants", tenant, "selections"),
        )
    for key, providers in ds.provider_settings.items():
        for provider in providers:
            try:
                validate_name(key, "key")
                validate_name(provider, "provider")
            except ValueError as exc:
                where = doc.where((*prefix, "provider_settings", key, provider))
                raise ConfigError(
                    f"{where}: {dotted(domain, 'provider_settings', key, provider)}: {exc}"
                ) from None
