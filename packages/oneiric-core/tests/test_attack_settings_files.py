"""Attack: hostile settings files and overlays (alias bombs, deep nesting, non-files, junk bytes).

Every case must end in a one-line ``ConfigError`` naming the file and the
limit or the problem - never ``RecursionError``, ``UnicodeDecodeError``,
``IsADirectoryError``, a hang or minutes of work.  Work is bounded by counting
expanded nodes: the counters are checked exactly (no timing assertions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneiric.core import ConfigError, _safeload, load_settings, read_overlay, write_overlay

BOMB = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ONEIRIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    yield


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


def one_line_error(call: object, *fragments: str) -> str:
    with pytest.raises(ConfigError) as error:
        call()  # type: ignore[operator]
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def nested(kind: str, depth: int) -> str:
    """A document with ``depth`` nested containers under the top-level mapping."""
    if kind == "toml":
        return "[adapter.provider_settings.cache.redis]\nx = " + "[" * depth + "]" * depth + "\n"
    if kind == "yaml":
        return "provider_settings:\n  cache:\n    redis:\n      x: " + "[" * depth + "]" * depth
    return json.dumps({"selections": {}, "x": "PLACEHOLDER"}).replace(
        '"PLACEHOLDER"', "[" * depth + "]" * depth
    )


# ------------------------------------------------------------------ alias bomb


@pytest.mark.parametrize("name", ["adapters.yaml", "services.yml"])
def test_attack_yaml_billion_laughs_is_refused_by_node_count(cfg: Path, name: str) -> None:
    path = cfg / name
    path.write_text("provider_settings:\n  cache:\n    redis:\n" + "".join(
        f"      {line}\n" for line in BOMB.strip().splitlines()
    ), encoding="utf-8")
    assert path.stat().st_size < 1024
    one_line_error(lambda: load_settings(cfg), str(path), "more than 10000 values")


@pytest.mark.parametrize(
    ("document", "expanded"),
    [
        ("a: [1, 2]\n", 5),  # mapping, key a, list, 1, 2
        ("a: &x [1, 2]\nb: *x\n", 9),  # the alias adds the 3 values it names
        ("a: &x [1, 2]\nb: [*x, *x]\nc: *x\n", 17),
        ("base: &b {k: 1}\nm:\n  <<: *b\n  j: 2\n", 13),
    ],
    ids=["plain", "alias", "aliases_in_list", "merge_key"],
)
def test_attack_yaml_node_counter_counts_expanded_nodes_exactly(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, document: str, expanded: int
) -> None:
    path = cfg / "custom.yaml"
    path.write_text(document, encoding="utf-8")
    loader = _safeload.strict_yaml_loader()
    monkeypatch.setattr(_safeload, "MAX_NODES", expanded)
    _safeload.load_yaml(document, path, loader)  # exactly at the limit: fine
    monkeypatch.setattr(_safeload, "MAX_NODES", expanded - 1)
    with pytest.raises(ConfigError, match=f"more than {expanded - 1} values"):
        _safeload.load_yaml(document, path, loader)


def test_attack_yaml_recursive_alias(cfg: Path) -> None:
    path = cfg / "adapters.yaml"
    path.write_text("selections: &s\n  loop: [*s]\n", encoding="utf-8")
    one_line_error(lambda: load_settings(cfg), str(path), "recursive alias")


# ---------------------------------------------------------------------- depth


@pytest.mark.parametrize("kind", ["toml", "yaml"])
@pytest.mark.parametrize("depth", [65, 500, 100_000], ids=["just_over", "deep", "absurd"])
def test_attack_deeply_nested_settings_file(
    cfg: Path, kind: str, depth: int
) -> None:
    path = cfg / ("oneiric.toml" if kind == "toml" else "adapters.yaml")
    path.write_text(nested(kind, depth), encoding="utf-8")
    one_line_error(lambda: load_settings(cfg), str(path), "nested more than 64 levels")


@pytest.mark.parametrize(("kind", "lists"), [("toml", 59), ("yaml", 60)])
def test_nesting_at_the_limit_loads(cfg: Path, kind: str, lists: int) -> None:
    # The mappings above the lists are levels too: 5 in oneiric.toml, 4 in adapters.yaml.
    path = cfg / ("oneiric.toml" if kind == "toml" else "adapters.yaml")
    path.write_text(nested(kind, lists), encoding="utf-8")
    settings = load_settings(cfg)
    value = settings.raw_provider_settings("adapter", "cache", "redis")["x"]
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    assert depth == lists
    path.write_text(nested(kind, lists + 1), encoding="utf-8")
    one_line_error(lambda: load_settings(cfg), "nested more than 64 levels")


@pytest.mark.parametrize("depth", [65, 100_000], ids=["just_over", "absurd"])
def test_attack_deeply_nested_overlay(tmp_path: Path, depth: int) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selections.json").write_text(nested("json", depth), encoding="utf-8")
    path = str(state / "selections.json")
    one_line_error(lambda: read_overlay(state), path, "nested more than 64 levels")
    one_line_error(lambda: load_settings(None), path, "nested more than 64 levels")
    one_line_error(lambda: write_overlay(state, "adapter", "cache", "x"), path)


def test_shape_counter_counts_shared_objects_each_time() -> None:
    shared = [1, 2]
    assert _safeload.check_shape({"a": shared, "b": shared}, "x") == 7


# ------------------------------------------------------ not a file, junk, size


def _make(path: Path, what: str) -> None:
    if what == "directory":
        path.mkdir()
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "undecodable":
        path.write_bytes(b"[adapter]\nselections = { cache = \"\xff\xfe\" }\n")
    elif what == "too_large":
        path.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    elif what == "nul_bytes":
        path.write_bytes(b"\x00" * 64)


CASES = ["directory", "fifo", "undecodable", "too_large", "nul_bytes"]
EXPECT = {
    "directory": "is a directory",
    "fifo": "not a regular file",
    "undecodable": "not UTF-8 text",
    "too_large": "larger than 1 MiB",
    "nul_bytes": "invalid",
}


@pytest.mark.parametrize("what", CASES)
@pytest.mark.parametrize("name", ["oneiric.toml", "adapters.yaml"])
def test_attack_hostile_settings_file(cfg: Path, what: str, name: str) -> None:
    path = cfg / name
    _make(path, what)
    one_line_error(lambda: load_settings(cfg), str(path), EXPECT[what])


@pytest.mark.parametrize("what", CASES)
def test_attack_hostile_overlay_file(tmp_path: Path, what: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path = state / "selections.json"
    _make(path, what)
    one_line_error(lambda: read_overlay(state), str(path), EXPECT[what])
    one_line_error(lambda: write_overlay(state, "adapter", "cache", "x"), str(path))


@pytest.mark.parametrize("what", ["directory", "fifo", "undecodable", "too_large"])
def test_attack_hostile_file_as_the_config_path(tmp_path: Path, what: str) -> None:
    path = tmp_path / "oneiric.toml"
    _make(path, what)
    if what == "directory":  # a directory is a config directory: empty settings
        assert load_settings(path).domains == {}
        return
    one_line_error(lambda: load_settings(path), str(path), EXPECT[what])


# --- fuzz findings: raw exceptions and multi-line messages ---------------------------------

MALFORMED_TAGS = [
    "!!timestamp x",
    "!!timestamp 2020-13-45",
    "!!int 0x",
    "!!int 0b",
    "!!int 0o",
    "!!int ':'",
    "!!int ''",
    "!!int -",
    "!!float x",
    "!!float ''",
    "!!bool x",
    "!!map x",
]


@pytest.mark.parametrize("tag", MALFORMED_TAGS)
def test_attack_yaml_explicit_tag_on_malformed_scalar(cfg: Path, tag: str) -> None:
    (cfg / "adapters.yaml").write_text(f"# comment\nselections: {{cache: {tag}}}\n")
    one_line_error(lambda: load_settings(cfg), "adapters.yaml:2", "invalid YAML", "fix the file")


@pytest.mark.parametrize("tag", ["!!python/object:os.system x", "!custom x"])
def test_attack_yaml_unknown_tag_stays_a_config_error(cfg: Path, tag: str) -> None:
    (cfg / "adapters.yaml").write_text(f"selections: {{cache: {tag}}}\n")
    one_line_error(lambda: load_settings(cfg), "adapters.yaml:1", "invalid YAML")


def test_yaml_well_formed_explicit_tags_still_load(cfg: Path) -> None:
    (cfg / "adapters.yaml").write_text(
        "selections: {cache: !!str memory}\n"
        "provider_settings: {cache: {memory: {a: !!int '0x1f', b: !!float '1.5', "
        "c: !!bool 'yes', d: !!timestamp 2020-01-02}}}\n"
    )
    settings = load_settings(cfg)
    assert settings.selections("adapter") == {"cache": "memory"}
    raw = settings.raw_provider_settings("adapter", "cache", "memory")
    assert (raw["a"], raw["b"], raw["c"], str(raw["d"])) == (31, 1.5, True, "2020-01-02")


HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("oneiric.toml", f"[adapter.provider_settings.c.p]\nx = {HUGE}\n"),
        ("oneiric.toml", f"[adapter.provider_settings.c.p]\nx = -{HUGE}\n"),
        ("adapters.yaml", f"selections: {{cache: {HUGE}}}\n"),
        ("adapters.yaml", f"provider_settings:\n  c:\n    p:\n      x: !!int {HUGE}\n"),
    ],
    ids=["toml", "toml_negative", "yaml", "yaml_tagged"],
)
def test_attack_integer_too_long_in_settings_file(cfg: Path, name: str, text: str) -> None:
    (cfg / name).write_text(text)
    one_line_error(lambda: load_settings(cfg), name, "integer too long")


@pytest.mark.parametrize(
    "text",
    [
        '{"selections": ' + HUGE + "}",
        '{"selections": {"adapter": {"cache": ' + HUGE + "}}}",
        '{"selections": {}, "tenants": {}, "x": [1, -' + HUGE + "]}",
    ],
    ids=["top", "nested", "negative_in_list"],
)
def test_attack_integer_too_long_in_overlay(tmp_path: Path, text: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selections.json").write_text(text)
    one_line_error(lambda: read_overlay(state), "selections.json", "integer too long")


@pytest.mark.parametrize(
    "text",
    [
        '[adapter.selections]\n"a\\nb" = "x"\n',
        '[adapter.selections]\ncache = "mem\\nory"\n',
        '[adapter.tenants."t\\n1".selections]\ncache = "Not A Provider"\n',
        '[adapter.provider_settings."c\\nx".memory]\nx = 1\n',
        '[adapter.provider_settings.cache."m\\ny"]\nx = 1\n',
        '["ad\\napter".selections]\ncache = "memory"\n',
        '[adapter.tenants.""]\nselections = {}\n',
    ],
    ids=[
        "selection_key",
        "selection_value",
        "tenant",
        "provider_settings_key",
        "provider_settings_provider",
        "section",
        "empty_tenant",
    ],
)
def test_attack_newline_in_settings_name_keeps_error_one_line(cfg: Path, text: str) -> None:
    (cfg / "oneiric.toml").write_text(text)
    one_line_error(lambda: load_settings(cfg), "oneiric.toml")


@pytest.mark.parametrize(
    "overlay",
    [
        {"selections": {"adapter": {"\n": "memory"}}},
        {"selections": {"adapter": {"cache": "mem\nory"}}},
        {"selections": {"ad\napter": {"cache": "memory"}}},
        {"selections": {"ad\napter": "memory"}},
        {"tenants": {"adapter": {"t\n1": {"\n": "memory"}}}},
        {"tenants": {"adapter": {"t\n1": "memory"}}},
        {"tenants": {"ad\napter": "memory"}},
        {"tenants": {"ad\napter": {"t1": {"cache": "memory"}}}},
    ],
    ids=[
        "key",
        "value",
        "domain",
        "domain_not_object",
        "tenant_and_key",
        "tenant_not_object",
        "tenant_domain_not_object",
        "tenant_domain",
    ],
)
def test_attack_newline_in_overlay_name_keeps_error_one_line(
    tmp_path: Path, cfg: Path, overlay: dict[str, object]
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selections.json").write_text(json.dumps(overlay))
    one_line_error(lambda: load_settings(cfg), "selections.json", "fix or delete the file")


def test_attack_tenant_name_with_line_break_is_refused_and_nothing_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oneiric.core import Resolver

    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        '[adapter.selections]\ncache = "redis"\n'
        '[adapter.tenants."t\\n1".selections]\ncache = "memory"\n',
        encoding="utf-8",
    )
    resolver = Resolver()
    with pytest.raises(ConfigError, match=r"invalid tenant 't\\n1'") as info:
        load_settings(config).apply(resolver)
    assert "\n" not in str(info.value)
    assert resolver.selections("adapter") == {}
