"""Reading settings files and the overlay without trusting them: bounded in size, depth and work.

Why: a settings file is input like any other.  A 0.5 KB YAML alias bomb
("billion laughs") expands to billions of values when walked; deep nesting
makes the TOML, YAML and JSON parsers recurse until ``RecursionError``; a
directory, a FIFO or undecodable bytes where a file is expected raised
``IsADirectoryError``, blocked, or raised ``UnicodeDecodeError``.  Every one
of these is now a one-line ``ConfigError`` naming the file, the limit and
what to do, and any file up to ``MAX_FILE_BYTES`` loads or fails quickly:

- ``MAX_FILE_BYTES`` (1 MiB): larger files are refused before parsing;
- ``MAX_DEPTH`` (64): nested mappings/lists, checked while YAML is composed
  (before the composer's recursion) and after TOML/JSON parse (a parser's own
  ``RecursionError`` on absurd depth is converted: the parsers keep no state
  across calls, so nothing is left half-done);
- ``MAX_NODES`` (10,000): values *after expanding YAML aliases*, counted while
  YAML is composed, so a bomb or a huge file is refused after at most that
  many nodes of work, before anything expands it.  Settings files are small;
  10,000 values is far beyond any real one.

The limits are module attributes so tests can check the counters exactly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from ._errors import ConfigError
from ._text import one_line

__all__ = [
    "DOCUMENT_FORMATS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "check_shape",
    "load_document",
    "load_json",
    "load_toml",
    "load_yaml",
    "read_text",
    "strict_yaml_loader",
]

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 10_000


def read_text(path: Path, what: str, fix: str) -> str:
    """The UTF-8 text of the regular file ``path``; ``FileNotFoundError`` if absent.

    Opened non-blocking (a FIFO never hangs the caller) and checked to be a
    regular file before reading at most ``MAX_FILE_BYTES + 1`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}; {fix}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}; {fix}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(f"{path}: {what} is {kind}; replace it with a file or remove it")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read {what}: {exc.strerror or exc}; {fix}"
            ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: {what} is larger than {MAX_FILE_BYTES // (1 << 20)} MiB "
            "(the limit); make it smaller"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: {what} is not UTF-8 text (invalid byte at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def _too_deep(where: str) -> ConfigError:
    return ConfigError(
        f"{where}: nested more than {MAX_DEPTH} levels deep (the limit); flatten the structure"
    )


def _too_many(where: str) -> ConfigError:
    return ConfigError(
        f"{where}: more than {MAX_NODES} values after expanding aliases (the limit); "
        "remove repeated aliases or split the settings"
    )


def check_shape(data: Any, where: str) -> int:
    """Count the values of ``data`` (repeats of shared objects included); return the count.

    Iterative, so hostile input cannot exhaust the stack here.  Raises
    ``ConfigError`` past ``MAX_DEPTH`` nested containers or ``MAX_NODES`` values.
    """
    nodes = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _too_many(where)
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        stack.extend((child, depth + 1) for child in children)
    return nodes


def _max_digits() -> int:
    """Python's limit on decimal digits converted by ``int()`` (0: no limit)."""
    get = getattr(sys, "get_int_max_str_digits", None)
    return int(get()) if get is not None else 0


def _too_long_int(
    path: Path, text: str, what: str, fix: str = "shorten the number or write it as a string"
) -> ConfigError:
    """The error for an integer beyond Python's digit limit, at its line when it can be found.

    Why: ``int()`` refuses more than 4300 decimal digits (CVE-2020-10735) with a
    plain ``ValueError`` that tomllib, PyYAML and ``json`` let through.
    """
    limit = _max_digits()
    where = str(path)
    if limit:
        match = re.search(rf"[0-9](?:_?[0-9]){{{limit},}}", text)
        if match is not None:
            where = f"{path}:{text.count(chr(10), 0, match.start()) + 1}"
    return ConfigError(
        f"{where}: invalid {what}: integer too long (more than {limit or 'the allowed'} "
        f"digits); {fix}"
    )


def _is_too_long_int(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "digits" in str(exc) and "int" in str(exc)


def load_toml(text: str, path: Path) -> dict[str, Any]:
    import tomllib  # here: reading only the JSON overlay (a control command) does not pay for it

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        message = one_line(re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)))
        raise ConfigError(f"{where}: invalid TOML: {message}; fix the file") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise _too_deep(str(path)) from None
    except ValueError as exc:  # not a TOMLDecodeError: int() past its digit limit
        if _is_too_long_int(exc):
            raise _too_long_int(path, text, "TOML") from None
        raise ConfigError(
            f"{path}: invalid TOML: {one_line(str(exc))}; fix the file"
        ) from None
    check_shape(data, str(path))
    return data


def load_json(text: str, path: Path, what: str, fix: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: invalid JSON in {what}: {exc.msg}; {fix}"
        ) from None
    except RecursionError:  # the C scanner refuses deep nesting this way
        raise _too_deep(str(path)) from None
    except ValueError as exc:  # not a JSONDecodeError: int() past its digit limit
        if _is_too_long_int(exc):
            raise _too_long_int(path, text, f"JSON in {what}", fix) from None
        raise ConfigError(
            f"{path}: invalid JSON in {what}: {one_line(str(exc))}; {fix}"
        ) from None
    check_shape(data, str(path))
    return data


class _YamlLimit(Exception):
    """Raised inside the composer; converted to ConfigError by ``load_yaml``."""

    def __init__(self, kind: str, line: int | None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.line = line


def _limited_compose_node(self: Any, parent: Any, index: Any) -> Any:
    """``Composer.compose_node`` that counts expanded nodes and depth as it goes.

    A node's expanded size (itself plus every value under it, aliases
    expanded) is recorded when it is complete; an alias adds the size of the
    node it names.  The running total is exactly the number of values the
    document expands to, so a bomb stops after ``MAX_NODES`` units of work.
    """
    import yaml

    sizes: dict[int, int] = self._oneiric_sizes
    if self.check_event(yaml.events.AliasEvent):
        event = self.peek_event()
        node = self.anchors.get(event.anchor)
        if node is not None:
            size = sizes.get(id(node))
            if size is None:  # the alias is inside the node it names
                raise _YamlLimit("recursive", event.start_mark.line + 1)
            self._oneiric_total += size
            if self._oneiric_total > MAX_NODES:
                raise _YamlLimit("nodes", event.start_mark.line + 1)
        return yaml.composer.Composer.compose_node(self, parent, index)
    event = self.peek_event()
    if self._oneiric_depth >= MAX_DEPTH and not isinstance(event, yaml.events.ScalarEvent):
        raise _YamlLimit("depth", event.start_mark.line + 1)
    self._oneiric_total += 1
    if self._oneiric_total > MAX_NODES:
        raise _YamlLimit("nodes", event.start_mark.line + 1)
    self._oneiric_depth += 1
    try:
        node = yaml.composer.Composer.compose_node(self, parent, index)
    finally:
        self._oneiric_depth -= 1
    if isinstance(node, yaml.nodes.SequenceNode):
        size = 1 + sum(sizes[id(child)] for child in node.value)
    elif isinstance(node, yaml.nodes.MappingNode):
        size = 1 + sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return node


# What PyYAML's SafeLoader constructors raise on a malformed explicitly tagged
# scalar (``!!int 0x``, ``!!timestamp x``, ``!!bool x``, ``!!map x``, ...) or an
# integer past ``int()``'s digit limit, instead of a ``YAMLError``.
_CONSTRUCTOR_BUGS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


class _YamlValueError(Exception):
    """A constructor failed on one node; converted to ConfigError by ``load_yaml``."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def _guarded_construct_object(self: Any, node: Any, deep: bool = False) -> Any:
    """``BaseConstructor.construct_object`` whose raw exceptions name the node.

    The innermost failing node is converted (outer calls let it pass), so the
    error carries the line of the offending value.
    """
    import yaml

    try:
        return yaml.constructor.BaseConstructor.construct_object(self, node, deep=deep)
    except _CONSTRUCTOR_BUGS as exc:
        line = node.start_mark.line + 1 if node.start_mark is not None else None
        value = node.value if isinstance(node, yaml.nodes.ScalarNode) else None
        if _is_too_long_int(exc):
            limit = _max_digits()
            problem = (
                f"integer too long (more than {limit or 'the allowed'} digits); "
                "shorten the number or write it as a string"
            )
        elif isinstance(value, str):
            shown = value if len(value) <= 40 else value[:40] + "..."
            problem = f"malformed {node.tag!r} value {shown!r}"
        else:
            problem = f"cannot construct a {node.tag!r} value from a {node.id}"
        raise _YamlValueError(problem, line) from None


def _limited_init(self: Any, stream: Any) -> None:
    import yaml

    yaml.SafeLoader.__init__(self, stream)
    self._oneiric_sizes = {}
    self._oneiric_total = 0
    self._oneiric_depth = 0


def limited_loader_namespace() -> dict[str, Any]:
    """Class attributes that make a ``yaml.SafeLoader`` subclass count its work."""
    return {
        "__init__": _limited_init,
        "compose_node": _limited_compose_node,
        "construct_object": _guarded_construct_object,
    }


def load_yaml(text: str, path: Path, loader: Any) -> Any:
    """Parse YAML with ``loader`` (built with ``limited_loader_namespace``)."""
    import yaml

    try:
        data = yaml.load(text, Loader=loader)  # a SafeLoader subclass
    except _YamlLimit as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        if exc.kind == "depth":
            raise _too_deep(where) from None
        if exc.kind == "recursive":
            raise ConfigError(
                f"{where}: an alias refers to a node that contains it (recursive alias); "
                "remove the alias"
            ) from None
        raise _too_many(where) from None
    except _YamlValueError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        fix = "" if "; " in exc.problem else "; fix the file"
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}{fix}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {one_line(problem)}; fix the file") from None
    except RecursionError:  # defence in depth: the composer is capped above
        raise _too_deep(str(path)) from None
    except _CONSTRUCTOR_BUGS as exc:  # defence in depth: raised outside construct_object
        if _is_too_long_int(exc):
            raise _too_long_int(path, text, "YAML") from None
        raise ConfigError(
            f"{path}: invalid YAML: a value cannot be constructed "
            f"({type(exc).__name__}); fix the file"
        ) from None
    check_shape(data, str(path))
    return data


@functools.cache
def strict_yaml_loader() -> Any:
    """A bounded ``yaml.SafeLoader`` subclass that refuses duplicate keys (None without PyYAML).

    PyYAML keeps the last of two equal keys; a silently ignored selection is
    exactly the kind of surprise settings must not have.
    """
    try:
        import yaml
    except ImportError:
        return None

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)  # YAML merge keys (<<: *base)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in mapping
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable key {key!r}", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            mapping[key] = loader.construct_object(value_node, deep=deep)
        return mapping

    # Built with type() so that mypy accepts it with and without types-PyYAML;
    # it counts expanded nodes and depth while composing (limited_loader_namespace).
    namespace = {"__doc__": strict_yaml_loader.__doc__, **limited_loader_namespace()}
    loader: Any = type("StrictLoader", (yaml.SafeLoader,), namespace)
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return loader


#: File suffixes ``load_document`` reads.
DOCUMENT_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def load_document(path: Path, what: str = "file") -> Any:
    """A TOML, YAML or JSON file (by suffix) under the same limits as settings files.

    For documents other packages keep beside the settings (workflow definitions
    in ``workflows/``): one reader, so they get the size, depth and alias-bomb
    limits and the one-line errors settings files have.  ``FileNotFoundError``
    if the file is gone.
    """
    fmt = DOCUMENT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{path}: unknown {what} format {path.suffix!r}; use .toml, .yaml, .yml or .json"
        )
    text = read_text(path, what, "fix the file or its permissions")
    if fmt == "toml":
        return load_toml(text, path)
    if fmt == "json":
        return load_json(text, path, what, "fix the file")
    loader = strict_yaml_loader()
    if loader is None:
        raise ConfigError(
            f"{path}: YAML needs PyYAML; run 'pip install \"oneiric-core[yaml]\"' or use TOML"
        )
    return load_yaml(text, path, loader)
