"""Key encoding: memcached keys are escaped or hashed, injectively, within 250 bytes."""

from __future__ import annotations

import re

from oneiric.adapters.cache._keys import (
    MEMCACHED_MAX_KEY,
    escape_memcached,
    key_bytes,
    memcached_key,
)

_ALLOWED = re.compile(rb"[\x21-\x7e]+")
PREFIX = b"oneiric:" + b"n" * 64 + b":" + b"9" * 20 + b":"  # the longest prefix settings allow


def test_plain_keys_are_kept_as_they_are() -> None:
    assert escape_memcached(b"user:42/profile?x=1") == b"user:42/profile?x=1"
    assert memcached_key(b"p:", "user:42") == b"p:k:user:42"


def test_spaces_controls_percent_and_non_ascii_are_escaped() -> None:
    assert escape_memcached(b"a b") == b"a%20b"
    assert escape_memcached(b"%41") == b"%2541"
    assert escape_memcached(b"\x00\x7f\xff") == b"%00%7F%FF"
    assert escape_memcached("é".encode()) == b"%C3%A9"


def test_escaping_is_injective_on_tricky_neighbours() -> None:
    keys = ["A", "%41", "%2541", "a b", "a%20b", "é", "%C3%A9", "", " ", "%"]
    encoded = {memcached_key(b"p:", k) for k in keys}
    assert len(encoded) == len(keys)


def test_long_keys_are_hashed_within_the_limit_and_stay_distinct() -> None:
    keys = ["x" * 300, "x" * 299 + "y", "é" * 200, "ключ" * 100, "k" * 10_000]
    encoded = [memcached_key(PREFIX, k) for k in keys]
    assert len(set(encoded)) == len(keys)
    for item in encoded:
        assert len(item) <= MEMCACHED_MAX_KEY
        assert _ALLOWED.fullmatch(item)
        assert item.startswith(PREFIX + b"h:")


def test_escaped_and_hashed_forms_never_meet() -> None:
    long_key = "x" * 300
    hashed = memcached_key(PREFIX, long_key)
    looks_hashed = hashed[len(PREFIX) :].decode()  # "h:<sha256>" used as a natural key
    assert memcached_key(PREFIX, looks_hashed) != hashed


def test_every_escaped_key_is_printable_ascii() -> None:
    key = "".join(chr(c) for c in range(0, 0x3000, 7))
    assert _ALLOWED.fullmatch(memcached_key(b"p:", key))


def test_lone_surrogates_are_kept_not_refused() -> None:
    assert key_bytes("a\udc80") == b"a\xed\xb2\x80"
    assert key_bytes("plain") == b"plain"
