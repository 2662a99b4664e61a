"""``serialization.encode|decode``: json (stdlib), msgpack, yaml (safe loader/dumper only).

``encode`` ``{"value"}`` -> ``{"data": bytes}`` for every format (UTF-8 text for
json and yaml), so swapping the provider never changes the result's type;
``decode`` ``{"data"}`` -> ``{"value"}`` takes bytes, text or ``{"base64": ...}``.

Values are JSON-compatible in both directions (objects with string keys,
arrays, strings, finite numbers, booleans, null; bytes in-process): that is
what every action returns, so ``decode`` refuses a document that would
decode to anything else (a msgpack ext type, a YAML ``!!python/object`` or
``!!set``, a non-string key, NaN) instead of handing back something the
next step cannot carry.  Bytes: json writes them ``{"base64": ...}`` (the
project's convention; they decode as that object), msgpack as bin, yaml as
``!!binary``.  YAML timestamps decode as their text.

Bounded: nesting deeper than ``MAX_DEPTH`` (128) is refused before any
recursive parser or encoder runs (json by a bracket pre-scan, yaml while
composing, msgpack by the C unpacker's own limit then the same check), and a
yaml document whose aliases expand to more than ``_MAX_NODES_PER_BYTE`` nodes
per input byte (a "billion laughs") is refused before anything walks it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from oneiric.core.helpers import one_line

from .._errors import ActionInputError
from .._json import binary, find_non_json, to_json
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take
from ._paths import MAX_DEPTH, check_depth

__all__ = [
    "JsonDecode",
    "JsonEncode",
    "MsgpackDecode",
    "MsgpackEncode",
    "YamlDecode",
    "YamlEncode",
]

_ENCODE: Final = "serialization.encode"
_DECODE: Final = "serialization.decode"
#: A decoded value may have at most this many nodes per input byte (+ a floor):
#: ordinary documents have fewer than one; yaml aliases are what could exceed it.
_MAX_NODES_PER_BYTE: Final = 16
_MIN_NODE_BUDGET: Final = 100_000

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")

_SPEC_ENCODE: Final = ActionSpec(
    description="serialize a JSON-compatible value to bytes",
    idempotent=True, side_effects=False, blocking=True,
)
_SPEC_DECODE: Final = ActionSpec(
    description="parse bytes into a JSON-compatible value (bounded depth and size)",
    idempotent=True, side_effects=False, blocking=True,
)


# ----------------------------------------------------------------- shared checks


def _value(payload: Any) -> Any:
    """``encode``'s value, checked: JSON-compatible (+ bytes) and at most ``MAX_DEPTH`` deep."""
    fields = fields_of(payload, _ENCODE, frozenset({"value"}))
    value = take(fields, _ENCODE, "value", object)
    check_depth(value, "value")
    bad = find_non_json(value, "value")
    if bad is not None:
        raise ActionInputError(
            f"action {_ENCODE!r}: {bad} cannot be serialized (only objects with string keys, "
            "arrays, strings, finite numbers, booleans, null and bytes); convert it first",
            path=bad,
        )
    return value


def _data(payload: Any) -> bytes:
    fields = fields_of(payload, _DECODE, frozenset({"data"}))
    return binary(take(fields, _DECODE, "data", object), "data")


def _invalid(fmt: str, why: BaseException | str) -> ActionInputError:
    return ActionInputError(
        f"action {_DECODE!r}: data is not valid {fmt}: {one_line(why)[:300]}; "
        f"send a {fmt} document",
        path="data",
    )


def _decoded(value: Any, fmt: str, size: int) -> dict[str, Any]:
    """``{"value": value}`` after checking the decoded value is bounded and JSON-compatible."""
    _count_nodes(value, max(_MIN_NODE_BUDGET, size * _MAX_NODES_PER_BYTE), fmt)
    check_depth(value, "data")
    bad = find_non_json(value)
    if bad is not None:
        raise ActionInputError(
            f"action {_DECODE!r}: data decodes to a value JSON cannot carry at {bad} "
            f"(a non-string key, NaN, a {fmt}-only type); send JSON-compatible {fmt}",
            path="data",
        )
    return {"value": value}


def _count_nodes(value: Any, budget: int, fmt: str) -> None:
    """Refuse a value with more than ``budget`` nodes, counting shared ones each time seen."""
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            raise ActionInputError(
                f"action {_DECODE!r}: data expands to more than {budget} values "
                f"(aliases repeated into a huge document?); send a smaller {fmt} document",
                path="data",
            )
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _too_deep(fmt: str) -> ActionInputError:
    return ActionInputError(
        f"action {_DECODE!r}: data nests deeper than {MAX_DEPTH} levels; "
        f"flatten the {fmt} document",
        path="data",
    )


# ----------------------------------------------------------------- json


