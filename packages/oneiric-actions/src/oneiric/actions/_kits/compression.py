"""``compression.encode`` / ``compression.decode``: gzip, zlib, lzma (stdlib); zstd, brotli.

Payload ``{"data", "encoding"?: "base64"}`` -> ``{"data"}`` in both directions.
``encoding`` names the form of the *output*: absent (or ``null``), ``data`` is
bytes (the CLI shows them as ``{"base64": ...}``); ``"base64"``, it is base64
text, for callers that must carry it in a JSON string.  Input ``data`` is
bytes or ``{"base64": ...}`` in both directions; a plain string is UTF-8 text
for ``encode`` but base64 for ``decode`` (compressed data is never text), so
``decode`` accepts what ``encode`` returned in either form.

Decompression is bounded: output beyond the provider setting
``max_output_bytes`` (64 MiB by default) is refused with ``ActionInputError``
while the decompressor has produced at most a chunk more, so a decompression
bomb cannot exhaust memory.  Every codec is driven incrementally for that
reason (``max_length``, brotli's ``output_buffer_limit``, zstd fed in slices
small enough that its maximum expansion cannot overshoot far).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import lzma
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from oneiric.core.helpers import one_line

from .._errors import ActionInputError
from .._json import binary
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take

__all__ = [
    "BrotliDecode",
    "BrotliEncode",
    "BrotliSettings",
    "GzipDecode",
    "GzipEncode",
    "GzipSettings",
    "LzmaDecode",
    "LzmaEncode",
    "LzmaSettings",
    "ZlibDecode",
    "ZlibEncode",
    "ZlibSettings",
    "ZstdDecode",
    "ZstdEncode",
    "ZstdSettings",
]

_MIB = 1 << 20
_FIELDS = frozenset({"data", "encoding"})

#: Largest expansion one zstd input byte can cause (a 4-byte RLE block yields 128 KiB):
#: zstd is fed slices of ``remaining budget / this`` bytes, so one slice cannot overshoot
#: the budget by more than a few MiB.
_ZSTD_MAX_RATIO = 1 << 15
_ZSTD_MIN_SLICE = 64
_ZSTD_MAX_SLICE = 1 << 20


def _max_output() -> Any:
    return Field(
        64 * _MIB, ge=1, le=1 << 34,
        description="decompressed bytes above this are refused (decompression-bomb guard)",
    )


class GzipSettings(BaseModel):
    """``[action.provider_settings."compression.encode".gzip]`` (and ``.decode``)."""

    model_config = ConfigDict(extra="forbid")
    level: int = Field(6, ge=0, le=9, description="0 (store) .. 9 (smallest)")
    max_output_bytes: int = _max_output()


class ZlibSettings(BaseModel):
    """``[action.provider_settings."compression.encode".zlib]`` (and ``.decode``)."""

    model_config = ConfigDict(extra="forbid")
    level: int = Field(6, ge=0, le=9, description="0 (store) .. 9 (smallest)")
    max_output_bytes: int = _max_output()


class LzmaSettings(BaseModel):
    """``[action.provider_settings."compression.encode".lzma]`` (and ``.decode``).

    ``max_memory_bytes`` is the decoder's memory limit: an xz header may ask
    for a dictionary of up to 1.5 GiB, so it is refused above this.
    """

    model_config = ConfigDict(extra="forbid")
    preset: int = Field(6, ge=0, le=9, description="0 (fastest) .. 9 (smallest)")
    extreme: bool = False
    max_output_bytes: int = _max_output()
    max_memory_bytes: int = Field(256 * _MIB, ge=_MIB, le=1 << 32)


class ZstdSettings(BaseModel):
    """``[action.provider_settings."compression.encode".zstd]`` (and ``.decode``)."""

    model_config = ConfigDict(extra="forbid")
    level: int = Field(3, ge=-(1 << 17), le=22, description="negative: faster; 22: smallest")
    max_output_bytes: int = _max_output()


class BrotliSettings(BaseModel):
    """``[action.provider_settings."compression.encode".brotli]`` (and ``.decode``).

    ``quality`` defaults to 6, not brotli's 11: 11 is tens of times slower for
    a few percent, a poor default for an action called on request paths.
    """

    model_config = ConfigDict(extra="forbid")
    quality: int = Field(6, ge=0, le=11)
    lgwin: int = Field(22, ge=10, le=24, description="log2 of the window size")
    max_output_bytes: int = _max_output()


# ----------------------------------------------------------------- payload


def _encoding(payload: Any, key: str) -> bool:
    """True when the output should be base64 text (``"encoding": "base64"``)."""
    encoding = take(payload, key, "encoding", (str, type(None)), default=None)
    if encoding is not None and encoding != "base64":
        raise ActionInputError(
            f"action {key!r}: payload field encoding must be \"base64\" (or absent for bytes), "
            f"got {one_line(repr(encoding))[:40]}",
            path="encoding",
        )
    return encoding is not None


def _compressed_input(value: Any, key: str) -> bytes:
    """``decode``'s data: bytes, ``{"base64": ...}``, or a string read as base64."""
    if not isinstance(value, str):
        return binary(value, "data")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ActionInputError(
            f"action {key!r}: payload field data is a string but not base64; compressed data "
            "is binary: send bytes, {\"base64\": \"...\"} or the base64 text encode returned",
            path="data",
        ) from None


