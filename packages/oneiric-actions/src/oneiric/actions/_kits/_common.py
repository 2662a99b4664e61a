"""What every kit needs: its library imported on activation, and payload fields checked.

One home for both, so every kit's bad input reads the same way:
``action 'http.fetch': payload field url must be a string, got int``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, TypeVar

from oneiric.core import ConfigError

from .._errors import ActionInputError

__all__ = ["fields_of", "require", "take"]

_T = TypeVar("_T")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               dict: "an object", Mapping: "an object", list: "an array", bytes: "bytes"}


def require(module: str, *, provider: str, extra: str) -> ModuleType:
    """Import a provider's third-party library, or fail in one line saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"action provider {provider!r} needs {module}, which is not installed; "
            f'pip install "oneiric-actions[{extra}]"'
        ) from None


def fields_of(payload: Any, key: str, allowed: frozenset[str] | set[str]) -> Mapping[str, Any]:
    """The payload as a mapping whose keys are all in ``allowed`` (else ``ActionInputError``)."""
    if not isinstance(payload, Mapping):
        raise ActionInputError(
            f"action {key!r}: the payload must be an object with {', '.join(sorted(allowed))}; "
            f"got {type(payload).__name__}",
            path="<payload>",
        )
    unknown = sorted(str(k) for k in payload if k not in allowed)
    if unknown:
        raise ActionInputError(
            f"action {key!r}: unknown payload field {unknown[0]!r}; "
            f"known: {', '.join(sorted(allowed))}",
            path=unknown[0],
        )
    return payload


def take(
    payload: Mapping[str, Any],
    key: str,
    name: str,
    kinds: type[_T] | tuple[type, ...],
    *,
    default: Any = ...,
) -> Any:
    """Field ``name`` of ``payload`` checked against ``kinds``; required unless ``default``."""
    if name not in payload:
        if default is ...:
            raise ActionInputError(
                f"action {key!r}: payload field {name} is required", path=name
            )
        return default
    value = payload[name]
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in wanted)
        raise ActionInputError(
            f"action {key!r}: payload field {name} must be {names}, got {type(value).__name__}",
            path=name,
        )
    return value
