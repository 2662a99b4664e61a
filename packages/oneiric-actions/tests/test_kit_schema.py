"""``validation.schema`` (pydantic, jsonschema): errors name the failing path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from oneiric.actions import ActionInputError
from oneiric.actions._kits.schema import (
    MAX_ERRORS,
    JsonSchema,
    PydanticSchema,
    PydanticSchemaSettings,
)
from oneiric.actions._spec import ActionContext

pytestmark = pytest.mark.anyio

CTX = ActionContext("validation.schema", "x", 1, float("inf"), "k")

MODELS = """
from pydantic import BaseModel, Field

class Item(BaseModel):
    sku: str
    price: float = Field(gt=0)

class Order(BaseModel):
    id: int
    items: list[Item]

NOT_A_MODEL = 3

class Plain:
    pass
"""

SCHEMA = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string", "format": "email"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "price"],
                "properties": {"sku": {"type": "string"},
                               "price": {"type": "number", "exclusiveMinimum": 0}},
            },
        },
    },
}

GOOD = {"id": 1, "items": [{"sku": "a", "price": 1.5}, {"sku": "b", "price": 2}]}
BAD = {"id": 1, "items": [{"sku": "a", "price": 1}, {"sku": "b", "price": 2},
                          {"sku": "c", "price": -3}]}


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"shop_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


# ----------------------------------------------------------------- pydantic


def test_pydantic_valid_data(models: str) -> None:
    out = PydanticSchema().invoke({"data": GOOD, "model": f"{models}:Order"}, CTX)
    assert out == {"valid": True, "errors": []}


def test_pydantic_invalid_data_names_the_nested_failing_path(models: str) -> None:
    out = PydanticSchema().invoke({"data": BAD, "model": f"{models}:Order"}, CTX)
    assert out["valid"] is False
    assert [e["path"] for e in out["errors"]] == ["items[2].price"]
    assert "greater than 0" in out["errors"][0]["message"]


def test_pydantic_lists_every_failure_sorted_by_path(models: str) -> None:
    data = {"id": "x", "items": [{"price": 0}]}
    out = PydanticSchema().invoke({"data": data, "model": f"{models}:Order"}, CTX)
    assert [e["path"] for e in out["errors"]] == ["id", "items[0].price", "items[0].sku"]


def test_pydantic_raise_turns_invalid_data_into_input_error(models: str) -> None:
    with pytest.raises(ActionInputError) as info:
        PydanticSchema().invoke({"data": BAD, "model": f"{models}:Order", "raise": True}, CTX)
    assert info.value.path == "data.items[2].price"
    assert "\n" not in str(info.value)
    ok = PydanticSchema().invoke({"data": GOOD, "model": f"{models}:Order", "raise": True}, CTX)
    assert ok["valid"] is True


def test_pydantic_root_failure_has_the_empty_path(models: str) -> None:
    out = PydanticSchema().invoke({"data": [1], "model": f"{models}:Order"}, CTX)
    assert out["errors"][0]["path"] == ""
    with pytest.raises(ActionInputError) as info:
        PydanticSchema().invoke({"data": [1], "model": f"{models}:Order", "raise": True}, CTX)
    assert info.value.path == "data"


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        (3, "must be"),
        ("not a reference", "invalid model"),
        ("no_such_module_zz:Model", "no module named"),
        ("{models}:Missing", "has no attribute"),
        ("{models}:NOT_A_MODEL", "not a pydantic"),
        ("{models}:Plain", "not a pydantic"),
        ("collections:OrderedDict", "not a pydantic"),
    ],
)
def test_attack_bad_model_reference_is_input_error(models: str, model: Any, needle: str) -> None:
    if isinstance(model, str):
        model = model.format(models=models)
    with pytest.raises(ActionInputError) as info:
        PydanticSchema().invoke({"data": {}, "model": model}, CTX)
    assert info.value.path == "model"
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_attack_model_outside_allowed_models_is_refused_before_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str
) -> None:
    marker = tmp_path / "imported"
    name = f"side_effect_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom pydantic import BaseModel\n"
        "class M(BaseModel):\n    pass\n"
    )
    provider = PydanticSchema(PydanticSchemaSettings(allowed_models=[models]))
    with pytest.raises(ActionInputError) as info:
        provider.invoke({"data": {}, "model": f"{name}:M"}, CTX)
    assert info.value.path == "model" and "allowed_models" in str(info.value)
    assert not marker.exists()
    # a prefix of the reference is not enough: shop_models_x must not allow shop_models_xy
    with pytest.raises(ActionInputError):
        provider.invoke({"data": {}, "model": f"{models}evil:Order"}, CTX)
    assert provider.invoke({"data": GOOD, "model": f"{models}:Order"}, CTX)["valid"]


# --------------------------------------------------------------- jsonschema


def test_jsonschema_valid_and_invalid_with_nested_path() -> None:
    assert JsonSchema().invoke({"data": GOOD, "schema": SCHEMA}, CTX) == {
        "valid": True, "errors": [],
    }
    out = JsonSchema().invoke({"data": BAD, "schema": SCHEMA}, CTX)
    assert out["valid"] is False
    assert [e["path"] for e in out["errors"]] == ["items[2].price"]


def test_jsonschema_asserts_formats_and_lists_all_errors() -> None:
    data = {"id": "one", "email": "not-an-email", "items": [{"sku": 1}]}
    out = JsonSchema().invoke({"data": data, "schema": SCHEMA}, CTX)
    assert [e["path"] for e in out["errors"]] == ["email", "id", "items[0]", "items[0].sku"]


def test_jsonschema_raise_names_the_first_path() -> None:
    with pytest.raises(ActionInputError) as info:
        JsonSchema().invoke({"data": BAD, "schema": SCHEMA, "raise": True}, CTX)
    assert info.value.path == "data.items[2].price"


def test_errors_are_capped() -> None:
    data = list(range(MAX_ERRORS + 50))
    out = JsonSchema().invoke({"data": data, "schema": {"items": {"type": "string"}}}, CTX)
    assert len(out["errors"]) == MAX_ERRORS
    assert out["errors"][0]["path"] == "[0]"


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("string", "schema"),
        ({"type": "strin"}, "schema.type"),
        ({"properties": {"a": {"pattern": "["}}}, "schema.properties.a.pattern"),
        ({"minimum": "3"}, "schema.minimum"),
        ({"$ref": "https://example.com/remote.json"}, "schema"),
        ({"$ref": "#/$defs/nope"}, "schema"),
        ({"$ref": "#"}, "schema"),
    ],
)
def test_attack_invalid_schema_is_input_error(schema: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        JsonSchema().invoke({"data": {"a": "x"}, "schema": schema}, CTX)
    assert info.value.path == path
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"schema": {}}, "data"),
        ({"data": 1}, "schema"),
        ({"data": 1, "schema": {}, "raise": "yes"}, "raise"),
        ({"data": 1, "schema": {}, "model": "x:y"}, "model"),
        (None, "<payload>"),
    ],
)
def test_attack_bad_payload_is_input_error(payload: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        JsonSchema().invoke(payload, CTX)
    assert info.value.path == path


def test_attack_deep_data_is_refused_not_recursion_error() -> None:
    deep: Any = 1
    for _ in range(20_000):
        deep = [deep]
    with pytest.raises(ActionInputError) as info:
        JsonSchema().invoke({"data": deep, "schema": {"items": {}}}, CTX)
    assert info.value.path == "data"


async def test_through_actions_invoke_both_providers(make_actions: Any, models: str) -> None:
    default = await make_actions()
    result = await default.invoke("validation.schema",
                                  {"data": BAD, "model": f"{models}:Order"})
    assert result.provider == "pydantic"
    assert result.value["errors"][0]["path"] == "items[2].price"
    selected = await make_actions('[action.selections]\n"validation.schema" = "jsonschema"\n')
    result = await selected.invoke("validation.schema", {"data": BAD, "schema": SCHEMA})
    assert result.provider == "jsonschema"
    assert result.value == {
        "valid": False,
        "errors": [{"path": "items[2].price", "message": result.value["errors"][0]["message"]}],
    }
    with pytest.raises(ActionInputError) as info:
        await selected.invoke("validation.schema",
                              {"data": BAD, "schema": SCHEMA, "raise": True})
    assert info.value.path == "data.items[2].price"


def test_import_of_the_kit_does_not_import_jsonschema() -> None:
    code = textwrap.dedent("""
        import sys, oneiric.actions._kits.schema
        assert 'jsonschema' not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
