"""``data.transform`` (builtin): each operation, their order, per-item arrays, every bad spec."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from oneiric.actions import ActionInputError
from oneiric.actions._kits.transform import Transform
from oneiric.actions._spec import ActionContext

pytestmark = pytest.mark.anyio

CTX = ActionContext("data.transform", "builtin", 1, float("inf"), "k")


def run(data: Any, spec: Any) -> Any:
    return Transform().invoke({"data": data, "spec": spec}, CTX)["data"]


ORDER = {
    "id": 7,
    "user": {"email": "a@example.com", "name": "Ada", "password": "pw"},
    "items": [{"sku": "x", "price": 1, "tmp": 0}, {"sku": "y", "price": 2, "tmp": 0}],
}


def test_select_keeps_only_the_named_fields_in_data_order() -> None:
    out = run(ORDER, {"select": ["user.name", "id", "items[*].sku"]})
    assert out == {"id": 7, "user": {"name": "Ada"}, "items": [{"sku": "x"}, {"sku": "y"}]}
    assert list(out) == ["id", "user", "items"]


def test_select_by_index_keeps_those_items_and_skips_missing_paths() -> None:
    out = run(ORDER, {"select": ["items[1].price", "items[9]", "nothing.here"]})
    assert out == {"items": [{"price": 2}]}


def test_select_a_prefix_keeps_the_whole_value() -> None:
    assert run(ORDER, {"select": ["user", "user.name"]}) == {"user": ORDER["user"]}


def test_rename_keeps_the_field_in_place() -> None:
    out = run({"a": 1, "b": 2, "c": 3}, {"rename": {"b": "beta"}})
    assert list(out.items()) == [("a", 1), ("beta", 2), ("c", 3)]


def test_rename_paths_name_input_fields_deepest_first() -> None:
    out = run(ORDER, {"rename": {"user": "account", "user.email": "mail",
                                 "items[*].sku": "code"}})
    assert out["account"] == {"mail": "a@example.com", "name": "Ada", "password": "pw"}
    assert [i["code"] for i in out["items"]] == ["x", "y"]


def test_defaults_fill_only_missing_fields_and_create_parents() -> None:
    out = run({"a": None, "items": [{"q": 5}, {}]},
              {"defaults": {"a": 1, "b.c": [1], "items[*].q": 1}})
    assert out == {"a": None, "items": [{"q": 5}, {"q": 1}], "b": {"c": [1]}}


def test_defaults_are_copied_per_item() -> None:
    out = run([{}, {}], {"defaults": {"tags": []}})
    out[0]["tags"].append("x")
    assert out[1] == {"tags": []}


def test_drop_removes_fields_and_list_items() -> None:
    out = run(ORDER, {"drop": ["user.password", "items[*].tmp", "missing", "items[0]"]})
    assert out["user"] == {"email": "a@example.com", "name": "Ada"}
    assert out["items"] == [{"sku": "y", "price": 2}]


@pytest.mark.parametrize(("flatten", "sep"), [(True, "."), ("__", "__")])
def test_flatten_nested_objects_to_separated_keys(flatten: object, sep: str) -> None:
    out = run({"a": {"b": {"c": 1}, "d": []}, "e": {}, "f": [{"g": 1}]}, {"flatten": flatten})
    assert out == {f"a{sep}b{sep}c": 1, f"a{sep}d": [], "e": {}, "f": [{"g": 1}]}


def test_flatten_false_is_a_no_op() -> None:
    assert run({"a": {"b": 1}}, {"flatten": False}) == {"a": {"b": 1}}


def test_operations_run_defaults_select_drop_rename_flatten() -> None:
    spec = {
        "flatten": True,
        "rename": {"user.name": "full_name"},
        "drop": ["user.password"],
        "select": ["user", "country"],
        "defaults": {"country": "NZ"},
    }
    out = run(ORDER, spec)
    assert out == {"user.email": "a@example.com", "user.full_name": "Ada", "country": "NZ"}


def test_array_data_applies_the_spec_per_item() -> None:
    out = run([{"a": 1, "b": 2}, {"a": 3}], {"select": ["a"], "defaults": {"b": 0}})
    assert out == [{"a": 1}, {"a": 3}]


def test_attack_input_is_never_mutated() -> None:
    data = copy.deepcopy(ORDER)
    run(data, {"defaults": {"user.x": 1}, "drop": ["items[0]", "user.password"],
               "rename": {"id": "ident"}, "flatten": True})
    assert data == ORDER


def test_attack_deep_data_is_refused_in_one_line_not_recursion_error() -> None:
    deep: Any = {}
    node = deep
    for _ in range(50_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ActionInputError) as info:
        run(deep, {"flatten": True})
    assert info.value.path == "data"
    assert "deeper than" in str(info.value) and "\n" not in str(info.value)


def test_flatten_of_data_at_the_depth_limit_works() -> None:
    from oneiric.actions._kits._paths import MAX_DEPTH

    deep: Any = {}
    node = deep
    for _ in range(MAX_DEPTH - 1):
        node["a"] = {}
        node = node["a"]
    node["a"] = 1
    out = run(deep, {"flatten": "/"})
    assert out == {"/".join(["a"] * MAX_DEPTH): 1}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("select", "spec"),
        ({"pick": ["a"]}, "spec.pick"),
        ({"select": "a"}, "spec.select"),
        ({"select": []}, "spec.select"),
        ({"select": ["a..b"]}, "spec.select[0]"),
        ({"select": ["a", 3]}, "spec.select[1]"),
        ({"select": ["a[x]"]}, "spec.select[0]"),
        ({"drop": ["a]"]}, "spec.drop[0]"),
        ({"drop": {"a": 1}}, "spec.drop"),
        ({"rename": ["a"]}, "spec.rename"),
        ({"rename": {"a": "b.c"}}, "spec.rename"),
        ({"rename": {"a": ""}}, "spec.rename"),
        ({"rename": {"a": 1}}, "spec.rename"),
        ({"rename": {"a[0]": "b"}}, "spec.rename"),
        ({"rename": {".a": "b"}}, "spec.rename"),
        ({"defaults": ["a"]}, "spec.defaults"),
        ({"defaults": {"a[0]": 1}}, "spec.defaults"),
        ({"defaults": {"": 1}}, "spec.defaults"),
        ({"flatten": ""}, "spec.flatten"),
        ({"flatten": 1}, "spec.flatten"),
    ],
)
def test_attack_bad_spec_is_one_line_input_error_naming_the_operation(
    spec: Any, path: str
) -> None:
    with pytest.raises(ActionInputError) as info:
        run({"a": 1}, spec)
    assert info.value.path == path
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ([], "<payload>"),
        ({"spec": {}}, "data"),
        ({"data": {}}, "spec"),
        ({"data": "x", "spec": {}}, "data"),
        ({"data": [{"a": 1}, 2], "spec": {}}, "data[1]"),
        ({"data": {}, "spec": {}, "extra": 1}, "extra"),
    ],
)
def test_attack_bad_payload_is_input_error(payload: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        Transform().invoke(payload, CTX)
    assert info.value.path == path
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "spec"),
    [
        ({"a": 1, "b": 2}, {"rename": {"a": "b"}}),
        ({"a": {"b": 1}, "a.b": 2}, {"flatten": True}),
    ],
)
def test_attack_overwrite_by_rename_or_flatten_is_refused(data: Any, spec: Any) -> None:
    with pytest.raises(ActionInputError) as info:
        run(data, spec)
    assert info.value.path == f"spec.{next(iter(spec))}"
    assert "\n" not in str(info.value)


async def test_through_actions_invoke_with_the_real_lifecycle(make_actions: Any) -> None:
    actions = await make_actions()
    result = await actions.invoke(
        "data.transform", {"data": [{"a": {"b": 1}}], "spec": {"flatten": True}}
    )
    assert result.provider == "builtin"
    assert result.value == {"data": [{"a.b": 1}]}
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("data.transform", {"data": {}, "spec": {"bogus": 1}})
    assert info.value.path == "spec.bogus"


def test_import_of_the_kit_is_stdlib_only() -> None:
    code = (
        "import sys, oneiric.actions._kits.transform\n"
        "heavy = {'pydantic', 'jsonschema', 'httpx', 'yaml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
