"""``oneiric remote bundle`` and ``load_bundle``: the serverless profile's read-only remote path.

Real files throughout: a signed manifest whose wheel is served by the local
HTTPS server, synced into a real cache, bundled by the click command, loaded
from a directory made read-only - and compared file by file before and after,
since tests may run as root, where ``chmod`` does not stop a write.  Synchronous
tests: the click command runs its own event loop, as under ``oneiric``.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oneiric.core import ConfigError, Resolver, load_settings, resolve_factory
from oneiric.remote import (
    ArtifactDigestError,
    ExpiredManifestError,
    RemoteSync,
    SignatureError,
    StateError,
    configured_bundle,
    load_bundle,
    load_last_good,
)
from oneiric.remote._cli import remote

PKG = "acme_bundled"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _synced(kit: Any, https: Any, *, issued: datetime | None = None,
                  expires: datetime | None = None, sync_now: datetime | None = None) -> Path:
    """Sign a manifest with one wheel, serve it, sync it; return the settings dir."""
    wheel, spec = kit.wheel(PKG, "def make():\n    return 'from the bundle'\n")
    artifact = {**spec, "urls": [https.serve("/a.whl", wheel.read_bytes())]}
    component = {"domain": "adapter", "key": "greeter", "provider": "remote",
                 "factory": f"{PKG}:make", "artifact": "acme-bundled"}
    issued = issued or _now() - timedelta(hours=1)
    payload = kit.payload(1, artifacts={"acme-bundled": artifact},
                          components=[component, *kit.payload()["components"]],
                          issued=issued, expires=expires)
    url = https.serve("/m.json", kit.envelope(payload))
    source = kit.source(url, verify=str(https.ca_path))
    moment = sync_now
    sync = RemoteSync(Resolver(), source, now=(lambda: moment) if moment else None).sync()
    asyncio.run(sync)
    _other_process(kit.repository)
    return kit.settings(url, f'ca_bundle = "{https.ca_path}"\nfactory_allowlist = ["json"]\n')


def _other_process(repository: str) -> None:
    """Undo what loading did to this process (``sys.path``, imports): as if it ran elsewhere."""
    from oneiric.remote._activate import activate_paths

    activate_paths(repository, [])
    sys.modules.pop(PKG, None)


def _bundle(config: Path, out: Path, *args: str) -> Any:
    return CliRunner().invoke(remote, ["bundle", str(out), "--config", str(config), *args])


def _registered(resolver: Resolver) -> list[tuple[Any, ...]]:
    return sorted(
        (c.domain, c.key, c.provider, c.factory, str(c.source), c.priority,
         json.dumps(dict(c.metadata), sort_keys=True, default=str))
        for d in resolver.domains() for k in resolver.keys(d) for c in resolver.candidates(d, k)
    )


def _files(*roots: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``roots`` with its mtime, size and mode (what a write would change)."""
    found: dict[str, tuple[int, int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for current, dirs, files in os.walk(root):
            for name in [".", *dirs, *files]:
                path = Path(current, name)
                info = path.lstat()
                found[str(path)] = (info.st_mtime_ns, info.st_size, info.st_mode)
    return found


@pytest.fixture
def read_only() -> Iterator[Any]:
    """``read_only(root)``: remove every write bit under ``root`` (restored afterwards)."""
    saved: list[tuple[str, int]] = []

    def apply(root: Path) -> None:
        for current, _dirs, files in os.walk(root, topdown=False):
            for name in [*files, ""]:
                path = os.path.join(current, name) if name else current
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                saved.append((path, mode))
                os.chmod(path, mode & ~0o222)

    yield apply
    for path, mode in reversed(saved):
        os.chmod(path, mode)


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir())


# ------------------------------------------------------------------ build and load


def test_bundle_round_trip_registers_what_the_last_good_load_registers(
    kit: Any, https: Any, tmp_path: Path
) -> None:
    config = _synced(kit, https)
    settings = load_settings(config)
    out = tmp_path / "bundle"
    result = _bundle(config, out, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["sources"] == [{"source": "s", "repository": "acme", "version": 1, "artifacts": 1}]
    index = json.loads((out / "index.json").read_bytes())
    assert index["format"] == 1 and sorted(index["sources"]) == ["s"]
    assert f"vendor/{index['sources']['s']['artifacts'][0]}/{PKG}/__init__.py" in index["files"]
    assert doc["files"] == len(index["files"])

    from_cache = Resolver()
    assert asyncio.run(load_last_good(from_cache, settings.remote, settings.config_dir)) == {}
    _other_process(kit.repository)
    from_bundle = Resolver()
    assert load_bundle(from_bundle, settings.remote, out, settings.config_dir) == {}
    assert _registered(from_bundle) == _registered(from_cache)
    winner = from_bundle.resolve("adapter", "greeter")
    assert resolve_factory(winner)() == "from the bundle"
    assert sys.modules[PKG].__file__.startswith(str(out / "vendor"))


def test_load_writes_nothing_in_the_bundle_nor_the_state_dir(
    kit: Any, https: Any, tmp_path: Path, read_only: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _synced(kit, https)
    out = tmp_path / "bundle"
    assert _bundle(config, out).exit_code == 0
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(state))
    settings = load_settings(config)
    read_only(out)
    before = _files(out, kit.cache, state)
    resolver = Resolver()
    assert load_bundle(resolver, settings.remote, out, settings.config_dir) == {}
    assert resolve_factory(resolver.resolve("adapter", "greeter"))() == "from the bundle"
    assert _files(out, kit.cache, state) == before  # no lock, no temp file, no __pycache__


@pytest.mark.parametrize("what", ["envelope", "blob", "vendor", "planted-pyc"])
def test_tampered_bundle_skips_the_source_with_a_clear_error(
    kit: Any, https: Any, tmp_path: Path, what: str
) -> None:
    config = _synced(kit, https)
    out = tmp_path / "bundle"
    assert _bundle(config, out).exit_code == 0
    entry = json.loads((out / "index.json").read_bytes())["sources"]["s"]
    sha = entry["artifacts"][0]
    if what == "envelope":
        envelope = json.loads((out / entry["envelope"]).read_bytes())
        envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
        (out / entry["envelope"]).write_text(json.dumps(envelope))
    elif what == "blob":
        (out / "blobs" / sha).write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    elif what == "vendor":
        (out / "vendor" / sha / PKG / "__init__.py").write_text("def make():\n    return 'evil'\n")
    else:
        (out / "vendor" / sha / PKG / "__pycache__").mkdir()
        (out / "vendor" / sha / PKG / "__pycache__" / "evil.pyc").write_bytes(b"\x00")
    settings = load_settings(config)
    resolver = Resolver()
    failed = load_bundle(resolver, settings.remote, out, settings.config_dir)
    expected = SignatureError if what == "envelope" else ArtifactDigestError
    assert list(failed) == ["s"] and isinstance(failed["s"], expected)
    assert "\n" not in str(failed["s"])
    assert what == "envelope" or "build it again" in str(failed["s"])
    assert _registered(resolver) == []


def test_expired_bundled_envelope_is_refused(kit: Any, https: Any, tmp_path: Path) -> None:
    issued = _now() - timedelta(hours=1)
    config = _synced(kit, https, issued=issued, expires=issued + timedelta(hours=2))
    out = tmp_path / "bundle"
    assert _bundle(config, out).exit_code == 0
    settings = load_settings(config)
    resolver = Resolver()
    later = issued + timedelta(hours=3)
    failed = load_bundle(resolver, settings.remote, out, settings.config_dir, now=later)
    assert isinstance(failed["s"], ExpiredManifestError)
    assert _registered(resolver) == []


def test_trust_comes_from_the_settings_never_from_the_bundle(
    kit: Any, https: Any, tmp_path: Path
) -> None:
    """An index claiming other keys changes nothing: an envelope signed by them is refused,
    and settings trusting another key refuse the genuine envelope."""
    config = _synced(kit, https)
    out = tmp_path / "bundle"
    assert _bundle(config, out).exit_code == 0
    settings = load_settings(config)
    index_path = out / "index.json"
    index = json.loads(index_path.read_bytes())
    entry = index["sources"]["s"]
    entry["keyids"], entry["threshold"] = [kit.trusted[3].keyid], 1
    index_path.write_text(json.dumps(index))
    assert load_bundle(Resolver(), settings.remote, out, settings.config_dir) == {}

    genuine = json.loads((out / entry["envelope"]).read_bytes())
    import base64

    payload = json.loads(base64.b64decode(genuine["payload"]))
    (out / entry["envelope"]).write_bytes(kit.envelope(payload, keys=[3]))
    failed = load_bundle(Resolver(), settings.remote, out, settings.config_dir)
    assert isinstance(failed["s"], SignatureError)

    other = kit.trusted[1]
    remote_section = json.loads(json.dumps(settings.remote))
    remote_section["sources"]["s"]["trusted_keys"] = [other.as_dict()]
    (out / entry["envelope"]).write_text(json.dumps(genuine))
    failed = load_bundle(Resolver(), remote_section, out, settings.config_dir)
    assert isinstance(failed["s"], SignatureError)


def test_source_missing_from_the_bundle_is_skipped(
    kit: Any, https: Any, tmp_path: Path
) -> None:
    config = _synced(kit, https)
    out = tmp_path / "bundle"
    assert _bundle(config, out).exit_code == 0
    settings = load_settings(config)
    remote_section = json.loads(json.dumps(settings.remote))
    remote_section["sources"]["t"] = remote_section["sources"]["s"]
    resolver = Resolver()
    failed = load_bundle(resolver, remote_section, out, settings.config_dir)
    assert list(failed) == ["t"] and isinstance(failed["t"], StateError)
    assert "'t' is not in the bundle" in str(failed["t"])
    assert resolver.candidates("adapter", "greeter")


@pytest.mark.parametrize("damage", ["missing", "no-index", "garbled", "other-format", "file"])
def test_missing_or_garbled_bundle_is_a_config_error_naming_the_path(
    kit: Any, tmp_path: Path, damage: str
) -> None:
    out = tmp_path / "bundle"
    if damage != "missing":
        out.mkdir()
    if damage == "garbled":
        (out / "index.json").write_text("{not json")
    elif damage == "other-format":
        (out / "index.json").write_text('{"format": 99, "sources": {}, "files": {}}')
    elif damage == "file":
        out.rmdir()
        out.write_text("x")
    settings = load_settings(kit.settings("m.json"))
    with pytest.raises(ConfigError) as caught:
        load_bundle(Resolver(), settings.remote, out, settings.config_dir)
    assert str(out) in str(caught.value) and "\n" not in str(caught.value)


# ------------------------------------------------------------------------- CLI


def test_cli_refuses_bad_inputs_in_one_line_and_leaves_nothing(
    kit: Any, https: Any, tmp_path: Path
) -> None:
    never = kit.settings("never.json")
    out = tmp_path / "out" / "bundle"
    out.parent.mkdir()

    def check(result: Any, code: int, *words: str) -> None:
        assert result.exit_code == code, result.output
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
        assert all(w in result.stderr for w in words), result.stderr

    check(_bundle(never, out), 3, "'s' was never synced", "oneiric remote sync")
    check(_bundle(never, out, "--source", "nope"), 3, "no remote source 'nope'")
    check(_bundle(never, tmp_path / "no" / "such" / "dir"), 3, "does not exist")
    bad = kit.settings("x.json", "surprise = 1\n")
    check(_bundle(bad, out), 4, "unknown setting")
    assert _siblings(out) == []

    config = _synced(kit, https)
    out.write_text("precious")
    check(_bundle(config, out), 6, "not a directory")
    assert out.read_text() == "precious"
    out.unlink()
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    check(_bundle(config, out), 6, "not a bundle")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()

    (blob,) = (kit.cache / "blobs").iterdir()
    os.chmod(blob, 0o600)
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    check(_bundle(config, out), 4, "source 's'", "oneiric remote sync")
    assert _siblings(out) == ["bundle"] and list(out.iterdir()) == []
    blob.write_bytes(original)

    expired_at = _now() - timedelta(days=1)
    kit.cache = tmp_path / "cache-expired"
    expired = _synced(kit, https, issued=expired_at - timedelta(hours=1),
                            expires=expired_at + timedelta(hours=1), sync_now=expired_at)
    check(_bundle(expired, out), 4, "source 's'", "expired")
    assert _siblings(out) == ["bundle"] and list(out.iterdir()) == []


def test_cli_replaces_an_earlier_bundle_as_a_whole(
    kit: Any, https: Any, tmp_path: Path
) -> None:
    config = _synced(kit, https)
    out = tmp_path / "out" / "bundle"
    out.parent.mkdir()
    assert _bundle(config, out).exit_code == 0
    (out / "stray").write_text("from the old bundle")
    result = _bundle(config, out, "--source", "s")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"bundle written to {out} ({len(_index_files(out))} files)\n")
    assert not (out / "stray").exists()
    assert _siblings(out) == ["bundle"]


def _index_files(out: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads((out / "index.json").read_bytes())["files"]
    return files


# -------------------------------------------------------------------- settings


def test_configured_bundle_setting_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    assert configured_bundle({}, config, environ={}) is None
    assert configured_bundle({"bundle": "b"}, config, environ={}) == config / "b"
    assert configured_bundle({"bundle": "/abs/b"}, config, environ={}) == Path("/abs/b")
    env = {"ONEIRIC_REMOTE_BUNDLE": "/from/env"}
    assert configured_bundle({"bundle": "b"}, config, environ=env) == Path("/from/env")
    for value in ("https://x/b", "", 3):
        with pytest.raises(ConfigError, match=r"remote\.bundle"):
            configured_bundle({"bundle": value}, config, environ={})
    with pytest.raises(ConfigError, match="unknown setting"):
        configured_bundle({"bundel": "b"}, config, environ={})
