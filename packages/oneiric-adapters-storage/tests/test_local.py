"""What only the local provider promises: no escapes, atomic writes, hidden temp files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from oneiric.adapters.storage import InvalidPathError, validate_path, validate_prefix
from oneiric.adapters.storage._local import TEMP_PREFIX, LocalStorage
from oneiric.adapters.storage._settings import LocalSettings, S3Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def local(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(LocalSettings(root=tmp_path / "root"))
    await storage.init()
    return storage


async def test_symlink_escape_refused(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"top secret")
    os.symlink(outside, local.root / "link")
    for call in (local.get("link/secret"), local.put("link/new", b"x"), local.head("link/secret")):
        with pytest.raises(InvalidPathError):
            await call
    assert not (outside / "new").exists()
    assert [i.path async for i in local.list()] == []  # symlinks are not objects


async def test_file_symlink_refused(local: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"t")
    os.symlink(tmp_path / "target", local.root / "alias")
    with pytest.raises(InvalidPathError):
        await local.get("alias")


async def test_temp_files_are_hidden_and_cleaned(local: LocalStorage) -> None:
    await local.put("a/b", b"data")
    (local.root / "a" / f"{TEMP_PREFIX}crashed").write_bytes(b"partial")
    assert [i.path async for i in local.list()] == ["a/b"]
    names = os.listdir(local.root / "a")
    assert sorted(names) == sorted(["b", f"{TEMP_PREFIX}crashed"])


async def test_delete_prunes_empty_directories(local: LocalStorage) -> None:
    await local.put("x/y/z", b"1")
    await local.delete("x/y/z")
    assert os.listdir(local.root) == []


def test_validator_accepts_and_normalizes() -> None:
    assert validate_path("a/b.txt") == "a/b.txt"
    assert validate_prefix("") == ""
    assert validate_prefix("a") == validate_prefix("a/") == "a/"
    with pytest.raises(InvalidPathError):
        validate_path("x" * 1025)


def test_settings_refuse_unknown_fields_and_bad_prefix() -> None:
    with pytest.raises(ValidationError):
        LocalSettings(root="/tmp/x", rooot="/tmp/y")
    with pytest.raises(ValidationError):
        S3Settings(bucket="b", prefix="../up")
    assert S3Settings(bucket="b", prefix="p/").prefix == "p"
    assert "hunter2" not in repr(S3Settings(bucket="b", secret_access_key="hunter2"))


def test_plugin_registers_five_providers_without_importing_clients() -> None:
    code = (
        "import sys\n"
        "from oneiric.core import Resolver, load_plugins\n"
        "r = Resolver(); report = load_plugins(r)\n"
        "assert not report.errors, report.errors\n"
        "cands = r.candidates('adapter', 'storage')\n"
        "print(sorted(c.provider for c in cands))\n"
        "assert all(isinstance(c.factory, str) for c in cands)\n"
        "assert all({'range', 'stream', 'list', 'create-only'} <= c.capabilities for c in cands)\n"
        "loaded = [m for m in ('obstore', 'aiohttp', 'gcloud') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["['azure', 'gcs', 'local', 'memory', 's3']", "[]"]
