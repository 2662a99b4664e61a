"""oneiric-actions installed from wheels with no extras, in a fresh venv (issue #12 acceptance).

core + lifecycle + actions (+ the CLI for the ``oneiric`` command): every kit
is listed; the standard-library providers work; a provider whose extra is
missing is listed, never wins, and fails in one line naming the extra when
selected, while the other actions keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path

import pytest

from oneiric.testing import fresh_venv, local_wheel

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

#: Everything an action needs beyond the standard library comes with an extra.
EXTRAS = ("zstandard", "brotli", "blake3", "msgpack", "yaml", "jsonschema", "argon2", "httpx")


@pytest.fixture(scope="module")
def oneiric_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("actions-venv")
    wheels = [local_wheel(ROOT / "packages" / name, tmp / "wheels") for name in
              ("oneiric-core", "oneiric-lifecycle", "oneiric-actions", "oneiric-cli")]
    python = fresh_venv(tmp / "venv", *wheels)
    return python.parent / "oneiric"


def _run(oneiric_bin: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env.pop("PYTHONPATH", None)
    env["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run([str(oneiric_bin), *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


def _invoke(oneiric_bin: Path, tmp_path: Path, key: str, payload: object) -> object:
    proc = _run(oneiric_bin, tmp_path, "action", "invoke", key, "--payload", json.dumps(payload))
    assert proc.returncode == 0, (key, proc.stderr)
    return json.loads(proc.stdout)


def test_every_kit_is_listed_and_stdlib_defaults_win(oneiric_bin: Path, tmp_path: Path) -> None:
    proc = _run(oneiric_bin, tmp_path, "action", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["key"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {
        "compression.encode", "compression.decode", "compression.hash",
        "serialization.encode", "serialization.decode", "data.transform", "data.sanitize",
        "validation.schema", "security.signature", "security.secure", "http.fetch",
        "debug.console", "workflow.notify", "workflow.audit",
    }
    assert "zstd" in rows["compression.encode"]["providers"]
    assert rows["compression.encode"]["winner"] == "gzip"
    assert rows["compression.hash"]["winner"] == "sha256"
    assert rows["security.secure"]["winner"] == "scrypt"
    assert rows["validation.schema"]["winner"] == "pydantic"
    # only an extra can make these work: listed, with no winner, and explain says why
    assert rows["http.fetch"]["winner"] is None
    explain = _run(oneiric_bin, tmp_path, "explain", "action", "compression.encode")
    assert 'pip install "oneiric-actions[zstd]"' in explain.stdout + explain.stderr


def test_stdlib_providers_work(oneiric_bin: Path, tmp_path: Path) -> None:
    encoded = _invoke(oneiric_bin, tmp_path, "compression.encode", {"data": "hello " * 50})
    assert isinstance(encoded, dict)
    decoded = _invoke(oneiric_bin, tmp_path, "compression.decode", encoded)
    assert isinstance(decoded, dict)
    data = decoded["data"]
    text = data if isinstance(data, str) else __import__("base64").b64decode(data["base64"])
    assert (text if isinstance(text, str) else text.decode()) == "hello " * 50
    digest = _invoke(oneiric_bin, tmp_path, "compression.hash", {"data": "abc"})
    assert digest == {"digest": hashlib.sha256(b"abc").hexdigest()}
    signed = _invoke(oneiric_bin, tmp_path, "security.signature",
                     {"op": "sign", "data": "abc", "key": "k"})
    assert signed == {"signature": hmac.new(b"k", b"abc", hashlib.sha256).hexdigest()}
    hashed = _invoke(oneiric_bin, tmp_path, "security.secure", {"op": "hash", "password": "pw"})
    assert isinstance(hashed, dict)
    assert _invoke(oneiric_bin, tmp_path, "security.secure",
                   {"op": "verify", "password": "pw", "hash": hashed["hash"]}) == {"valid": True}
    sanitized = _invoke(oneiric_bin, tmp_path, "data.sanitize",
                        {"data": {"note": "mail ada@example.com"}})
    assert "ada@example.com" not in json.dumps(sanitized)
    assert _invoke(oneiric_bin, tmp_path, "data.transform",
                   {"data": {"a": 1, "b": 2}, "spec": {"drop": ["b"]}}) == {"data": {"a": 1}}


def test_a_missing_extra_fails_in_one_line_and_the_rest_keeps_working(
    oneiric_bin: Path, tmp_path: Path
) -> None:
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "oneiric.toml").write_text(
        '[action.selections]\n"compression.encode" = "zstd"\n'
    )
    proc = _run(oneiric_bin, tmp_path, "action", "invoke", "compression.encode",
                "--payload", '{"data": "x"}')
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert 'pip install "oneiric-actions[zstd]"' in lines[0]
    assert _invoke(oneiric_bin, tmp_path, "compression.hash", {"data": ""}) == {
        "digest": hashlib.sha256(b"").hexdigest()
    }


def test_discovery_imports_no_kit_and_no_extra(oneiric_bin: Path, tmp_path: Path) -> None:
    python = oneiric_bin.parent / "python"
    script = (
        "import sys; from oneiric.core import Resolver, load_plugins; load_plugins(Resolver()); "
        "print(sorted(m for m in sys.modules if m.startswith('oneiric.actions._kits') "
        f"or m.split('.')[0] in {EXTRAS!r}))"
    )
    proc = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
