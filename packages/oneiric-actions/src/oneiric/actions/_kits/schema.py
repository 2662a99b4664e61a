"""``validation.schema``: validate data against a pydantic model or a JSON Schema.

Providers and payloads (both ``-> {"valid": bool, "errors": [{"path", "message"}]}``):

- ``pydantic``: ``{"data", "model": "package.module:Model", "raise"?: bool}``;
- ``jsonschema``: ``{"data", "schema": {...}, "raise"?: bool}`` (Draft 2020-12,
  formats such as ``email`` and ``date-time`` asserted, no remote ``$ref``:
  a schema that refers outside itself is a bad schema).

Invalid *data* is a result, not an error: ``valid`` is false and ``errors``
lists each failure (at most ``MAX_ERRORS``, sorted by path) with its
``path`` in the field-path syntax of the data kits (``items[2].price``; the
data itself is ``""``).  A caller that wants invalid data to stop a workflow
sends ``"raise": true``: the first failure becomes an ``ActionInputError``
whose ``path`` is ``data.<path>``.  An invalid *schema* or model reference is
always an ``ActionInputError`` (``path`` ``schema...`` or ``model``).

Trust: ``model`` makes this process import the module it names, and an
import runs that module's top-level code.  Only a ``BaseModel`` subclass is
accepted as the result, but the import has happened by then.  So the
pydantic provider is for trusted callers (your application, your workflow
files); to serve others, list the allowed references in the provider setting
``allowed_models`` (prefixes such as ``"myapp.schemas"`` or
``"myapp.schemas:Order"``) - a reference outside them is refused *before*
anything is imported.  Empty (the default) allows any reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from oneiric.core.helpers import one_line

from .._errors import ActionInputError
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take
from ._paths import check_depth, format_path

__all__ = [
    "MAX_ERRORS",
    "JsonSchema",
    "PydanticSchema",
    "PydanticSchemaSettings",
    "validation_result",
]

KEY = "validation.schema"

#: The most errors one result lists (the first ones by path).
MAX_ERRORS: Final = 100
_MESSAGE_CHARS = 300


class PydanticSchemaSettings(BaseModel):
    """Optional settings of the ``pydantic`` provider."""

    model_config = ConfigDict(extra="forbid")

    #: References (or module/reference prefixes) a payload may name; empty = any.
    allowed_models: list[str] = Field(default_factory=list)


def _message(text: object) -> str:
    line = one_line(str(text))
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


def validation_result(
    errors: list[tuple[tuple[Any, ...], str]], *, raise_first: bool
) -> dict[str, Any]:
    """``{"valid", "errors"}`` from ``(path parts, message)`` pairs; or raise the first."""
    listed = sorted(
        ({"path": format_path(list(parts)), "message": _message(message)}
         for parts, message in errors),
        key=lambda e: (e["path"], e["message"]),
    )[:MAX_ERRORS]
    if listed and raise_first:
        first = listed[0]
        where = f"data.{first['path']}" if first["path"] and first["path"][0] != "[" else (
            f"data{first['path']}"
        )
        raise ActionInputError(
            f"action {KEY!r}: {where}: {first['message']}"
            + (f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""),
            path=where,
        )
    return {"valid": not listed, "errors": listed}


def _common_fields(payload: Any, extra: str) -> tuple[Any, bool, Mapping[str, Any]]:
    fields = fields_of(payload, KEY, {"data", extra, "raise"})
    if "data" not in fields:
        take(fields, KEY, "data", object)  # raises: required
    data = fields["data"]
    check_depth(data, "data")
    raise_first = take(fields, KEY, "raise", bool, default=False)
    return data, raise_first, fields


def _allowed(reference: str, prefixes: list[str]) -> bool:
    return not prefixes or any(
        reference == p or reference.startswith((p + ".", p + ":")) for p in prefixes
    )


class PydanticSchema:
    """``validation.schema`` provider ``pydantic``: ``model`` is a ``"module:Model"`` reference."""

    spec = ActionSpec(
        description="validate data against a pydantic model reference",
        idempotent=True,
        side_effects=False,
        blocking=True,
    )

    def __init__(self, settings: PydanticSchemaSettings | None = None) -> None:
        self.settings = settings if settings is not None else PydanticSchemaSettings()
        self._models: dict[str, type[BaseModel]] = {}

    def _model(self, reference: object) -> type[BaseModel]:
        if not isinstance(reference, str):
            raise ActionInputError(
                f"action {KEY!r}: payload field model must be a \"package.module:Model\" "
                f"string, got {type(reference).__name__}",
                path="model",
            )
        cached = self._models.get(reference)
        if cached is not None:
            return cached
        if not _allowed(reference, self.settings.allowed_models):
            raise ActionInputError(
                f"action {KEY!r}: model {reference!r} is not in the provider setting "
                "allowed_models; name an allowed model or extend the setting",
                path="model",
            )
        from oneiric.core import FactoryError, import_reference

        try:
            model = import_reference(reference, what="model")
        except FactoryError as exc:
            raise ActionInputError(f"action {KEY!r}: {one_line(exc)}", path="model") from None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ActionInputError(
                f"action {KEY!r}: model {reference!r} is {type(model).__name__}, not a pydantic "
                "BaseModel subclass; name a model class",
                path="model",
            )
        self._models[reference] = model
        return model

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        from pydantic import ValidationError

        data, raise_first, fields = _common_fields(payload, "model")
        model = self._model(take(fields, KEY, "model", str))
        try:
            model.model_validate(data)
        except ValidationError as exc:
            errors = [(tuple(e.get("loc", ())), str(e.get("msg", "invalid")))
                      for e in exc.errors(include_url=False, include_input=False)]
            return validation_result(errors, raise_first=raise_first)
        return validation_result([], raise_first=raise_first)


class JsonSchema:
    """``validation.schema`` provider ``jsonschema``: Draft 2020-12, formats asserted."""

    spec = ActionSpec(
        description="validate data against a JSON Schema (Draft 2020-12)",
        idempotent=True,
        side_effects=False,
        blocking=True,
    )

    def __init__(self) -> None:
        self._jsonschema: Any = require("jsonschema", provider="jsonschema", extra="jsonschema")
        self._referencing: Any = require("referencing", provider="jsonschema",
                                         extra="jsonschema")

    def _validator(self, schema: Any) -> Any:
        if not isinstance(schema, dict | bool):
            raise ActionInputError(
                f"action {KEY!r}: payload field schema must be a JSON Schema object (or "
                f"true/false), got {type(schema).__name__}",
                path="schema",
            )
        check_depth(schema, "schema")
        cls = self._jsonschema.Draft202012Validator
        try:
            cls.check_schema(schema)
        except self._jsonschema.exceptions.SchemaError as exc:
            where = format_path(list(exc.absolute_path), "schema")
            raise ActionInputError(
                f"action {KEY!r}: {where} is not valid JSON Schema (Draft 2020-12): "
                f"{_message(exc.message)}",
                path=where,
            ) from None
        return cls(schema, format_checker=cls.FORMAT_CHECKER)

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        data, raise_first, fields = _common_fields(payload, "schema")
        if "schema" not in fields:
            take(fields, KEY, "schema", dict)  # raises: required
        validator = self._validator(fields["schema"])
        try:
            errors = [(tuple(e.absolute_path), e.message) for e in validator.iter_errors(data)]
        except self._referencing.exceptions.Unresolvable as exc:
            raise ActionInputError(
                f"action {KEY!r}: schema has a $ref that cannot be resolved ({_message(exc)}); "
                "put every definition in the schema's $defs (remote references are not "
                "fetched)",
                path="schema",
            ) from None
        except RecursionError:
            raise ActionInputError(
                f"action {KEY!r}: schema refers to itself without end (a $ref loop that "
                "consumes no data); break the loop",
                path="schema",
            ) from None
        return validation_result(errors, raise_first=raise_first)
