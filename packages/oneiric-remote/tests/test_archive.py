"""Cases 24, 25 and shadowing: archives are rejected, never sanitized."""

from __future__ import annotations

import hashlib
import stat
import struct
import zipfile
from typing import Any

import pytest

from oneiric.remote import Limits, ModuleShadowingError, RemoteSync, UnsafeArchiveError

pytestmark = pytest.mark.anyio


async def _sync_zip(kit, resolver, h, https, data: bytes, *, kind: str = "zip",
                    limits: Limits | None = None, factory: str = "json:loads",
                    extra: dict[str, Any] | None = None, version: int = 1):
    https.serve("/a.zip", data)
    artifacts = {"a": {"urls": [https.url("/a.zip")], "sha256": hashlib.sha256(data).hexdigest(),
                       "size": len(data), "kind": kind}}
    components = [{"domain": "adapter", "key": "cache", "provider": "z", "factory": factory,
                   "artifact": "a"}]
    if extra:
        artifacts.update(extra["artifacts"])
        components += extra["components"]
    url = https.serve("/m.json", kit.envelope(kit.payload(version, artifacts=artifacts,
                                                          components=components)))
    source = kit.source(url, verify=str(https.ca_path), limits=limits or Limits())
    return await RemoteSync(resolver, source, now=h.fixed_now).sync()


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.py")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _fifo() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("pipe")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return info


def _encrypted(h) -> bytes:
    data = bytearray(h.zip_bytes([("secret.py", b"x = 1\n")]))
    # set the "encrypted" flag bit in the local header and the central directory
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    for offset in (local + 6, central + 8):
        (flags,) = struct.unpack_from("<H", data, offset)
        struct.pack_into("<H", data, offset, flags | 0x1)
    return bytes(data)


UNSAFE = {
    "dotdot": lambda h: h.zip_bytes([("../../evil.py", b"x")]),
    "absolute": lambda h: h.zip_bytes([("/abs.py", b"x")]),
    "drive": lambda h: h.zip_bytes([("C:/x.py", b"x")]),
    "backslash": lambda h: h.zip_bytes([("C:\\x.py", b"x")]),
    "nul": lambda h: h.zip_bytes([("a#.py", b"x")]).replace(b"a#.py", b"a\x00.py"),
    "empty-segment": lambda h: h.zip_bytes([("pkg//x.py", b"x")]),
    "symlink": lambda h: h.zip_bytes([(_symlink(), b"/etc/passwd")]),
    "fifo": lambda h: h.zip_bytes([(_fifo(), b"")]),
    "encrypted": _encrypted,
    "duplicate-case": lambda h: h.zip_bytes([("Mod.py", b"x"), ("mod.py", b"y")]),
    "pth": lambda h: h.zip_bytes([("evil.pth", b"import os")]),
    "native": lambda h: h.zip_bytes([("fast.so", b"\x7fELF")]),
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
async def test_case24_unsafe_entries(kit, resolver, h, https, unchanged, name) -> None:
    with pytest.raises(UnsafeArchiveError):
        await _sync_zip(kit, resolver, h, https, UNSAFE[name](h))
    unchanged()
    assert not (kit.cache / "vendor").exists() or list((kit.cache / "vendor").iterdir()) == []


def _data_tree_wheel(kit, h):
    path = kit.tmp / "d.whl"
    h.make_wheel(path, {"pkgd/__init__.py": "", "pkgd-1.0.data/scripts/x": "#!/bin/sh"},
                 name="pkgd")
    return path.read_bytes()


async def test_case24_wheel_data_tree_and_impure_tag(kit, resolver, h, https, unchanged) -> None:
    with pytest.raises(UnsafeArchiveError, match="data"):
        await _sync_zip(kit, resolver, h, https, _data_tree_wheel(kit, h), kind="wheel")
    path = kit.tmp / "native.whl"
    h.make_wheel(path, {"pkgn/__init__.py": ""}, name="pkgn", tag="cp311-cp311-linux_x86_64")
    with pytest.raises(UnsafeArchiveError, match="pure"):
        await _sync_zip(kit, resolver, h, https, path.read_bytes(), kind="wheel", version=2)
    unchanged()


async def test_case25_ratio_bomb(kit, resolver, h, https, unchanged) -> None:
    bomb = h.zip_bytes([("bomb.py", b"\0" * (2 * 1024 * 1024))])
    with pytest.raises(UnsafeArchiveError, match="ratio"):
        await _sync_zip(kit, resolver, h, https, bomb)
    unchanged()


async def test_case25_total_size_and_entry_count(kit, resolver, h, https, unchanged) -> None:
    many = h.zip_bytes([(f"m{i}.py", bytes(range(256)) * 4) for i in range(20)])
    with pytest.raises(UnsafeArchiveError, match="entries"):
        await _sync_zip(kit, resolver, h, https, many, limits=Limits(archive_entries=10))
    with pytest.raises(UnsafeArchiveError, match="total"):
        await _sync_zip(kit, resolver, h, https, many, limits=Limits(archive_total_bytes=4096),
                        version=2)
    unchanged()


async def test_case25_forged_sizes_aborted_while_streaming(
    kit, resolver, h, https, unchanged
) -> None:
    data = bytearray(h.zip_bytes([("big.py", b"#" * 200_000)]))
    # declare 100 bytes in both headers: a streaming reader must stop, not trust it
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 100)
    struct.pack_into("<I", data, central + 24, 100)
    with pytest.raises(UnsafeArchiveError):
        await _sync_zip(kit, resolver, h, https, bytes(data))
    unchanged()
    assert not any((kit.cache / "vendor").glob("*/big.py"))


@pytest.mark.parametrize("top", ["json", "pytest"], ids=["stdlib", "installed"])
async def test_shadowing(kit, resolver, h, https, unchanged, top) -> None:
    data = h.zip_bytes([(f"{top}/__init__.py", b"")])
    with pytest.raises(ModuleShadowingError):
        await _sync_zip(kit, resolver, h, https, data)
    unchanged()


async def test_shadowing_between_artifacts(kit, resolver, h, https, unchanged) -> None:
    other = h.zip_bytes([("acme_dup/__init__.py", b"y = 2\n")])
    https.serve("/b.zip", other)
    extra = {
        "artifacts": {"b": {"urls": [https.url("/b.zip")],
                            "sha256": hashlib.sha256(other).hexdigest(), "size": len(other),
                            "kind": "zip"}},
        "components": [{"domain": "adapter", "key": "other", "provider": "z",
                        "factory": "acme_dup:y", "artifact": "b"}],
    }
    data = h.zip_bytes([("acme_dup/__init__.py", b"x = 1\n")])
    with pytest.raises(ModuleShadowingError, match="both ship"):
        await _sync_zip(kit, resolver, h, https, data, factory="acme_dup:x", extra=extra)
    unchanged()


async def test_zip_artifact_installs_read_only(kit, resolver, h, https) -> None:
    data = h.zip_bytes([("acme_zip/__init__.py", b"def make():\n    return 42\n")])
    result = await _sync_zip(kit, resolver, h, https, data, factory="acme_zip:make")
    assert result.registered == 1
    vendor = next((kit.cache / "vendor").iterdir())
    assert (vendor / "acme_zip" / "__init__.py").stat().st_mode & 0o222 == 0
    assert str(vendor) in __import__("sys").path
    from oneiric.core import resolve_factory

    assert resolve_factory(resolver.resolve("adapter", "cache"))() == 42