def _output(data: bytes, as_base64: bool) -> dict[str, Any]:
    return {"data": base64.b64encode(data).decode("ascii") if as_base64 else data}


class _Bomb(Exception):
    """Raised inside a decoder loop when output passes the budget."""


# ----------------------------------------------------------------- bases


class _Encode:
    """``compression.encode`` through one codec: ``_compress`` does the work."""

    key: ClassVar[str] = "compression.encode"
    codec: ClassVar[str] = ""
    spec = ActionSpec(
        description="compress data", idempotent=True, side_effects=False, blocking=True
    )

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, self.key, _FIELDS)
        as_base64 = _encoding(fields, self.key)
        data = binary(take(fields, self.key, "data", object), "data")
        return _output(self._compress(data), as_base64)

    def _compress(self, data: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError


class _Decode:
    """``compression.decode`` through one codec: ``_decompress(data, limit)`` does the work.

    ``_decompress`` raises ``_Bomb`` past ``limit`` bytes and the codec's own
    error (one of ``errors``) for bad input; both become ``ActionInputError``.
    """

    key: ClassVar[str] = "compression.decode"
    codec: ClassVar[str] = ""
    spec = ActionSpec(
        description="decompress data (bounded by max_output_bytes)",
        idempotent=True, side_effects=False, blocking=True,
    )

    def __init__(self, max_output_bytes: int, errors: tuple[type[BaseException], ...]) -> None:
        self.max_output_bytes = max_output_bytes
        self.errors: tuple[type[BaseException], ...] = (*errors, _Truncated, _Trailing)

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, self.key, _FIELDS)
        as_base64 = _encoding(fields, self.key)
        data = _compressed_input(take(fields, self.key, "data", object), self.key)
        try:
            out = self._decompress(data, self.max_output_bytes)
        except _Bomb:
            raise ActionInputError(
                f"action {self.key!r}: data decompresses to more than {self.max_output_bytes} "
                f"bytes (max_output_bytes of provider {self.codec}); raise max_output_bytes "
                f'under [action.provider_settings."{self.key}".{self.codec}] if the input is '
                "trusted",
                path="data",
            ) from None
        except self.errors as exc:
            raise ActionInputError(
                f"action {self.key!r}: data is not valid {self.codec}: {one_line(exc)}; "
                f"send data produced by compression.encode with provider {self.codec}",
                path="data",
            ) from None
        return _output(out, as_base64)

    def _decompress(self, data: bytes, limit: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError


class _Truncated(Exception):
    """The input ended before the end of its stream."""

    def __init__(self) -> None:
        super().__init__("the input ends before the end of the compressed stream (truncated)")


class _Trailing(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} unexpected bytes after the end of the compressed stream")


def _members(
    data: bytes,
    limit: int,
    make: Callable[[], Any],
    *,
    multi: bool,
    skip_zeros: bool = False,
) -> bytes:
    """Decompress ``data`` with ``make()``-made stdlib decompressors, at most ``limit`` bytes.

    zlib and lzma objects take ``max_length``, so one call returns at most
    ``limit + 1`` bytes.  ``multi``: concatenated members/streams (gzip, xz)
    are decoded in turn, as the ``gzip``/``lzma`` modules do.
    """
    out: list[bytes] = []
    total = 0
    rest = data
    while True:
        decoder = make()
        chunk = decoder.decompress(rest, limit - total + 1)
        total += len(chunk)
        if total > limit:
            raise _Bomb
        out.append(chunk)
        if not decoder.eof:
            raise _Truncated
        rest = decoder.unused_data
        if skip_zeros:
            rest = rest.lstrip(b"\x00")  # gzip files may be zero-padded (as gzip.decompress)
        if not rest:
            return b"".join(out)
        if not multi:
            raise _Trailing(len(rest))


# ----------------------------------------------------------------- gzip


class GzipEncode(_Encode):
    codec = "gzip"

    def __init__(self, settings: GzipSettings) -> None:
        self.level = settings.level

    def _compress(self, data: bytes) -> bytes:
        # mtime=0: the same input gives the same bytes (the action is idempotent)
        return gzip.compress(data, compresslevel=self.level, mtime=0)


class GzipDecode(_Decode):
    codec = "gzip"
    def __init__(self, settings: GzipSettings) -> None:
        super().__init__(settings.max_output_bytes, (zlib.error,))

    def _decompress(self, data: bytes, limit: int) -> bytes:
        if not data.startswith(b"\x1f\x8b"):
            raise zlib.error("no gzip header (the data does not start with 1f 8b)")
        return _members(data, limit, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
                        multi=True, skip_zeros=True)


# ----------------------------------------------------------------- zlib


class ZlibEncode(_Encode):
    codec = "zlib"

    def __init__(self, settings: ZlibSettings) -> None:
        self.level = settings.level

    def _compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)


