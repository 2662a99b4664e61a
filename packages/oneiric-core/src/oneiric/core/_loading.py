"""Lazy ``"module:attr"`` references.

Registration stores references as strings so that discovering 200 plugins
imports none of their heavy code; the reference is imported the first time a
provider is activated.  Any failure becomes a one-line ``FactoryError`` that
says whether the module is missing (install something) or broken (fix it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._candidate import is_reference
from ._errors import FactoryError
from ._text import describe_exception

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._candidate import Candidate

__all__ = [
    "import_reference",
    "lazy_exports",
    "resolve_factory",
    "resolve_settings_model",
]


def import_reference(reference: str, *, what: str = "reference") -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Typed ``Any``: the attribute is whatever the reference names (a factory, a
    model class, an application object); callers check what they need.

    Raises ``FactoryError`` naming the reference and the underlying cause.
    """
    if not isinstance(reference, str) or not is_reference(reference):
        raise FactoryError(
            f"invalid {what} {reference!r}: expected a 'package.module:attr' string"
        )
    module_name, _, attr_path = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise FactoryError(
                f"cannot import {what} {reference!r}: no module named {missing!r}; "
                "install the distribution that provides it or fix the reference"
            ) from exc
        raise FactoryError(
            f"cannot import {what} {reference!r}: module {module_name!r} needs {missing!r}, "
            f"which is not installed; install it (or the provider's extra)"
        ) from exc
    except Exception as exc:  # an import may raise anything; report it on one line
        raise FactoryError(
            f"cannot import {what} {reference!r}: importing module {module_name!r} raised "
            f"{describe_exception(exc)}; fix that module or its configuration"
        ) from exc
    done: list[str] = []
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            owner = ".".join([module_name, *done]) if done else module_name
            raise FactoryError(
                f"cannot import {what} {reference!r}: {owner!r} has no attribute {part!r}; "
                "check the spelling or the installed version"
            ) from exc
        done.append(part)
    return obj


def resolve_factory(candidate: Candidate) -> Callable[..., object]:
    """Return the callable behind ``candidate.factory`` (importing it if a string)."""
    factory = candidate.factory
    what = f"factory of {candidate.domain}/{candidate.key}/{candidate.provider}"
    if isinstance(factory, str):
        factory = import_reference(factory, what=what)
    if not callable(factory):
        raise FactoryError(
            f"{what} is a {type(factory).__name__}, not callable; "
            "point it at a class or function"
        )
    return factory


def resolve_settings_model(candidate: Candidate) -> type[BaseModel] | None:
    """Return the settings model class of ``candidate`` (or None).

    The model is checked to be a pydantic model class (duck-typed, so that this
    module does not import pydantic): a wrong reference is reported here, by
    name, rather than as an ``AttributeError`` during validation.
    """
    model = candidate.settings_model
    if model is None:
        return None
    what = f"settings_model of {candidate.domain}/{candidate.key}/{candidate.provider}"
    if isinstance(model, str):
        model = import_reference(model, what=what)
    if not isinstance(model, type) or not callable(getattr(model, "model_validate", None)):
        raise FactoryError(
            f"{what} is {model!r}, not a pydantic model class; "
            "point it at a pydantic BaseModel subclass"
        )
    return model




def lazy_exports(
    package: str, table: Mapping[str, str], *, base: str | None = None
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports each public name from its submodule on first use.

    ``table`` maps a public name to the submodule (relative to ``package``,
    with or without a leading dot) that defines it.  A package's ``__init__``
    uses it as ``__getattr__ = lazy_exports(__name__, _LAZY)``: importing the
    package then costs nothing of what those names pull in (pydantic for
    settings, asyncio and ssl for remote sync, a client library for a cache),
    and after the first access the name is a plain module attribute.
    ``base`` is the package the submodules are relative to when ``package`` is
    a plain module (``oneiric.core.helpers`` serving names of ``oneiric.core``).
    """
    import sys

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module("." + module.lstrip("."), base or package), name)
        setattr(sys.modules[package], name, value)  # next access skips this function
        return value

    return __getattr__
