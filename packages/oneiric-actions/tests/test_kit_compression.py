"""``compression.encode|decode``: round trips, both output forms, real bombs, every bad input."""

from __future__ import annotations

import base64
import gzip
import lzma
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from oneiric.actions import ActionInputError, to_json
from oneiric.actions._kits import compression
from oneiric.actions._spec import ActionContext
from oneiric.core import ConfigError

pytestmark = pytest.mark.anyio

CODECS = ["gzip", "zlib", "lzma", "zstd", "brotli"]
_CLASS = {"gzip": "Gzip", "zlib": "Zlib", "lzma": "Lzma", "zstd": "Zstd", "brotli": "Brotli"}
DATA = b"the quick brown fox jumps over the lazy dog\n" * 2000 + bytes(range(256))
GIB = 1 << 30
MIB = 1 << 20


def ctx(key: str = "compression.decode") -> ActionContext:
    return ActionContext(key, "test", 1, float("inf"), "k")


def pair(codec: str, **settings: Any) -> tuple[Any, Any]:
    name = _CLASS[codec]
    model = getattr(compression, f"{name}Settings")(**settings)
    return (getattr(compression, f"{name}Encode")(model),
            getattr(compression, f"{name}Decode")(model))


def toml(codec: str, **settings: Any) -> str:
    lines = [
        "[action.selections]",
        f'"compression.encode" = "{codec}"',
        f'"compression.decode" = "{codec}"',
    ]
    for key in ("compression.encode", "compression.decode"):
        if settings:
            lines.append(f'[action.provider_settings."{key}".{codec}]')
            lines += [f"{k} = {v!r}".replace("'", '"') for k, v in settings.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ bombs

def _zeros_stream(feed: Callable[[bytes], bytes], finish: Callable[[], bytes]) -> bytes:
    """1 GiB of zeros compressed as one stream, fed 1 MiB at a time (never 1 GiB in memory)."""
    block = bytes(MIB)
    return b"".join([*(feed(block) for _ in range(GIB // MIB)), finish()])


def _deflate_bombs() -> tuple[bytes, bytes]:
    """(gzip, zlib) bombs sharing one raw deflate stream of 1 GiB of zeros, real trailers."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = _zeros_stream(raw.compress, raw.flush)
    crc = adler = None
    block = bytes(MIB)
    crc, adler = 0, 1
    for _ in range(GIB // MIB):
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    gz = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body
          + crc.to_bytes(4, "little") + (GIB % (1 << 32)).to_bytes(4, "little"))
    zl = b"\x78\xda" + body + adler.to_bytes(4, "big")
    return gz, zl


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    import brotli
    import zstandard

    gz, zl = _deflate_bombs()
    xz = lzma.LZMACompressor(lzma.FORMAT_XZ, preset=0)
    zs = zstandard.ZstdCompressor(level=3).compressobj()
    br = brotli.Compressor(quality=1)
    return {
        "gzip": gz,
        "zlib": zl,
        "lzma": _zeros_stream(xz.compress, xz.flush),
        "zstd": _zeros_stream(zs.compress, zs.flush),
        "brotli": _zeros_stream(br.process, br.finish),
    }


def test_the_deflate_bombs_are_real_streams() -> None:
    """The hand-wrapped deflate bombs are well-formed: a small one built the same way decodes."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = raw.compress(DATA) + raw.flush()
    gz = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body
          + zlib.crc32(DATA).to_bytes(4, "little") + len(DATA).to_bytes(4, "little"))
    assert gzip.decompress(gz) == DATA
    assert zlib.decompress(b"\x78\xda" + body + zlib.adler32(DATA).to_bytes(4, "big")) == DATA


@pytest.mark.parametrize("codec", CODECS)
async def test_attack_decompression_bomb_refused_by_default_limit(
    codec: str, bombs: dict[str, bytes], make_actions: Any
) -> None:
    """1 GiB of zeros (a few KiB..1 MiB compressed) stops at the default 64 MiB limit."""
    actions = await make_actions(toml(codec))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("compression.decode", {"data": bombs[codec]})
    assert info.value.path == "data"
    message = str(info.value)
    assert "\n" not in message
    assert f"more than {64 * MIB} bytes" in message
    assert f"max_output_bytes of provider {codec}" in message


@pytest.mark.parametrize("codec", CODECS)
def test_attack_decompression_bomb_memory_stays_near_the_limit(
    codec: str, bombs: dict[str, bytes]
) -> None:
    """With an 8 MiB limit the decoder allocates tens of MiB at most, never the bomb's 1 GiB."""
    _, decode = pair(codec, max_output_bytes=8 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(ActionInputError, match="more than 8388608 bytes"):
            decode.invoke({"data": bombs[codec]}, ctx())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 * MIB


@pytest.mark.parametrize("codec", CODECS)
def test_output_of_exactly_max_output_bytes_is_allowed_one_more_is_refused(codec: str) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    encode, decode = pair(codec, max_output_bytes=len(data))
    packed = encode.invoke({"data": data}, ctx("compression.encode"))["data"]
    assert decode.invoke({"data": packed}, ctx())["data"] == data
    _, tight = pair(codec, max_output_bytes=len(data) - 1)
    with pytest.raises(ActionInputError, match=f"more than {len(data) - 1} bytes"):
        tight.invoke({"data": packed}, ctx())


# ------------------------------------------------------------------ round trips

@pytest.mark.parametrize("codec", CODECS)
async def test_round_trip_through_actions_invoke_bytes_and_base64(
    codec: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(codec))
    packed = (await actions.invoke("compression.encode", {"data": DATA})).value["data"]
    assert isinstance(packed, bytes) and len(packed) < len(DATA)
    result = await actions.invoke("compression.decode", {"data": packed})
    assert result.provider == codec and result.value == {"data": DATA}

    text = (await actions.invoke("compression.encode",
                                 {"data": DATA, "encoding": "base64"})).value["data"]
    assert isinstance(text, str) and base64.b64decode(text) == packed
    # decode accepts encode's base64 text as it is, and {"base64": ...} as the CLI sends it
    assert (await actions.invoke("compression.decode", {"data": text})).value["data"] == DATA
    as_json = to_json({"data": packed})
    assert (await actions.invoke("compression.decode", as_json)).value["data"] == DATA
    decoded = await actions.invoke("compression.decode", {"data": packed, "encoding": "base64"})
    assert base64.b64decode(decoded.value["data"]) == DATA


@pytest.mark.parametrize("codec", CODECS)
def test_encode_takes_text_as_utf8_and_empty_data(codec: str) -> None:
    encode, decode = pair(codec)
    packed = encode.invoke({"data": "héllo"}, ctx("compression.encode"))["data"]
    assert decode.invoke({"data": packed}, ctx())["data"] == "héllo".encode()
    empty = encode.invoke({"data": b""}, ctx("compression.encode"))["data"]
    assert decode.invoke({"data": empty}, ctx())["data"] == b""


@pytest.mark.parametrize("codec", CODECS)
def test_encode_is_deterministic(codec: str) -> None:
    encode, _ = pair(codec)
    first = encode.invoke({"data": DATA}, ctx("compression.encode"))
    assert encode.invoke({"data": DATA}, ctx("compression.encode")) == first


def test_stdlib_decoders_read_what_the_providers_write() -> None:
    """The formats are the standard ones: gzip, zlib and xz tools can read them."""
    assert gzip.decompress(pair("gzip")[0].invoke({"data": DATA}, ctx())["data"]) == DATA
    assert zlib.decompress(pair("zlib")[0].invoke({"data": DATA}, ctx())["data"]) == DATA
    packed = pair("lzma")[0].invoke({"data": DATA}, ctx())["data"]
    assert packed.startswith(b"\xfd7zXZ") and lzma.decompress(packed) == DATA


@pytest.mark.parametrize("codec", ["gzip", "lzma", "zstd"])
def test_concatenated_members_decode_in_turn(codec: str) -> None:
    encode, decode = pair(codec)
    one = encode.invoke({"data": b"abc"}, ctx())["data"]
    two = encode.invoke({"data": b"def"}, ctx())["data"]
    assert decode.invoke({"data": one + two}, ctx())["data"] == b"abcdef"


def test_concatenated_members_share_one_output_budget() -> None:
    encode, _ = pair("gzip")
    member = encode.invoke({"data": bytes(MIB)}, ctx())["data"]
    _, decode = pair("gzip", max_output_bytes=3 * MIB)
    assert len(decode.invoke({"data": member * 3}, ctx())["data"]) == 3 * MIB
    with pytest.raises(ActionInputError, match="more than"):
        decode.invoke({"data": member * 4}, ctx())


def test_gzip_zero_padding_after_the_member_is_ignored() -> None:
    encode, decode = pair("gzip")
    packed = encode.invoke({"data": b"abc"}, ctx())["data"]
    assert decode.invoke({"data": packed + bytes(16)}, ctx())["data"] == b"abc"


@pytest.mark.parametrize("codec", CODECS)
async def test_settings_level_is_applied(codec: str, make_actions: Any) -> None:
    field = {"lzma": "preset", "brotli": "quality"}.get(codec, "level")
    low, high = {"zstd": (1, 19), "brotli": (0, 11)}.get(codec, (0, 9))
    text = " ".join(str(i * i % 9973) for i in range(40000)).encode()
    sizes = []
    for level in (low, high):
        actions = await make_actions(toml(codec, **{field: level}))
        sizes.append(len((await actions.invoke("compression.encode",
                                               {"data": text})).value["data"]))
    assert sizes[1] < sizes[0]


# ------------------------------------------------------------------ bad settings

BAD_SETTINGS = [
    ("gzip", {"level": 10}), ("gzip", {"level": -1}), ("zlib", {"level": 12}),
    ("lzma", {"preset": 10}), ("lzma", {"max_memory_bytes": 1}), ("zstd", {"level": 23}),
    ("brotli", {"quality": 12}), ("brotli", {"lgwin": 9}), ("gzip", {"max_output_bytes": 0}),
    ("zstd", {"max_output_bytes": -5}), ("gzip", {"compresslevel": 5}),
]


@pytest.mark.parametrize(("codec", "settings"), BAD_SETTINGS)
async def test_attack_out_of_range_setting_refused_in_one_line(
    codec: str, settings: dict[str, Any], make_actions: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        await make_actions(toml(codec, **settings))
    message = str(info.value)
    assert "\n" not in message and next(iter(settings)) in message


# ------------------------------------------------------------------ bad input

def _garbage(codec: str) -> dict[str, bytes]:
    encode, _ = pair(codec)
    good = encode.invoke({"data": DATA}, ctx())["data"]
    return {
        "garbage": b"this is not compressed at all",
        "truncated": good[: len(good) // 2],
        "trailing": good + b"\x01\x02junk",
        "empty": b"",
        "flipped": good[:20] + bytes(b ^ 0xFF for b in good[20:40]) + good[40:],
    }


INVALID = [(codec, kind) for codec in CODECS
           for kind in ("garbage", "truncated", "trailing", "empty", "flipped")
           if (codec, kind) != ("brotli", "flipped")]  # brotli has no checksum to catch it


@pytest.mark.parametrize(("codec", "kind"), INVALID)
async def test_attack_invalid_compressed_data_is_an_input_error_naming_the_codec(
    codec: str, kind: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(codec))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("compression.decode", {"data": _garbage(codec)[kind]})
    assert info.value.path == "data"
    message = str(info.value)
    assert "\n" not in message
    assert f"not valid {codec}" in message
    assert f"provider {codec}" in message


BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("compression.encode", b"raw bytes", "<payload>"),
    ("compression.encode", {}, "data"),
    ("compression.encode", {"data": 5}, "data"),
    ("compression.encode", {"data": ["a"]}, "data"),
    ("compression.encode", {"data": {"base64": "!!!"}}, "data.base64"),
    ("compression.encode", {"data": b"x", "level": 9}, "level"),
    ("compression.encode", {"data": b"x", "encoding": "hex"}, "encoding"),
    ("compression.encode", {"data": b"x", "encoding": 64}, "encoding"),
    ("compression.decode", {"data": "not base64 at all!"}, "data"),
    ("compression.decode", {"data": "é"}, "data"),
    ("compression.decode", {"data": None}, "data"),
    ("compression.decode", {"data": b"x", "encoding": "utf-8"}, "encoding"),
    ("compression.decode", [b"x"], "<payload>"),
]


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
@pytest.mark.parametrize(("key", "payload", "path"), BAD_PAYLOADS)
async def test_attack_malformed_payload_is_an_input_error_with_its_path(
    codec: str, key: str, payload: Any, path: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(codec))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(key, payload)
    assert info.value.path == path
    assert "\n" not in str(info.value)


def test_encoding_null_means_bytes() -> None:
    encode, _ = pair("zlib")
    assert isinstance(encode.invoke({"data": b"x", "encoding": None}, ctx())["data"], bytes)


def test_specs_declare_pure_blocking_transforms() -> None:
    for codec in CODECS:
        for cls in ("Encode", "Decode"):
            spec = getattr(compression, f"{_CLASS[codec]}{cls}").spec
            assert spec.idempotent and not spec.side_effects and spec.blocking


# ------------------------------------------------------------------ lazy imports

def test_importing_the_module_imports_no_third_party_codec() -> None:
    code = (
        "import sys; import oneiric.actions._kits.compression; "
        "print(sorted(m for m in ('zstandard', 'brotli') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("codec", "module"), [("zstd", "zstandard"), ("brotli", "brotli")])
def test_missing_extra_fails_in_one_line_naming_it(codec: str, module: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from oneiric.actions._kits import compression as c\n"
        f"cls = getattr(c, {_CLASS[codec] + 'Decode'!r})\n"
        f"try:\n    cls(getattr(c, {_CLASS[codec] + 'Settings'!r})())\n"
        "except Exception as exc:\n    print(type(exc).__name__, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("ConfigError |")
    assert f'oneiric-actions[{codec}]' in out and "\n" not in out
