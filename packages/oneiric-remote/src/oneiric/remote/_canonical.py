"""Canonical JSON: one byte sequence per document, so a signature covers meaning, not layout.

The subset (integers within +-(2^53-1), no floats, ASCII keys, RFC 3339 UTC
timestamps as strings) makes ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` byte-identical to RFC 8785.  Parsing is strict: duplicate
keys, NaN/Infinity and floats are refused instead of being silently resolved,
because two parsers that disagree on a document are an attack surface.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

from oneiric.core.helpers import one_line, quote_name

from ._errors import ManifestFormatError

__all__ = ["MAX_SAFE_INT", "JSONValue", "canonical", "parse_canonical", "parse_strict"]

MAX_SAFE_INT = 2**53 - 1
#: a value of the canonical subset (no floats): what a verified payload holds
JSONValue: TypeAlias = "bool | int | str | list[JSONValue] | dict[str, JSONValue] | None"


def _reject_constant(name: str) -> Any:
    raise ManifestFormatError(
        f"payload contains {name}, which canonical JSON forbids; remove it and re-sign"
    )


def _reject_float(text: str) -> Any:
    raise ManifestFormatError(
        f"payload contains the number {text}; only integers are allowed, use an int or a string"
    )


#: 2^53-1 has 16 digits: a longer literal is refused before ``int()`` (which raises a
#: plain ValueError above ``sys.get_int_max_str_digits()`` and is quadratic below it)
_MAX_SAFE_DIGITS = len(str(MAX_SAFE_INT))


def _check_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_SAFE_DIGITS or abs(value := int(text)) > MAX_SAFE_INT:
        shown = text if digits <= 40 else f"{text[:20]}... ({digits} digits)"
        raise ManifestFormatError(
            f"payload integer {shown} is outside +-(2^53-1); use a smaller number or a string"
        )
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not key.isascii():
            raise ManifestFormatError(f"JSON key {key!r} is not ASCII; rename it")
        if key in result:
            raise ManifestFormatError(
                f"duplicate key {key!r} in JSON object; each key must appear once"
            )
        result[key] = value
    return result


def parse_strict(data: bytes, *, what: str = "payload") -> Any:
    """Parse UTF-8 JSON refusing duplicate keys, NaN/Infinity, floats and huge integers."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ManifestFormatError(f"{what} is not valid UTF-8; encode it as UTF-8 and re-sign")
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
            parse_int=_check_int,
        )
    except ManifestFormatError:
        raise
    except (ValueError, RecursionError) as exc:
        msg = one_line(exc)
        raise ManifestFormatError(f"{what} is not valid JSON ({msg}); fix it and re-sign")


def _check_subset(value: Any, path: str = "$") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise ManifestFormatError(
                    f"payload key {key!r} at {path} is not an ASCII string; rename it"
                )
            _check_subset(item, f"{path}.{quote_name(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_subset(item, f"{path}[{index}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise ManifestFormatError(
                f"integer at {path} is outside +-(2^53-1); use a smaller number or a string"
            )
    else:
        raise ManifestFormatError(
            f"value at {path} is a {type(value).__name__}; canonical JSON allows objects, "
            "arrays, strings, integers, booleans and null"
        )


def canonical(value: Any) -> bytes:
    """The canonical bytes of ``value`` (raises ``ManifestFormatError`` outside the subset)."""
    _check_subset(value)
    return _dumps(value)


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise ManifestFormatError(f"payload cannot be encoded canonically: {exc}") from None


def parse_canonical(data: bytes) -> dict[str, JSONValue]:
    """Parse ``data`` strictly and require it to be an object already in canonical form."""
    value = parse_strict(data)
    if not isinstance(value, dict):
        raise ManifestFormatError(
            f"payload is a JSON {type(value).__name__}, expected an object; re-sign an object"
        )
    # parse_strict already refused everything outside the subset: serialize directly
    if _dumps(value) != data:
        raise ManifestFormatError(
            "payload is not canonical JSON (sorted keys, no whitespace, UTF-8); "
            "sign it with 'oneiric manifest sign' or sign_payload()"
        )
    return value
