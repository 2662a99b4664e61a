"""Fuzz the settings loader: ``load_settings(dir)`` on random and structured TOML and YAML.

Property for every input: ``load_settings`` either returns ``Settings`` or
raises ``ConfigError`` with a one-line message, and ``Settings.apply`` on a
fresh ``Resolver`` also raises nothing but ``ConfigError``.  Anything else
(``RecursionError``, ``TypeError``, a PyYAML or pydantic error, ``OSError``...)
is a failure, and so is an input that takes more than 1 s (alias bombs).

Inputs are files written to a real temporary config directory: ``oneiric.toml``
and per-domain files (``adapters.toml``, ``services.yaml``, ``custom.yml``,
reserved and invalid names, directories and dangling symlinks in their place,
undecodable bytes), built from generated documents with nested tables,
``${env:...}`` / ``${secret:...}`` references, tenants, swap policies and
provider settings, then rendered as TOML or YAML and sometimes corrupted
character by character.  YAML adds anchors, aliases, merge keys, tags and alias
bombs; both formats get deep nesting.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example
from hypothesis import strategies as st

from oneiric.core import ConfigError, Resolver, load_settings
from oneiric.core._hooks import hookimpl, new_plugin_manager

ENVIRON = {"HOST": "db.local", "PORT": "5432", "EMPTY": "", "REF": "${env:HOST}", "NL": "a\nb"}


class _FuzzSecrets:
    """A secrets plugin with a found, a missing and a failing secret."""

    @hookimpl
    def oneiric_secret(self, name: str) -> str | None:
        if name == "boom":
            raise RuntimeError("vault\nunreachable")
        return {"token": "s3cr3t", "multi": "line\none"}.get(name)


HOOKS = new_plugin_manager()
HOOKS.register(_FuzzSecrets(), name="fuzz-secrets")


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc), f"{type(exc).__name__} message is not one line: {exc!s}"


def check_load(files: dict[str, bytes | None], *, as_file: str | None = None) -> None:
    """The property, on a config directory holding ``files`` (None: a directory there).

    With ``as_file`` the path of that one file is passed instead of the directory.
    """
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "settings")
        config.mkdir()
        state = Path(tmp, "state")
        for name, content in files.items():
            target = config / name
            if content is None:
                target.mkdir(exist_ok=True)
            elif content == b"->":
                target.symlink_to(Path(tmp, "nowhere"))
            else:
                target.write_bytes(content)
        path = config / as_file if as_file else config
        try:
            settings = load_settings(path, state_dir=state, hooks=HOOKS, environ=ENVIRON)
        except ConfigError as exc:
            _one_line(exc)
            return
        try:
            settings.apply(Resolver(hooks=HOOKS))
        except ConfigError as exc:
            _one_line(exc)
        settings.as_dict()  # the redacted view must not fail on anything loaded


# ------------------------------------------------------------------ documents

_names = st.sampled_from(
    ["cache", "db", "redis", "memory", "x-1", "a.b", "acme", "t1", "A", "", "é", "a" * 65,
     "selections", "tenants", "provider_settings", "swap_policy", "remote", "lifecycle", "a\nb"]
)
_refs = st.sampled_from([
    "${env:HOST}", "${env:PORT}", "${env:NOPE}", "${env:NOPE:-fallback}", "${env:EMPTY}",
    "${env:REF}", "${env:NL}", "${secret:token}", "${secret:multi}", "${secret:missing}",
    "${secret:boom}", "${secret:token:-x}", "${env:}", "${ENV:HOST}", "${env:HOST",
    "${ env:HOST}", "$${env:HOST}", "${env:HOST}${secret:token}", "redis@entry_point:x",
    "redis@", "@x:y", "memory", "sticky", "greedy",
])
_scalars = st.one_of(
    _refs, st.text(max_size=20), st.integers(-(2**70), 2**70), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.dates(), st.times(),
)
values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=12,
)


def _selections() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_names, _refs | _names | values, max_size=3)


domain_bodies = st.fixed_dictionaries(
    {},
    optional={
        "selections": _selections() | values,
        "provider_settings": st.dictionaries(
            _names, st.dictionaries(_names, st.dictionaries(_names, values, max_size=3),
                                    max_size=2), max_size=2,
        ) | values,
        "tenants": st.dictionaries(
            _names, st.fixed_dictionaries({}, optional={"selections": _selections()}) | values,
            max_size=2,
        ) | values,
        "swap_policy": st.dictionaries(_names, _refs | values, max_size=2) | values,
        "unknown": values,
    },
)
_sections = st.sampled_from(
    ["adapter", "adapters", "service", "services", "task", "custom", "remote", "lifecycle",
     "Bad Name", "", "é"]
)
main_docs = st.dictionaries(_sections, domain_bodies | values, max_size=3)

# --------------------------------------------------------------- rendering

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (int, dt.date, dt.time)):
        return value.isoformat() if not isinstance(value, int) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Render nested dicts as [table] headers, everything else inline."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables:
        path = (*prefix, key)
        lines.append("\n[" + ".".join(_toml_key(p) for p in path) + "]")
        lines.append(to_toml(value, path))
    return "\n".join(lines)


def to_yaml(doc: Any, flow: bool) -> str:
    return yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True, sort_keys=False)


def _corrupt(text: str, edits: list[tuple[int, int, str]]) -> str:
    for pos, cut, insert in edits:
        at = pos % (len(text) + 1)
        text = text[:at] + insert + text[at + cut:]
    return text


_edits = st.lists(
    st.tuples(
        st.integers(0, 10**6), st.integers(0, 3),
        st.text(max_size=4) | st.sampled_from(["[", "]", "=", ":", "&a", "*a", "\n", '"', "{"]),
    ),
    max_size=3,
)
_domain_files = st.sampled_from(
    ["adapters.toml", "adapter.yaml", "services.yml", "custom.toml", "tasks.YAML",
     "remote.yaml", "lifecycle.toml", "Bad Name.toml", "é.toml", "oneiric.yaml",
     "adapters.yaml", ".toml", "services.toml"]
)

# ------------------------------------------------------ hostile YAML/TOML shapes


def alias_bomb(levels: int, width: int) -> bytes:
    """The billion-laughs shape: each level lists ``width`` aliases of the previous one."""
    lines = ['a0: &a0 ["${env:HOST}"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("selections: {cache: memory}")
    lines.append(f"provider_settings: {{cache: {{m: {{x: *a{levels}}}}}}}")
    return "\n".join(lines).encode()


def deep(depth: int, shape: str) -> bytes:
    if shape == "yaml-flow-list":
        return b"selections: " + b"[" * depth + b"]" * depth
    if shape == "yaml-flow-map":
        return b"provider_settings: " + b"{a: " * depth + b"1" + b"}" * depth
    if shape == "yaml-block":
        return "".join(f"{'  ' * i}a:\n" for i in range(depth)).encode() + b"  " * depth + b"b: 1"
    if shape == "toml-array":
        return b"[adapter.provider_settings.c.p]\nx = " + b"[" * depth + b"]" * depth
    if shape == "toml-inline":
        return b"[adapter.provider_settings.c.p]\nx = " + b"{a = " * depth + b"1" + b"}" * depth
    # toml-dotted: a table nested ``depth`` levels through dotted keys
    return b"[adapter.provider_settings.c.p]\n" + b".".join([b"a"] * depth) + b" = 1"


_YAML_SNIPPETS = [
    "base: &b {cache: memory}\nselections:\n  <<: *b\n",
    "selections: !!python/object:os.system {}\n",
    "selections: !!binary aGVsbG8=\n",
    "selections: !!set {a, b}\n",
    "selections:\n  ? [a, b]\n  : memory\n",
    "selections: {cache: memory, cache: redis}\n",
    "selections: *undefined\n",
    "--- {}\n--- {}\n",
    "selections: {cache: !!int '12'}\n",
    "%YAML 1.1\n---\nselections: {cache: 0x1F}\n",
    "selections: {? !!null '' : memory}\n",
    "selections: {cache: 2025-01-01}\n",
    "tenants: &t {x: {selections: *t}}\n",
    "a: &a [*a]\n",
]
_yaml_tags = st.sampled_from(
    ["!!timestamp", "!!int", "!!float", "!!bool", "!!binary", "!!map", "!!seq", "!!set",
     "!!omap", "!!pairs", "!!str", "!!null", "!!merge", "!!value", "!local", "!<tag:x>"]
)
_tagged_values = st.sampled_from(
    ["", "x", "0", "0b", "0x", "0o", "-", "2020-13-45", "2020-01-01 25:00", "[1]", "{a: 1}",
     "1_0", ".inf", "1:2:3", "'*'", "~", '"\\t"']
) | st.text(max_size=8).map(json.dumps)


# ------------------------------------------------------------------ properties


@example({"oneiric.toml": b"[adapter]\nselections = {cache = \"memory\"}\n"})
@example({"oneiric.toml": None})
@example({"adapters.toml": None, "oneiric.toml": b"[adapter.selections]\ncache = 1\n"})
@example({"adapters.toml": b"\xff\xfe"})
@example({"services.yml": b"->"})
@example({"oneiric.toml": b'[adapter.selections]\n"a\\nb" = "x"\n'})  # finding: message split
def prop_files(files: dict[str, bytes | None]) -> None:
    check_load(files)


def _render(doc: dict[str, Any], fmt: str, edits: list[tuple[int, int, str]]) -> bytes:
    try:
        text = to_toml(doc) if fmt == "toml" else to_yaml(doc, fmt == "yaml-flow")
    except (TypeError, yaml.YAMLError):  # not representable in that format: raw text
        text = repr(doc)
    return _corrupt(text, edits).encode("utf-8", "surrogatepass")


@st.composite
def file_sets(draw: st.DrawFn) -> dict[str, bytes | None]:
    """Per-domain files rendered in the format their name says (sometimes not)."""
    files: dict[str, bytes | None] = {}
    for name in draw(st.sets(_domain_files, max_size=3)):
        special = draw(st.sampled_from([None, b"->", b"\xff", b"", b"null", b"[1]", b"42"]))
        if draw(st.integers(0, 5)) == 0:
            files[name] = special
            continue
        fmt = "toml" if name.lower().endswith(".toml") else draw(
            st.sampled_from(["yaml", "yaml-flow"])
        )
        files[name] = _render(draw(domain_bodies), fmt, draw(_edits))
    return files


_main = st.builds(_render, main_docs, st.just("toml"), _edits)


def test_fuzz_load_settings_files(fuzz: Any, monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(tmp_path))  # the built-in secrets source
    (tmp_path / "token").write_text("from-file\n")
    (tmp_path / "missing").mkdir()
    files = st.tuples(file_sets(), _main | st.none()).map(
        lambda t: {**t[0], **({"oneiric.toml": t[1]} if t[1] is not None else {})}
    )
    fuzz(prop_files, files)


@example((b"[a]\nb = 1\n", "oneiric.toml"))
@example((deep(3000, "toml-array"), "oneiric.toml"))
@example((deep(3000, "yaml-flow-list"), "adapters.yaml"))
@example((alias_bomb(8, 8), "adapters.yaml"))
# finding: explicit YAML tags on malformed scalars escape PyYAML's constructors raw
@example((b"selections: {cache: !!timestamp x}\n", "adapters.yaml"))  # AttributeError
@example((b"selections: {cache: !!int 0x}\n", "adapters.yaml"))  # ValueError
@example((b"selections: {cache: !!float x}\n", "adapters.yaml"))  # ValueError
@example((b"selections: {cache: !!int ''}\n", "adapters.yaml"))  # IndexError
@example((b"selections: {cache: !!bool x}\n", "adapters.yaml"))  # KeyError
@example((b"selections: {cache: !!map x}\n", "adapters.yaml"))  # ValueError (merge flatten)
@example((b"selections: {cache: !!timestamp 2020-13-45}\n", "adapters.yaml"))  # ValueError
# integers longer than sys.get_int_max_str_digits() (4300)
@example((b"[adapter.provider_settings.c.p]\nx = " + b"9" * 5000 + b"\n", "oneiric.toml"))
@example((b"selections: {cache: " + b"9" * 5000 + b"}\n", "adapters.yaml"))
def prop_single_file(case: tuple[bytes, str]) -> None:
    content, name = case
    check_load({name: content})
    check_load({name: content}, as_file=name)


_single = st.one_of(
    st.tuples(st.builds(_render, main_docs, st.just("toml"), _edits), st.just("oneiric.toml")),
    st.tuples(st.builds(_render, domain_bodies, st.sampled_from(["yaml", "yaml-flow", "toml"]),
                        _edits), st.sampled_from(["adapters.yaml", "adapters.toml"])),
    st.tuples(st.builds(alias_bomb, st.integers(1, 9), st.integers(1, 10)),
              st.just("adapters.yaml")),
    st.tuples(
        st.builds(deep, st.integers(1, 5000),
                  st.sampled_from(["yaml-flow-list", "yaml-flow-map", "yaml-block"])),
        st.just("adapters.yaml"),
    ),
    st.tuples(
        st.builds(deep, st.integers(1, 5000),
                  st.sampled_from(["toml-array", "toml-inline", "toml-dotted"])),
        st.just("oneiric.toml"),
    ),
    st.tuples(st.builds(lambda s, e: _corrupt(s, e).encode(), st.sampled_from(_YAML_SNIPPETS),
                        _edits), st.just("adapters.yaml")),
    st.tuples(st.builds(lambda tag, value: f"selections: {{cache: {tag} {value}}}\n".encode(),
                        _yaml_tags, _tagged_values), st.just("adapters.yaml")),
    st.tuples(st.integers(4000, 6000).map(lambda n: b"[adapter.provider_settings.c.p]\nx = "
                                          + b"9" * n), st.just("oneiric.toml")),
    st.tuples(st.integers(4000, 6000).map(lambda n: b"x: " + b"9" * n),
              st.just("adapters.yaml")),
    st.tuples(st.binary(max_size=300), st.sampled_from(["oneiric.toml", "custom.yml"])),
)


def test_fuzz_load_settings_hostile_shapes(fuzz: Any, monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(tmp_path))
    fuzz(prop_single_file, _single)

