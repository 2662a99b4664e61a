"""Turning any ``str`` key into a key the backend accepts, injectively.

Callers use natural keys (URLs, user names in any script, long composite keys);
a cache that rejects some of them pushes encoding into every application.  So
providers encode instead of rejecting:

- redis keys are binary-safe: ``prefix + utf-8 bytes`` (lone surrogates kept via
  ``surrogatepass``), no length limit worth caring about.
- memcached keys are at most 250 bytes of printable ASCII without spaces.  A key
  is percent-escaped (bytes outside ``!``..``~`` and ``%`` itself become ``%XX``),
  which is injective; if the escaped key does not fit, it is replaced by the
  sha256 of its bytes.  Escaped keys live under ``k:`` and hashed ones under
  ``h:``, so the two forms can never collide with each other.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MEMCACHED_MAX_KEY", "escape_memcached", "key_bytes", "memcached_key"]

MEMCACHED_MAX_KEY = 250
_PLAIN = re.compile(rb"[\x21-\x24\x26-\x7e]*")


def key_bytes(key: str) -> bytes:
    """The UTF-8 bytes of ``key``; lone surrogates are kept rather than refused."""
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def escape_memcached(raw: bytes) -> bytes:
    """Percent-escape every byte memcached cannot carry in a key (and ``%`` itself)."""
    if _PLAIN.fullmatch(raw):
        return raw
    out = bytearray()
    for byte in raw:
        if 0x21 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def memcached_key(prefix: bytes, key: str) -> bytes:
    """``prefix + b"k:" + escaped`` if it fits in 250 bytes, else ``prefix + b"h:" + sha256``."""
    raw = key_bytes(key)
    encoded = prefix + b"k:" + escape_memcached(raw)
    if len(encoded) <= MEMCACHED_MAX_KEY:
        return encoded
    return prefix + b"h:" + hashlib.sha256(raw).hexdigest().encode("ascii")
