"""JSON compatibility of action values, and bytes as ``{"base64": "..."}`` at the edges.

In-process, actions take and return bytes as they are.  Where a value
crosses JSON (the CLI, a workflow checkpoint, an event), bytes are written
``{"base64": "..."}`` and accepted so on input (ARCHITECTURE §10): one
convention, decoded by ``binary()`` in every kit that takes data.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

__all__ = ["binary", "find_non_json", "from_json", "to_json"]

_SCALARS = (str, int, float, bool, type(None))
_PLAIN = frozenset({str, int, bool, type(None), bytes})  # floats need the finiteness check


def to_json(value: Any) -> Any:
    """``value`` with every bytes-like object replaced by ``{"base64": ...}`` (a copy)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """The inverse of ``to_json`` for a whole payload: ``{"base64": s}`` objects become bytes.

    Only an object whose *only* key is ``base64`` is decoded, so a payload
    that merely has a ``base64`` field among others is left alone.
    """
    if isinstance(value, dict):
        if len(value) == 1 and "base64" in value and isinstance(value["base64"], str):
            return _decode(value["base64"], "base64")
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def _decode(text: str, path: str) -> bytes:
    from ._errors import ActionInputError

    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ActionInputError(
            f"{path}: not valid base64; send bytes as {{\"base64\": \"...\"}}", path=path
        ) from None


def binary(value: Any, path: str = "data") -> bytes:
    """A kit's binary input: bytes as-is, ``{"base64": s}`` decoded, text as UTF-8.

    Anything else is an ``ActionInputError`` naming ``path``.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800" decodes to one)
            from ._errors import ActionInputError

            raise ActionInputError(
                f"{path}: text is not valid Unicode (a lone surrogate at character {exc.start})"
                "; send bytes or {\"base64\": \"...\"}",
                path=path,
            ) from None
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        return _decode(value["base64"], f"{path}.base64")
    from ._errors import ActionInputError

    raise ActionInputError(
        f"{path}: expected bytes, text or {{\"base64\": \"...\"}}, got {type(value).__name__}",
        path=path,
    )


def find_non_json(value: Any, path: str = "", *, allow_bytes: bool = True) -> str | None:
    """The path of the first value that JSON cannot carry, or ``None`` when all can.

    Allowed: dict with str keys, list/tuple, str, int, finite float, bool,
    None, and (in-process, ``allow_bytes``) bytes.  Recursion is iterative so
    a deeply nested value cannot raise ``RecursionError``.
    """
    if type(value) is dict and allow_bytes:  # the common case: a flat object of plain scalars
        for k, v in value.items():
            if type(k) is not str or type(v) not in _PLAIN:
                break
        else:
            return None
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _SCALARS):
            if isinstance(item, float) and not math.isfinite(item):
                return where or "<value>"
            continue
        if isinstance(item, bytes | bytearray) and allow_bytes:
            continue
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    return f"{where}[{k!r}]" if where else f"[{k!r}]"
                stack.append((v, f"{where}.{k}" if where else k))
            continue
        if isinstance(item, list | tuple):
            for i, v in enumerate(item):
                stack.append((v, f"{where}[{i}]"))
            continue
        return where or "<value>"
    return None
