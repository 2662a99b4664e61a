"""Lazy ``"module:attr"`` references.

Registration stores references as strings so that discovering 200 plugins
imports none of their heavy code; the reference is imported the first time a
provider is activated.  Any failure becomes a one-line ``FactoryError``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._candidate import is_reference
from ._errors import FactoryError

__all__ = ["import_reference", "resolve_factory", "resolve_settings_model"]


def import_reference(reference: str, *, what: str = "reference") -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Raises ``FactoryError`` naming the reference and the underlying cause.
    """
    if not isinstance(reference, str) or not is_reference(reference):
        raise FactoryError(
            f"invalid {what} {reference!r}: expected 'package.module:attr'"
        )
    module_name, _, attr_path = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import may raise anything; report it on one line
        raise FactoryError(
            f"cannot import {what} {reference!r}: module {module_name!r} failed to import "
            f"({type(exc).__name__}: {_one_line(exc)}); install the distribution that provides it"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise FactoryError(
                f"cannot import {what} {reference!r}: {module_name!r} has no attribute "
                f"{attr_path!r}; check the spelling or the installed version"
            ) from exc
    return obj


def resolve_factory(candidate: Any) -> Any:
    """Return the callable behind ``candidate.factory`` (importing it if a string)."""
    factory = candidate.factory
    if isinstance(factory, str):
        factory = import_reference(
            factory, what=f"factory of {candidate.domain}/{candidate.key}/{candidate.provider}"
        )
    if not callable(factory):
        raise FactoryError(
            f"factory of {candidate.domain}/{candidate.key}/{candidate.provider} "
            f"is {type(factory).__name__}, not callable"
        )
    return factory


def resolve_settings_model(candidate: Any) -> Any:
    """Return the settings model class of ``candidate`` (or None)."""
    model = candidate.settings_model
    if isinstance(model, str):
        model = import_reference(
            model,
            what=f"settings_model of {candidate.domain}/{candidate.key}/{candidate.provider}",
        )
    return model


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
