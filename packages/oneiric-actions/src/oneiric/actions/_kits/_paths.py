"""Field paths (``items[2].price``) and bounded-depth copies: shared by the data kits.

One syntax everywhere a kit names a place in a payload, so a path that
``validation.schema`` reports is one ``data.transform`` and ``data.sanitize``
accept: names joined by dots, ``[i]`` for a list item, ``[*]`` for every item
(where a kit allows it).  A name cannot contain ``.``, ``[`` or ``]``.

Why a depth limit: the encoders downstream (``json.dumps``, the CLI's output,
``redact``) recurse once per level, so data nested thousands deep would end
in a raw ``RecursionError`` far from its cause.  Kits check the depth first
(iteratively) and refuse it in one line naming the path.
"""

from __future__ import annotations

import re
from typing import Any, Final

from .._errors import ActionInputError

__all__ = [
    "MAX_DEPTH",
    "MAX_SEGMENTS",
    "WILDCARD",
    "Part",
    "check_depth",
    "copy_tree",
    "format_path",
    "parse_path",
]

#: How deep data may nest (objects and arrays) before a data kit refuses it.
MAX_DEPTH: Final = 128
#: How many segments a field path may have.
MAX_SEGMENTS: Final = 64


class _Wildcard:
    """``[*]``: every item of a list (a singleton, printed as ``*``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "*"


WILDCARD: Final = _Wildcard()

#: One path segment: a key, a list index or the wildcard.
Part = str | int | _Wildcard

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d{1,9}|\*)\]")
_PATH_HINT = "write names joined by dots and [i] for list items, e.g. items[2].price"


def parse_path(text: object, where: str, *, wildcard: bool = False) -> tuple[Part, ...]:
    """The segments of ``text``; ``ActionInputError`` with ``path=where`` if it is malformed."""
    if not isinstance(text, str) or not text:
        raise ActionInputError(
            f"{where}: a field path must be a non-empty string, got {text!r}; {_PATH_HINT}",
            path=where,
        )
    parts: list[Part] = []
    pos = 0
    while pos < len(text):
        if parts and text[pos] == ".":
            pos += 1  # a dot separates segments and is followed by a name
            match = _SEGMENT.match(text, pos)
            if match is None or match.group(1) is None:
                raise _bad_path(text, where, pos)
        else:
            match = _SEGMENT.match(text, pos)
            if match is None or (parts and match.group(1) is not None):
                raise _bad_path(text, where, pos)
        name, index = match.group(1), match.group(2)
        if name is not None:
            parts.append(name)
        elif index == "*":
            if not wildcard:
                raise ActionInputError(
                    f"{where}: path {text!r} uses [*], which is not allowed here; "
                    "name a list item by its index, e.g. items[0]",
                    path=where,
                )
            parts.append(WILDCARD)
        else:
            parts.append(int(index))
        pos = match.end()
    if len(parts) > MAX_SEGMENTS:
        raise ActionInputError(
            f"{where}: path {text[:40]!r}... has {len(parts)} segments, more than "
            f"{MAX_SEGMENTS}; use a shorter path",
            path=where,
        )
    return tuple(parts)


def _bad_path(text: str, where: str, pos: int) -> ActionInputError:
    return ActionInputError(
        f"{where}: bad field path {text!r} at character {pos + 1}; {_PATH_HINT}", path=where
    )


def format_path(parts: tuple[object, ...] | list[object], root: str = "") -> str:
    """``parts`` written in the path syntax (``("items", 2, "price")`` -> ``items[2].price``)."""
    text = root
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, _Wildcard):
            text += "[*]"
        else:
            text += f".{part}" if text else str(part)
    return text


def check_depth(value: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Refuse ``value`` (``ActionInputError`` at ``where``) if it nests deeper than ``limit``."""
    stack: list[tuple[Any, int, tuple[object, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, parts = stack.pop()
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list | tuple):
            children = enumerate(item)
        else:
            continue
        if depth >= limit:
            shown = format_path(parts[:8], where)
            raise ActionInputError(
                f"{where}: nests deeper than {limit} levels (at {shown}...); "
                "flatten the data before sending it",
                path=where,
            )
        for key, child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1, (*parts[:8], key) if len(parts) < 8 else parts))


def copy_tree(value: Any) -> Any:
    """A copy of ``value`` whose dicts and lists are new (tuples become lists); iterative.

    Leaves (strings, numbers, bytes...) are shared: they are immutable.  The
    kits that change data work on this copy, so the caller's payload is never
    mutated.
    """
    if not isinstance(value, dict | list | tuple):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items: Any = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            if isinstance(child, dict | list | tuple):
                new: Any = {} if isinstance(child, dict) else []
                stack.append((child, new))
                child = new
            if isinstance(target, dict):
                target[key] = child
            else:
                target.append(child)
    return root
