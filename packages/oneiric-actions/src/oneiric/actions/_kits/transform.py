"""``data.transform`` (provider ``builtin``): reshape JSON objects by a declarative spec.

Payload ``{"data", "spec"}`` -> ``{"data"}``.  ``data`` is an object or an
array of objects (the spec applies to each item).  ``spec`` has any of:

``defaults``  ``{path: value}``: set where the field is missing (missing
              parent objects are created; a list item is never created)
``select``    ``[path, ...]``: keep only these fields (the rest is removed)
``drop``      ``[path, ...]``: remove these fields (list items too)
``rename``    ``{path: new_name}``: give the field at ``path`` a new name in place
``flatten``   ``true`` or a separator string: nested objects become
              ``"a.b.c"`` keys (``true`` means ``"."``); arrays stay values

They always run in that order - defaults, select, drop, rename, flatten - so
every path in a spec names a field *of the input* (rename runs after
select/drop, and renames run deepest first, so ``{"user.email": "mail",
"user": "account"}`` both apply), and a default for a selected field is
kept.  Paths are ``items[2].price`` style; ``[*]`` means every item of a list.
A path that does not exist in the data is skipped, not an error: data varies,
the spec does not.  A wrong spec (unknown operation, bad path, wrong type) is
an ``ActionInputError`` naming ``spec.<operation>``; a rename or flatten that
would overwrite a field is refused rather than losing it.

The input is never mutated (each item is copied first); nesting deeper than
``MAX_DEPTH`` is refused in one line, never a ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._errors import ActionInputError
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, take
from ._paths import WILDCARD, Part, check_depth, copy_tree, format_path, parse_path

__all__ = ["OPERATIONS", "Transform", "TransformSpec", "apply_spec", "parse_spec"]

KEY = "data.transform"

#: The operations of a spec, in the order they run.
OPERATIONS = ("defaults", "select", "drop", "rename", "flatten")

_MISSING: Any = object()


class TransformSpec:
    """A checked spec: parsed paths per operation (built once per call by ``parse_spec``)."""

    __slots__ = ("defaults", "drop", "flatten", "rename", "select")

    def __init__(self) -> None:
        self.defaults: list[tuple[tuple[Part, ...], Any]] = []
        self.select: dict[Any, Any] | None = None
        self.drop: list[tuple[Part, ...]] = []
        self.rename: list[tuple[tuple[Part, ...], str]] = []
        self.flatten: str | None = None


def _paths_list(value: object, where: str) -> list[tuple[Part, ...]]:
    if not isinstance(value, list):
        raise ActionInputError(
            f"{where} must be an array of field paths, got {type(value).__name__}", path=where
        )
    return [parse_path(item, f"{where}[{i}]", wildcard=True) for i, item in enumerate(value)]


def _path_map(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ActionInputError(
            f"{where} must be an object of field path -> value, got {type(value).__name__}",
            path=where,
        )
    return dict(value)


def _ends_in_name(parts: tuple[Part, ...], text: str, where: str, op: str) -> None:
    if not isinstance(parts[-1], str):
        raise ActionInputError(
            f"{where}: path {text!r} ends in a list item; {op} names an object field, "
            "e.g. items[0].price",
            path=where,
        )


def parse_spec(spec: object) -> TransformSpec:
    """Check ``spec`` and parse its paths; ``ActionInputError`` at ``spec.<op>`` otherwise."""
    if not isinstance(spec, Mapping):
        raise ActionInputError(
            f"action {KEY!r}: spec must be an object with any of {', '.join(OPERATIONS)}; "
            f"got {type(spec).__name__}",
            path="spec",
        )
    unknown = sorted(str(k) for k in spec if k not in OPERATIONS)
    if unknown:
        raise ActionInputError(
            f"action {KEY!r}: unknown spec operation {unknown[0]!r}; "
            f"known: {', '.join(OPERATIONS)}",
            path=f"spec.{unknown[0]}",
        )
    parsed = TransformSpec()
    if "defaults" in spec:
        for text, value in _path_map(spec["defaults"], "spec.defaults").items():
            parts = parse_path(text, "spec.defaults", wildcard=True)
            _ends_in_name(parts, text, "spec.defaults", "a default")
            check_depth(value, "spec.defaults")
            parsed.defaults.append((parts, value))
    if "select" in spec:
        paths = _paths_list(spec["select"], "spec.select")
        if not paths:
            raise ActionInputError(
                "spec.select is empty, which would remove every field; "
                "omit select to keep all fields",
                path="spec.select",
            )
        parsed.select = _selection_tree(paths)
    if "drop" in spec:
        parsed.drop = _paths_list(spec["drop"], "spec.drop")
    if "rename" in spec:
        for text, new in _path_map(spec["rename"], "spec.rename").items():
            parts = parse_path(text, "spec.rename", wildcard=True)
            _ends_in_name(parts, text, "spec.rename", "rename")
            if not isinstance(new, str) or not new or any(c in new for c in ".[]"):
                raise ActionInputError(
                    f"spec.rename: the new name of {text!r} must be a non-empty field name "
                    f"without '.', '[' or ']', got {new!r} (rename keeps the field in place)",
                    path="spec.rename",
                )
            parsed.rename.append((parts, new))
        parsed.rename.sort(key=lambda item: len(item[0]), reverse=True)  # deepest first
    if "flatten" in spec:
        flatten = spec["flatten"]
        if flatten is True:
            parsed.flatten = "."
        elif flatten is False:
            parsed.flatten = None
        elif isinstance(flatten, str) and flatten:
            parsed.flatten = flatten
        else:
            raise ActionInputError(
                f"spec.flatten must be true, false or a non-empty separator string, "
                f"got {flatten!r}",
                path="spec.flatten",
            )
    return parsed


# ----------------------------------------------------------------- locating


def _locate(
    root: Any, parts: tuple[Part, ...], *, create: bool = False
) -> Iterator[tuple[Any, Any]]:
    """Every ``(container, key)`` the last segment of ``parts`` names in ``root``.

    Only the parents must exist (``create`` makes missing parent objects);
    wildcards fan out over list items.  Iterative, bounded by the path length.
    """
    frontier = [root]
    for part in parts[:-1]:
        following: list[Any] = []
        for node in frontier:
            if isinstance(part, str):
                if isinstance(node, dict):
                    if part not in node and create:
                        node[part] = {}
                    if part in node:
                        following.append(node[part])
            elif isinstance(node, list):
                if part is WILDCARD:
                    following.extend(node)
                elif isinstance(part, int) and part < len(node):
                    following.append(node[part])
        frontier = following
    last = parts[-1]
    for node in frontier:
        if isinstance(last, str):
            if isinstance(node, dict):
                yield node, last
        elif isinstance(node, list):
            if last is WILDCARD:
                for index in range(len(node)):
                    yield node, index
            elif isinstance(last, int) and last < len(node):
                yield node, last


def _selection_tree(paths: list[tuple[Part, ...]]) -> dict[Any, Any]:
    """Paths as a tree of segments; ``True`` marks a kept whole value (a prefix wins)."""
    tree: dict[Any, Any] = {}
    for parts in paths:
        node = tree
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                node[part] = True
            else:
                child = node.setdefault(part, {})
                if child is True:
                    break  # a shorter path already keeps the whole value
                node = child
    return tree


def _merge(trees: list[Any]) -> Any:
    if any(tree is True for tree in trees):
        return True
    if len(trees) == 1:
        return trees[0]
    merged: dict[Any, Any] = {}
    for tree in trees:
        for key, child in tree.items():
            merged[key] = _merge([merged[key], child]) if key in merged else child
    return merged


def _project(value: Any, tree: Any) -> Any:
    """The part of ``value`` the selection ``tree`` keeps (``_MISSING`` when none).

    Recursion depth is bounded by the longest selected path (``MAX_SEGMENTS``).
    """
    if tree is True:
        return value
    if isinstance(value, dict):
        kept = {}
        for key, child in value.items():
            if key in tree:
                sub = _project(child, tree[key])
                if sub is not _MISSING:
                    kept[key] = sub
        return kept if kept or not value else _MISSING
    if isinstance(value, list):
        items = []
        for index, child in enumerate(value):
            trees = [tree[k] for k in (index, WILDCARD) if k in tree]
            if trees:
                sub = _project(child, _merge(trees))
                if sub is not _MISSING:
                    items.append(sub)
        return items if items or not value else _MISSING
    return _MISSING


# --------------------------------------------------------------- operations


def _flatten(item: dict[str, Any], separator: str, where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [("", iter(item.items()))]
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        key, value = entry
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            stack.append((name + separator, iter(value.items())))
            continue
        if name in flat:
            raise ActionInputError(
                f"spec.flatten: {where} would have the key {name!r} twice; "
                "choose another separator",
                path="spec.flatten",
            )
        flat[name] = value
    return flat


def _rename(item: dict[str, Any], parts: tuple[Part, ...], new: str, where: str) -> None:
    for container, key in list(_locate(item, parts)):
        if key not in container or key == new:
            continue
        if new in container:
            raise ActionInputError(
                f"spec.rename: renaming {format_path(list(parts))!r} to {new!r} would "
                f"overwrite the existing field {new!r} in {where}; drop it first",
                path="spec.rename",
            )
        entries = [(new if k == key else k, v) for k, v in container.items()]
        container.clear()
        container.update(entries)


def _drop(item: dict[str, Any], parts: tuple[Part, ...]) -> None:
    list_items: dict[int, tuple[list[Any], set[int]]] = {}
    for container, key in list(_locate(item, parts)):
        if isinstance(container, dict):
            container.pop(key, None)
        else:
            list_items.setdefault(id(container), (container, set()))[1].add(key)
    for container, indices in list_items.values():
        for index in sorted(indices, reverse=True):
            del container[index]


def apply_spec(item: dict[str, Any], spec: TransformSpec, where: str = "data") -> dict[str, Any]:
    """``item`` transformed by ``spec`` (a new object; ``item`` is not changed)."""
    check_depth(item, where)
    result: Any = copy_tree(item)
    for parts, value in spec.defaults:
        for container, key in list(_locate(result, parts, create=True)):
            if key not in container:
                container[key] = copy_tree(value)
    if spec.select is not None:
        result = _project(result, spec.select)
        if result is _MISSING:
            result = {}
    for parts in spec.drop:
        _drop(result, parts)
    for parts, new in spec.rename:
        _rename(result, parts, new, where)
    if spec.flatten is not None:
        result = _flatten(result, spec.flatten, where)
    return dict(result)


class Transform:
    """``data.transform`` provider ``builtin``: select, rename, defaults, drop, flatten."""

    spec = ActionSpec(
        description="select, rename, defaults, drop, flatten JSON objects by a declarative spec",
        idempotent=True,
        side_effects=False,
        blocking=True,
    )

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, {"data", "spec"})
        data = take(fields, KEY, "data", (dict, list))
        spec = parse_spec(take(fields, KEY, "spec", dict))
        if isinstance(data, dict):
            return {"data": apply_spec(data, spec)}
        out = []
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise ActionInputError(
                    f"action {KEY!r}: data[{index}] must be an object (data is an array of "
                    f"objects), got {type(item).__name__}",
                    path=f"data[{index}]",
                )
            out.append(apply_spec(item, spec, f"data[{index}]"))
        return {"data": out}