class ZlibDecode(_Decode):
    codec = "zlib"
    def __init__(self, settings: ZlibSettings) -> None:
        super().__init__(settings.max_output_bytes, (zlib.error,))

    def _decompress(self, data: bytes, limit: int) -> bytes:
        return _members(data, limit, zlib.decompressobj, multi=False)


# ----------------------------------------------------------------- lzma


class LzmaEncode(_Encode):
    codec = "lzma"

    def __init__(self, settings: LzmaSettings) -> None:
        self.preset = settings.preset | (lzma.PRESET_EXTREME if settings.extreme else 0)

    def _compress(self, data: bytes) -> bytes:
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=self.preset)


class LzmaDecode(_Decode):
    codec = "lzma"
    def __init__(self, settings: LzmaSettings) -> None:
        super().__init__(settings.max_output_bytes, (lzma.LZMAError,))
        self.memlimit = settings.max_memory_bytes

    def _decompress(self, data: bytes, limit: int) -> bytes:
        memlimit = self.memlimit
        return _members(
            data, limit,
            lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO, memlimit=memlimit),
            multi=True,
        )


# ----------------------------------------------------------------- zstd


class ZstdEncode(_Encode):
    codec = "zstd"

    def __init__(self, settings: ZstdSettings) -> None:
        zstandard = require("zstandard", provider="zstd", extra="zstd")
        # one compressor per call: a ZstdCompressor is not safe across threads.  The frame
        # carries a checksum, so corrupted data is an error, not silently wrong output.
        level = settings.level
        self._make: Callable[[], Any] = lambda: zstandard.ZstdCompressor(
            level=level, write_checksum=True
        )

    def _compress(self, data: bytes) -> bytes:
        return bytes(self._make().compress(data))


class ZstdDecode(_Decode):
    codec = "zstd"

    def __init__(self, settings: ZstdSettings) -> None:
        self._zstd = zstandard = require("zstandard", provider="zstd", extra="zstd")
        super().__init__(settings.max_output_bytes, (zstandard.ZstdError,))

    def _decompress(self, data: bytes, limit: int) -> bytes:
        # zstandard's decompressobj has no max_length: feed it slices small enough that
        # even the codec's maximum expansion cannot overshoot the budget by much.
        out: list[bytes] = []
        total = 0
        view = memoryview(data)
        pos = 0
        decoder = self._zstd.ZstdDecompressor().decompressobj()
        while True:
            size = max(_ZSTD_MIN_SLICE, min(_ZSTD_MAX_SLICE, (limit - total) // _ZSTD_MAX_RATIO))
            piece = view[pos:pos + size]
            if not piece:
                raise _Truncated  # input ended inside a frame (or there was none)
            chunk = decoder.decompress(piece)
            pos += len(piece)
            total += len(chunk)
            if total > limit:
                raise _Bomb
            out.append(chunk)
            if decoder.eof:  # end of a frame: what follows is the next frame (as `zstd -d`)
                pos -= len(decoder.unused_data)
                if pos >= len(view):
                    return b"".join(out)
                decoder = self._zstd.ZstdDecompressor().decompressobj()


# ----------------------------------------------------------------- brotli


class BrotliEncode(_Encode):
    """Brotli streams carry no checksum: corruption may decode to wrong bytes, undetected."""

    codec = "brotli"

    def __init__(self, settings: BrotliSettings) -> None:
        self._brotli = require("brotli", provider="brotli", extra="brotli")
        self.quality = settings.quality
        self.lgwin = settings.lgwin

    def _compress(self, data: bytes) -> bytes:
        return bytes(self._brotli.compress(data, quality=self.quality, lgwin=self.lgwin))


class BrotliDecode(_Decode):
    codec = "brotli"

    def __init__(self, settings: BrotliSettings) -> None:
        self._brotli = brotli = require("brotli", provider="brotli", extra="brotli")
        super().__init__(settings.max_output_bytes, (brotli.error,))
        try:
            brotli.Decompressor().process(b"", output_buffer_limit=1)
        except TypeError:
            from oneiric.core import ConfigError

            raise ConfigError(
                "action provider 'brotli' needs brotli >= 1.2 (output_buffer_limit, for a "
                'bounded decompression); pip install -U "brotli>=1.2"'
            ) from None

    def _decompress(self, data: bytes, limit: int) -> bytes:
        decoder = self._brotli.Decompressor()
        out: list[bytes] = []
        total = 0
        pending = data
        while True:
            chunk = decoder.process(pending, output_buffer_limit=limit - total + 1)
            pending = b""
            total += len(chunk)
            if total > limit:
                raise _Bomb
            out.append(chunk)
            if decoder.can_accept_more_data():
                break
        if not decoder.is_finished():
            raise _Truncated
        return b"".join(out)
