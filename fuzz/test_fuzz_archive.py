"""Fuzz the archive checks: ``inspect``, ``extract`` and ``matches_blob`` on hostile zips.

An artifact whose sha256 matched the signed manifest is authentic, not harmless,
so these functions see publisher-controlled bytes.  Property for every archive:

- ``inspect`` and ``extract`` either succeed or raise an ``UnsafeArchiveError``
  (a ``RemoteError``) with a one-line message;
- nothing is ever written outside the destination directory, and no symlink
  or special file appears inside it;
- after a successful ``extract``, ``matches_blob`` says the tree matches (it is
  the start-up integrity check: a false "modified" re-extracts on every start).

Archives are built with ``zipfile`` from generated entries: hostile names
(``..``, absolute, drive letters, backslashes, NUL, duplicates, case
collisions, file/directory clashes), symlink and device ``external_attr``,
``.pyc``/``.pth``/``.so``, ``*.dist-info``/``*.egg-info``/``*.data`` trees, wheels
with generated ``WHEEL``/``METADATA``, compression bombs and headers that lie
about sizes, then sometimes corrupted byte by byte or truncated.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import example
from hypothesis import strategies as st

from oneiric.remote import Limits, RemoteError
from oneiric.remote._archive import extract, inspect, matches_blob

SMALL = Limits(
    archive_entries=64, archive_file_bytes=256 * 1024, archive_total_bytes=1024 * 1024,
    compression_ratio=100,
)
NUL = "\x7f"  # written as this byte, then patched to NUL (zipfile truncates names at NUL)


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc), f"{type(exc).__name__} message is not one line: {exc!s}"


def check_archive(blob_bytes: bytes, kind: str, small: bool) -> None:
    limits = SMALL if small else Limits()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blob = root / "blob"
        blob.write_bytes(blob_bytes)
        dest = root / "vendor" / "dest"
        dest.mkdir(parents=True)
        try:
            info = inspect(blob, kind, limits)
        except RemoteError as exc:
            _one_line(exc)
            return
        try:
            extract(blob, dest, info, limits)
        except RemoteError as exc:
            _one_line(exc)
            extracted = False
        else:
            extracted = True
        outside = sorted(
            str(p.relative_to(root)) for p in root.rglob("*")
            if p != blob and p != dest.parent and dest not in (p, *p.parents)
        )
        assert not outside, f"written outside the destination: {outside}"
        for path in dest.rglob("*"):
            mode = os.lstat(path).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{path} is not a file or dir"
        if extracted:
            assert matches_blob(blob, dest, info, limits), "freshly extracted tree does not match"


# ------------------------------------------------------------------ building zips

_segments = st.sampled_from(
    ["pkg", "Pkg", "mod.py", "MOD.py", "__init__.py", "..", ".", "", "a.pth", "m.pyc",
     "__pycache__", "x.so", "x.pyd", "demo-1.0.dist-info", "Demo-1.0.DIST-INFO", "demo.egg-info",
     "EGG-INFO", "demo-1.0.data", "sitecustomize.py", "usercustomize", "C:", "c:x",
     "a\\b.py", f"a{NUL}.py", "é.py", "a" * 200, "WHEEL", "METADATA", "entry_points.txt"]
) | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
names = st.one_of(
    st.lists(_segments, min_size=1, max_size=4).map("/".join),
    st.lists(_segments, min_size=1, max_size=3).map(lambda p: "/".join(p) + "/"),
    st.sampled_from(["/abs.py", "//x", "../../evil.py", "C:/x.py", "pkg//x.py", "./x.py"]),
)
_contents = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"x = 1\n", b"import os\n", b""]),
    st.integers(1, 2 * 1024 * 1024).map(lambda n: b"\0" * n),  # compresses ~1000:1
)
_modes = st.sampled_from([
    0, stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777, stat.S_IFIFO | 0o644,
    stat.S_IFCHR | 0o644, stat.S_IFBLK | 0o644, stat.S_IFSOCK | 0o644, stat.S_IFREG | 0o4755,
])
entries = st.tuples(names, _contents, _modes,
                    st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))


def _wheel_files(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    dist = draw(st.sampled_from(["demo-1.0.dist-info", "Demo-1.0.dist-info", "x.dist-info"]))
    tags = draw(st.lists(st.sampled_from(
        ["py3-none-any", "py2.py3-none-any", "py2-none-any", "cp311-cp311-linux_x86_64",
         "py3-none-any\nTag: cp311-abi3-any", ""]), min_size=0, max_size=2))
    purelib = draw(st.sampled_from(["true", "True", "false", "", " true "]))
    wheel = "Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags)
    if purelib:
        wheel += f"Root-Is-Purelib: {purelib}\n"
    requires = draw(st.lists(st.sampled_from(
        ["httpx>=0.27", "", "a; extra == 'x'", "=?utf-8?q?x?=", "b\n c"]), max_size=2))
    metadata = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = [("demo/__init__.py", b"x = 1\n")]
    for member, text in (("WHEEL", wheel), ("METADATA", metadata), ("RECORD", "")):
        if draw(st.integers(0, 9)):  # sometimes missing
            files.append((f"{dist}/{member}", text.encode()))
    if draw(st.booleans()):
        files.append((f"{dist}/entry_points.txt", b"[oneiric]\nevil = evil\n"))
    return files


def build_zip(files: list[tuple[Any, bytes, int, int]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": duplicates are the point
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, data, mode, method in files:
                info = zipfile.ZipInfo(name)
                info.compress_type = method
                info.external_attr = mode << 16
                zf.writestr(info, data)
    data = buffer.getvalue()
    for name, *_ in files:
        if NUL in name:
            data = data.replace(name.encode(), name.replace(NUL, "\x00").encode())
    return data


def _lie(data: bytes, field: str, value: int) -> bytes:
    """Rewrite the first central directory header's size field (what inspect trusts)."""
    at = data.find(b"PK\x01\x02")
    if at < 0:
        return data
    offset = {"compressed": 20, "uncompressed": 24, "flags": 8, "method": 10}[field]
    fmt = "<H" if field in ("flags", "method") else "<I"
    limit = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    patched = bytearray(data)
    struct.pack_into(fmt, patched, at + offset, value & limit)
    return bytes(patched)