def _json_depth_ok(raw: bytes) -> bool:
    """True if the JSON text (UTF-8) nests at most ``MAX_DEPTH`` deep, judged without parsing.

    Fewer openers than the limit cannot nest past it.  Otherwise strings are
    dropped, then everything but brackets; each pass of removing empty pairs
    (``[]``/``{}``) strips exactly one level, so ``MAX_DEPTH`` passes empty any
    document that is shallow enough.  All in C (re, bytes): about as long as
    ``json.loads`` itself on large documents, and it runs before it recurses.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return True
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return True
        brackets = _INNERMOST.sub(b"", brackets)
    return not brackets


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (non-finite numbers cannot be carried)")


class JsonEncode:
    """Compact UTF-8 JSON; bytes become ``{"base64": ...}``."""

    spec = _SPEC_ENCODE

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, bytes]:
        value = to_json(_value(payload))
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        try:
            return {"data": text.encode("utf-8")}
        except UnicodeEncodeError:  # a lone surrogate: JSON can carry it as a \u escape
            text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
            return {"data": text.encode("ascii")}


class JsonDecode:
    """JSON text (UTF-8, -16 or -32, detected as ``json.loads`` does)."""

    spec = _SPEC_DECODE

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        raw = _data(payload)
        encoding = json.detect_encoding(raw)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise _invalid("json", exc) from None
        # UTF-8 continuation bytes are >= 0x80, never a quote or bracket: scan the bytes
        if not _json_depth_ok(raw if encoding == "utf-8" else text.encode("utf-8")):
            raise _too_deep("json")
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:  # pragma: no cover - the pre-scan refuses deep documents
            raise _too_deep("json") from None
        except ValueError as exc:  # JSONDecodeError, a too-long integer, NaN
            raise _invalid("json", exc) from None
        return _decoded(value, "json", len(raw))


# ----------------------------------------------------------------- msgpack


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not allowed (only JSON-compatible values)")


class MsgpackEncode:
    """MessagePack with str and bin types; never an ext type or an arbitrary object."""

    spec = _SPEC_ENCODE

    def __init__(self) -> None:
        self._msgpack = require("msgpack", provider="msgpack", extra="msgpack")

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, bytes]:
        value = _value(payload)
        try:
            return {"data": bytes(self._msgpack.packb(value, use_bin_type=True, datetime=False))}
        except OverflowError:
            raise ActionInputError(
                f"action {_ENCODE!r}: value holds an integer outside msgpack's 64-bit range "
                "(-2**63 .. 2**64-1); send it as a string",
                path="value",
            ) from None
        except UnicodeEncodeError:
            raise ActionInputError(
                f"action {_ENCODE!r}: value holds text that is not valid Unicode (a lone "
                "surrogate) and msgpack strings are UTF-8; send the data as bytes",
                path="value",
            ) from None


class MsgpackDecode:
    """``raw=False`` (str is text), string keys only, ext types (timestamps too) refused."""

    spec = _SPEC_DECODE

    def __init__(self) -> None:
        self._msgpack = require("msgpack", provider="msgpack", extra="msgpack")

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        raw = _data(payload)
        msgpack = self._msgpack
        try:
            value = msgpack.unpackb(
                raw, raw=False, strict_map_key=True, ext_hook=_refuse_ext, timestamp=0,
                use_list=True,
            )
        except msgpack.StackError:  # the C unpacker's fixed stack (1024 levels)
            raise _too_deep("msgpack") from None
        except msgpack.ExtraData as exc:
            raise _invalid("msgpack", f"{len(exc.extra)} bytes after the value") from None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise _invalid("msgpack", str(exc) or type(exc).__name__) from None
        return _decoded(value, "msgpack", len(raw))


# ----------------------------------------------------------------- yaml


class YamlEncode:
    """``yaml.safe_dump`` (block style, key order kept, unicode as is); tuples as lists."""

    spec = _SPEC_ENCODE

    def __init__(self) -> None:
        yaml = require("yaml", provider="yaml", extra="yaml")

        class Dumper(yaml.SafeDumper):  # type: ignore[name-defined,misc]
            pass

        Dumper.add_representer(tuple, yaml.SafeDumper.represent_list)
        self._yaml = yaml
        self._dumper = Dumper

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, bytes]:
        value = _value(payload)
        text = self._yaml.dump(value, Dumper=self._dumper, allow_unicode=True,
                               sort_keys=False, default_flow_style=False)
        return {"data": text.encode("utf-8")}


class YamlDecode:
    """``SafeLoader`` only, depth-limited while composing; exactly one document."""

    spec = _SPEC_DECODE

    def __init__(self) -> None:
        self._yaml = yaml = require("yaml", provider="yaml", extra="yaml")
        self._loader = _bounded_loader(yaml)

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        raw = _data(payload)
        yaml = self._yaml
        loader = self._loader(raw)
        try:
            value = loader.get_single_data()
        except _TooDeep:
            raise _too_deep("yaml") from None
        except RecursionError:  # pragma: no cover - composing is depth-limited
            raise _too_deep("yaml") from None
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            raise _invalid("yaml", exc) from None
        finally:
            loader.dispose()
        return _decoded(value, "yaml", len(raw))


class _TooDeep(Exception):
    pass


def _bounded_loader(yaml: Any) -> Any:
    """A ``SafeLoader`` subclass that refuses nesting past ``MAX_DEPTH`` as it composes.

    Pure Python on purpose: the C loader composes in C where depth cannot be
    counted.  Timestamps stay text (a ``date`` is not JSON-compatible).
    """

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH + 1:  # +1: the document's root is depth 0
                    raise _TooDeep
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
    return Loader
