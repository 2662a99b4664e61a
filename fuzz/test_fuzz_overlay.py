"""Fuzz the selection overlay: a hostile ``<state dir>/selections.json``.

The overlay is machine-written (``oneiric swap``) but lives in a directory other
processes and users may touch, and a crash while reading it would take down
every application that watches it.  Property for every input: ``read_overlay``,
``load_settings(..., state_dir=...)`` (with ``Settings.apply`` and the
selection accessors) and ``write_overlay`` on top of it either succeed or raise
``ConfigError`` with a one-line message; a successful ``write_overlay`` leaves
an overlay that reads back with the written selection.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example
from hypothesis import strategies as st

from oneiric.core import ConfigError, Resolver, load_settings, read_overlay, write_overlay
from oneiric.core._hooks import new_plugin_manager

HOOKS = new_plugin_manager()
CONFIG = b'[adapter]\nselections = {cache = "memory"}\n[adapter.tenants.t1.selections]\ndb = "x"\n'


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc), f"{type(exc).__name__} message is not one line: {exc!s}"


def check_overlay(content: bytes | None) -> None:
    """The property for one ``selections.json`` (None: a directory in its place)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp, "state")
        state.mkdir()
        config = Path(tmp, "settings")
        config.mkdir()
        (config / "oneiric.toml").write_bytes(CONFIG)
        overlay = state / "selections.json"
        if content is None:
            overlay.mkdir()
        elif content == b"->":
            overlay.symlink_to(overlay)  # a symlink loop
        else:
            overlay.write_bytes(content)
        try:
            read_overlay(state)
        except ConfigError as exc:
            _one_line(exc)
        try:
            settings = load_settings(config, state_dir=state, hooks=HOOKS, environ={})
        except ConfigError as exc:
            _one_line(exc)
        else:
            try:
                settings.apply(Resolver(hooks=HOOKS))
            except ConfigError as exc:
                _one_line(exc)
            for domain in settings.all_domains():
                for tenant in (None, *settings.tenants(domain)):
                    settings.selections(domain, tenant=tenant)
            settings.as_dict()
        for tenant in (None, "t1"):
            try:
                write_overlay(state, "adapter", "cache", "redis", tenant=tenant)
            except ConfigError as exc:
                _one_line(exc)
                continue
            data = read_overlay(state)
            if tenant is None:
                assert data["selections"]["adapter"]["cache"] == "redis", data
            else:
                assert data["tenants"]["adapter"][tenant]["cache"] == "redis", data


# ------------------------------------------------------------------ strategies

_names = st.sampled_from(["adapter", "service", "cache", "db", "t1", "redis", "", "A", "é",
                          "a" * 65, "selections", "tenants", "x@y", "a\nb"])
_leaf = st.one_of(
    st.sampled_from(["memory", "redis", "redis@entry_point:x", "redis@", "", "@:", "A"]),
    st.text(max_size=10), st.integers(), st.booleans(), st.none(), st.floats(),
)
_json = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6) | _names,
                                                                       inner, max_size=3),
    max_leaves=10,
)
_scope = st.dictionaries(_names, _leaf | _json, max_size=3) | _json
overlays = st.fixed_dictionaries(
    {},
    optional={
        "selections": st.dictionaries(_names, _scope, max_size=3) | _json,
        "tenants": st.dictionaries(_names, st.dictionaries(_names, _scope, max_size=2) | _json,
                                   max_size=2) | _json,
        "extra": _json,
    },
)


def _render(doc: Any, edits: list[tuple[int, int, str]]) -> bytes:
    text = json.dumps(doc, ensure_ascii=False)
    for pos, cut, insert in edits:
        at = pos % (len(text) + 1)
        text = text[:at] + insert + text[at + cut:]
    return text.encode("utf-8")


_edits = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 3),
              st.sampled_from(["{", "}", "[", "]", '"', ",", ":", "\\", "NaN", "1e999"])
              | st.text(max_size=3)),
    max_size=2,
)


def _deep(depth: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    body = b"[" * depth + b"]" * depth if opener == b"[" else (
        b'{"a":' * depth + b"1" + closer * depth
    )
    return b'{"selections":' + body + b"}"


contents = st.one_of(
    st.builds(_render, overlays, st.just([])),
    st.builds(_render, overlays, _edits),
    st.builds(_deep, st.integers(1, 100_000), st.sampled_from([b"[", b"{"])),
    st.integers(4000, 6000).map(lambda n: b'{"selections": ' + b"9" * n + b"}"),
    st.binary(max_size=100),
    st.sampled_from([None, b"->", b"", b"\xef\xbb\xbf{}", b"\xff\xfe{}", b'{"selections":{}}\x00',
                     b'{"selections":{},"selections":[]}', b"NaN", b'"x"', b"[]"]),
)


# ------------------------------------------------------------------ property


@example(b'{"selections": {"adapter": {"cache": "redis"}}, "tenants": {}}')
@example(None)
@example(b"->")
@example(_deep(100_000, b"["))
@example(b'{"selections": ' + b"9" * 5000 + b"}")
@example(b'{"tenants": {"adapter": {"": {}}}}')
@example(b'{"selections": {"adapter": "memory"}}')  # finding: write_overlay TypeError
@example(b'{"tenants": {"adapter": "memory"}}')  # finding: write_overlay AttributeError
@example(b'{"selections": {"adapter": {"\\n": "memory"}}}')  # finding: key "\n" splits the message
def prop_overlay(content: bytes | None) -> None:
    check_overlay(content)


def test_fuzz_overlay(fuzz: Any) -> None:
    fuzz(prop_overlay, contents)