@st.composite
def archives(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    kind = draw(st.sampled_from(["wheel", "zip"]))
    files: list[tuple[Any, bytes, int, int]] = []
    if kind == "wheel" or draw(st.integers(0, 3)) == 0:
        files += [(n, d, stat.S_IFREG | 0o644, zipfile.ZIP_DEFLATED) for n, d in
                  _wheel_files(draw)]
    files += draw(st.lists(entries, max_size=6))
    if draw(st.integers(0, 3)) == 0:  # an exact duplicate or case twin of an earlier name
        name, *rest = draw(st.sampled_from(files)) if files else ("a.py", b"", 0, 0)
        twin = name if draw(st.booleans()) else name.swapcase()
        files.append((twin, *rest))  # type: ignore[arg-type]
    data = build_zip(draw(st.permutations(files)))
    how = draw(st.sampled_from(["none", "none", "lie", "flip", "truncate"]))
    if how == "lie":
        field = draw(st.sampled_from(["compressed", "uncompressed", "flags", "method"]))
        data = _lie(data, field, draw(st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 99])))
    elif how == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    return data, kind, draw(st.booleans())


def _sample(files: list[tuple[str, bytes]], kind: str = "zip") -> tuple[bytes, str, bool]:
    return build_zip([(n, d, 0, zipfile.ZIP_DEFLATED) for n, d in files]), kind, True


# ------------------------------------------------------------------ properties


@example(_sample([("pkg/__init__.py", b"x = 1\n")]))
@example(_sample([("pkg", b"x"), ("pkg/m.py", b"x")]))  # file/directory clash
@example(_sample([("pkg/m.py", b"x"), ("PKG", b"x")]))  # clash through case folding
@example(_sample([("pkg/m.pyc", b"x")]))
@example(_sample([("pkg/x.pth", b"import os")]))
@example(_sample([("demo.egg-info/entry_points.txt", b"[oneiric]\nx = y\n")]))
@example(_sample([(f"a{NUL}.py", b"x")]))
@example((b"PK\x05\x06" + b"\0" * 18, "zip", True))
@example(_sample([("", b"")]))  # finding: an empty entry name (IndexError in ZipInfo.is_dir)
def prop_archive(case: tuple[bytes, str, bool]) -> None:
    check_archive(*case)


def test_fuzz_archive(fuzz: Any) -> None:
    fuzz(prop_archive, archives())


@example(b"")
@example(b"PK\x03\x04")
def prop_random_bytes(data: bytes) -> None:
    check_archive(data, "zip", True)
    check_archive(data, "wheel", True)


def test_fuzz_archive_random_bytes(fuzz: Any) -> None:
    fuzz(prop_random_bytes, st.binary(max_size=512))
