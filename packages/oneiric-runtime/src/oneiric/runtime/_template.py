"""Templates: JSON-like values whose strings hold ``${root.path}`` references.

One mechanism for every runtime template (automation payloads now; workflow
node inputs with ``${input...}``/``${nodes...}`` can reuse it with their own
roots).  Two phases, so a typo fails at load, not at the first event:

- ``compile_template(value, where, check)`` walks the value once, parses every
  reference, asks ``check(path)`` whether the path can resolve *syntactically*
  and raises ``ConfigError`` naming ``where`` plus the sub-path otherwise;
- ``Template.render(scope)`` fills it from a scope mapping; a path with no
  value raises ``TemplateError`` naming the reference and the missing part.

A string that is exactly one reference takes the referenced value with its
JSON type (``"${event.payload.count}"`` → ``3``); a reference inside longer
text is replaced by the value's text (strings as they are, anything else as
compact JSON).  ``$${`` writes a literal ``${``.  Segments that are digits
index arrays (``items.0.sku``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oneiric.core import ConfigError

__all__ = ["Template", "TemplateError", "compile_template"]

_TOKEN = re.compile(r"\$\$\{|\$\{[^}]*\}?")
_SEGMENT = re.compile(r"[^.\s${}]+")
_MISSING = object()

#: ``check(path)`` → ``None`` if the path may resolve, else why not (one line).
Check = Callable[[tuple[str, ...]], "str | None"]


class TemplateError(ValueError):
    """A reference found no value in the scope; ``reference`` and ``missing`` say which."""

    def __init__(self, message: str, *, reference: str, missing: str) -> None:
        super().__init__(message)
        self.reference = reference
        self.missing = missing


@dataclass(frozen=True, slots=True)
class _Ref:
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return "${" + ".".join(self.path) + "}"


@dataclass(frozen=True, slots=True)
class _Text:
    parts: tuple[str | _Ref, ...]


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; ``render(scope)`` builds a fresh value each call."""

    node: Any
    references: tuple[str, ...]

    def render(self, scope: Mapping[str, Any]) -> Any:
        return _render(self.node, scope)


def _parse(text: str, where: str, check: Check) -> str | _Ref | _Text:
    if "${" not in text:
        return text
    parts: list[str | _Ref] = []
    at = 0
    for token in _TOKEN.finditer(text):
        if token.start() > at:
            parts.append(text[at:token.start()])
        at = token.end()
        raw = token.group(0)
        if raw == "$${":
            parts.append("${")
            continue
        if not raw.endswith("}"):
            raise ConfigError(f"{where}: unterminated reference {raw!r}; close it with '}}'")
        path = tuple(raw[2:-1].split("."))
        if not all(_SEGMENT.fullmatch(p) for p in path):
            raise ConfigError(
                f"{where}: malformed reference {raw!r}; write ${{root.field.path}} with "
                "dot-separated segments ($${ for a literal ${)"
            )
        problem = check(path)
        if problem is not None:
            raise ConfigError(f"{where}: {raw}: {problem}")
        parts.append(_Ref(path))
    if at < len(text):
        parts.append(text[at:])
    merged: list[str | _Ref] = []
    for part in parts:  # adjacent literals (around a $${) become one
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    if len(merged) == 1:
        return merged[0]
    return _Text(tuple(merged))


def compile_template(value: Any, where: str, check: Check) -> Template:
    """Compile ``value`` (strings, numbers, booleans, null, lists, objects)."""
    refs: list[str] = []

    def walk(item: Any, at: str) -> Any:
        if isinstance(item, str):
            node = _parse(item, at, check)
            if isinstance(node, _Ref):
                refs.append(node.text)
            elif isinstance(node, _Text):
                refs.extend(p.text for p in node.parts if isinstance(p, _Ref))
            return node
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{at}: keys must be strings, got {key!r}")
                out[key] = walk(sub, f"{at}.{key}")
            return out
        if isinstance(item, list | tuple):
            return [walk(sub, f"{at}[{i}]") for i, sub in enumerate(item)]
        if item is None or isinstance(item, bool | int | float):
            return item
        secret = getattr(item, "get_secret_value", None)
        if callable(secret):  # ${secret:...} in settings: a SecretStr around the template text
            return walk(secret(), at)
        raise ConfigError(
            f"{at}: {type(item).__name__} is not a template value; use strings, numbers, "
            "booleans, arrays and tables"
        )

    return Template(walk(value, where), tuple(refs))


def _lookup(scope: Mapping[str, Any], ref: _Ref) -> Any:
    value: Any = scope
    for depth, part in enumerate(ref.path):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            missing = ".".join(ref.path[: depth + 1])
            raise TemplateError(
                f"{ref.text} has no value: {missing} does not exist", reference=ref.text,
                missing=missing,
            )
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _render(node: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, _Ref):
        return _lookup(scope, node)
    if isinstance(node, _Text):
        return "".join(p if isinstance(p, str) else _as_text(_lookup(scope, p))
                       for p in node.parts)
    if isinstance(node, dict):
        return {k: _render(v, scope) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, scope) for v in node]
    return node
