"""``serialization.encode|decode``: json, msgpack, yaml - round trips, unsafe types, bounds."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import msgpack
import pytest
import yaml

from oneiric.actions import ActionInputError
from oneiric.actions._kits import serialization
from oneiric.actions._kits._paths import MAX_DEPTH
from oneiric.actions._spec import ActionContext

pytestmark = pytest.mark.anyio

CTX = ActionContext("serialization.decode", "test", 1, float("inf"), "k")
FORMATS = ["json", "msgpack", "yaml"]
_CLASS = {"json": "Json", "msgpack": "Msgpack", "yaml": "Yaml"}
VALUE: dict[str, Any] = {
    "name": "Ada ✓", "n": 3, "pi": 3.25, "ok": True, "none": None,
    "items": [1, [2, [3, {"deep": "x"}]]], "empty": {}, "list": [],
}


def select(fmt: str) -> str:
    return (f'[action.selections]\n"serialization.encode" = "{fmt}"\n'
            f'"serialization.decode" = "{fmt}"\n')


def decoder(fmt: str) -> Any:
    return getattr(serialization, f"{_CLASS[fmt]}Decode")()


def encoder(fmt: str) -> Any:
    return getattr(serialization, f"{_CLASS[fmt]}Encode")()


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


# ------------------------------------------------------------------ round trips

@pytest.mark.parametrize("fmt", FORMATS)
async def test_round_trip_through_actions_invoke(fmt: str, make_actions: Any) -> None:
    actions = await make_actions(select(fmt))
    data = (await actions.invoke("serialization.encode", {"value": VALUE})).value["data"]
    assert isinstance(data, bytes)
    for form in (data, {"base64": base64.b64encode(data).decode()}):
        result = await actions.invoke("serialization.decode", {"data": form})
        assert result.provider == fmt and result.value == {"value": VALUE}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_at_exactly_the_depth_limit(fmt: str) -> None:
    value = nested(MAX_DEPTH - 1)  # MAX_DEPTH containers counting the leaf's list
    data = encoder(fmt).invoke({"value": value}, CTX)["data"]
    assert decoder(fmt).invoke({"data": data}, CTX) == {"value": value}


def test_formats_are_the_standard_ones() -> None:
    assert json.loads(encoder("json").invoke({"value": VALUE}, CTX)["data"]) == VALUE
    assert msgpack.unpackb(encoder("msgpack").invoke({"value": VALUE}, CTX)["data"]) == VALUE
    assert yaml.safe_load(encoder("yaml").invoke({"value": VALUE}, CTX)["data"]) == VALUE


def test_json_and_yaml_data_is_utf8_text_and_decode_takes_a_str() -> None:
    for fmt in ("json", "yaml"):
        data = encoder(fmt).invoke({"value": {"k": "é"}}, CTX)["data"]
        assert "é" in data.decode("utf-8")
        assert decoder(fmt).invoke({"data": data.decode("utf-8")}, CTX) == {"value": {"k": "é"}}


def test_json_decode_detects_utf16() -> None:
    raw = json.dumps(VALUE, ensure_ascii=False).encode("utf-16")
    assert decoder("json").invoke({"data": raw}, CTX) == {"value": VALUE}


def test_bytes_in_a_value_per_format() -> None:
    value = {"blob": b"\x00\xff"}
    as_json = decoder("json").invoke({"data": encoder("json").invoke({"value": value}, CTX)
                                      ["data"]}, CTX)
    assert as_json == {"value": {"blob": {"base64": "AP8="}}}  # the project's convention
    for fmt in ("msgpack", "yaml"):
        data = encoder(fmt).invoke({"value": value}, CTX)["data"]
        assert decoder(fmt).invoke({"data": data}, CTX) == {"value": value}


def test_tuples_encode_as_arrays() -> None:
    for fmt in FORMATS:
        data = encoder(fmt).invoke({"value": {"t": (1, 2)}}, CTX)["data"]
        assert decoder(fmt).invoke({"data": data}, CTX) == {"value": {"t": [1, 2]}}


def test_yaml_timestamps_decode_as_text_and_aliases_resolve() -> None:
    out = decoder("yaml").invoke({"data": "d: 2024-01-02\na: &x [1, 2]\nb: *x\n"}, CTX)
    assert out == {"value": {"d": "2024-01-02", "a": [1, 2], "b": [1, 2]}}


# ------------------------------------------------------------------ unsafe types

YAML_UNSAFE = [
    "!!python/object:os.system {}",
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/name:os.system",
    "a: !!python/tuple [1, 2]",
]


@pytest.mark.parametrize("doc", YAML_UNSAFE)
async def test_attack_yaml_python_tags_are_input_errors(doc: str, make_actions: Any) -> None:
    actions = await make_actions(select("yaml"))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("serialization.decode", {"data": doc})
    assert info.value.path == "data"
    assert "not valid yaml" in str(info.value) and "\n" not in str(info.value)


YAML_NOT_JSON = ["a: !!set {x, y}", "a: .nan", "a: -.inf", "1: one", "[1, 2]: k"]


@pytest.mark.parametrize("doc", YAML_NOT_JSON)
def test_attack_yaml_values_json_cannot_carry_are_refused(doc: str) -> None:
    with pytest.raises(ActionInputError) as info:
        decoder("yaml").invoke({"data": doc}, CTX)
    assert info.value.path == "data" and "\n" not in str(info.value)


MSGPACK_UNSAFE = [
    msgpack.packb(msgpack.ExtType(5, b"payload")),
    msgpack.packb({"t": msgpack.Timestamp(1, 0)}, datetime=False),
    msgpack.packb({1: "int key"}, strict_types=False),
    msgpack.packb({b"bin key": 1}, use_bin_type=True),
    msgpack.packb(float("nan")),
]


@pytest.mark.parametrize("raw", MSGPACK_UNSAFE)
async def test_attack_msgpack_ext_types_and_non_json_values_are_refused(
    raw: bytes, make_actions: Any
) -> None:
    actions = await make_actions(select("msgpack"))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("serialization.decode", {"data": raw})
    assert info.value.path == "data" and "\n" not in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bad", [{1: "int key"}, {"s": {1, 2}}, {"f": float("inf")},
                                 {"o": object()}, {"nan": float("nan")}])
def test_attack_encode_refuses_values_json_cannot_carry(fmt: str, bad: Any) -> None:
    with pytest.raises(ActionInputError) as info:
        encoder(fmt).invoke({"value": bad}, CTX)
    assert info.value.path.startswith("value") and "\n" not in str(info.value)


# ------------------------------------------------------------------ bounds

def test_attack_json_nested_a_million_deep_refused_without_recursion_error() -> None:
    for doc in (b"[" * 1_000_000, b'{"a":' * 200_000 + b"1" + b"}" * 200_000):
        with pytest.raises(ActionInputError, match=f"deeper than {MAX_DEPTH}") as info:
            decoder("json").invoke({"data": doc}, CTX)
        assert info.value.path == "data"


def test_json_brackets_inside_strings_do_not_count_as_depth() -> None:
    doc = json.dumps({"s": "[" * 1000 + '\\"' + "{" * 1000, "t": ["]" * 500]})
    assert decoder("json").invoke({"data": doc}, CTX)["value"]["s"].startswith("[[[")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000])
def test_attack_deep_document_refused_in_every_format(fmt: str, depth: int) -> None:
    if fmt == "json":
        doc: bytes = b"[" * depth + b"]" * depth
    elif fmt == "yaml":
        doc = b"[" * depth + b"]" * depth
    else:
        doc = b"\x91" * depth + b"\xc0"
    with pytest.raises(ActionInputError, match="deeper than") as info:
        decoder(fmt).invoke({"data": doc}, CTX)
    assert info.value.path == "data"


def test_attack_yaml_block_style_nesting_refused() -> None:
    doc = "".join("  " * i + "k:\n" for i in range(400)) + "  " * 400 + "v\n"
    with pytest.raises(ActionInputError, match="deeper than"):
        decoder("yaml").invoke({"data": doc}, CTX)


@pytest.mark.parametrize("fmt", FORMATS)
def test_attack_encode_of_a_deep_value_refused_without_recursion_error(fmt: str) -> None:
    with pytest.raises(ActionInputError, match="deeper than") as info:
        encoder(fmt).invoke({"value": nested(100_000)}, CTX)
    assert info.value.path == "value"


def test_attack_yaml_billion_laughs_refused_before_expansion() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(ActionInputError, match="expands to more than") as info:
        decoder("yaml").invoke({"data": "\n".join(lines)}, CTX)
    assert info.value.path == "data"


# ------------------------------------------------------------------ bad input

INVALID = [
    ("json", b"{not json}"), ("json", b""), ("json", b'{"a": NaN}'), ("json", b"[1] [2]"),
    ("json", b"\xff\xfe\xfd"), ("json", b"1" * 5000), ("json", b'{"a": Infinity}'),
    ("msgpack", b""), ("msgpack", b"\xc1"), ("msgpack", b"\x92\x01"), ("msgpack", b"\x01\x02"),
    ("msgpack", b"\xd9\x02\xff\xfe"),
    ("yaml", b"a: [1, 2"), ("yaml", b"---\na\n---\nb\n"), ("yaml", b"a: *missing"),
    ("yaml", b"\t- tab"),
]


@pytest.mark.parametrize(("fmt", "raw"), INVALID)
async def test_attack_invalid_document_is_an_input_error_naming_the_format(
    fmt: str, raw: bytes, make_actions: Any
) -> None:
    actions = await make_actions(select(fmt))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("serialization.decode", {"data": raw})
    assert info.value.path == "data"
    assert f"not valid {fmt}" in str(info.value) and "\n" not in str(info.value)


BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("serialization.encode", "just a value", "<payload>"),
    ("serialization.encode", {}, "value"),
    ("serialization.encode", {"value": 1, "format": "json"}, "format"),
    ("serialization.decode", {}, "data"),
    ("serialization.decode", {"data": 12}, "data"),
    ("serialization.decode", {"data": {"base64": "@@"}}, "data.base64"),
    ("serialization.decode", {"data": b"1", "value": 1}, "value"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("key", "payload", "path"), BAD_PAYLOADS)
async def test_attack_malformed_payload_is_an_input_error_with_its_path(
    fmt: str, key: str, payload: Any, path: str, make_actions: Any
) -> None:
    actions = await make_actions(select(fmt))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(key, payload)
    assert info.value.path == path and "\n" not in str(info.value)


def test_specs_declare_pure_transforms() -> None:
    for fmt in FORMATS:
        for direction in ("Encode", "Decode"):
            spec = getattr(serialization, f"{_CLASS[fmt]}{direction}").spec
            assert spec.idempotent and not spec.side_effects


# ------------------------------------------------------------------ lazy imports

def test_importing_the_module_imports_neither_msgpack_nor_yaml() -> None:
    code = ("import sys, oneiric.actions._kits.serialization; "
            "print(sorted(m for m in ('msgpack', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("cls", "module", "extra"), [
    ("MsgpackDecode", "msgpack", "msgpack"), ("YamlEncode", "yaml", "yaml"),
])
def test_missing_extra_fails_in_one_line_naming_it(cls: str, module: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        f"from oneiric.actions._kits.serialization import {cls}\n"
        f"try:\n    {cls}()\nexcept Exception as exc:\n    print(type(exc).__name__, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("ConfigError |") and f"oneiric-actions[{extra}]" in out


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_attack_deep_document_with_a_raised_recursion_limit_does_not_crash(fmt: str) -> None:
    """With ``sys.setrecursionlimit(10**6)`` a recursive parser overflows the C stack
    (a segfault, not a RecursionError): the depth must be refused before parsing."""
    code = (
        "import sys; sys.setrecursionlimit(10**6)\n"
        "from oneiric.actions._kits import serialization as s\n"
        f"d = s.{_CLASS[fmt]}Decode()\n"
        "try:\n    d.invoke({'data': b'[' * 1_000_000}, None)\n"
        "except Exception as exc:\n    print(type(exc).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ActionInputError"
