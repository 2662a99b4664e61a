"""Cases 1-10 of REMOTE.md: signatures, canonical payload, schema, repository, time.

Each case runs through ``RemoteSync`` (a local manifest file as the top-level
source) and asserts the named error and that nothing changed.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from oneiric.remote import (
    PAYLOAD_TYPE,
    ExpiredManifestError,
    FutureIssuedError,
    ManifestFormatError,
    RemoteSync,
    SignatureError,
    TrustedKey,
    WrongRepositoryError,
    sign_payload,
    verify_envelope,
)
from oneiric.remote._envelope import pae

pytestmark = pytest.mark.anyio


def _doc(envelope: bytes) -> dict[str, Any]:
    return json.loads(envelope)


def _raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


async def _sync_fails(kit, resolver, h, unchanged, data: bytes, error: type, **source: Any):
    path = kit.write(data)
    sync = RemoteSync(resolver, kit.source(str(path), **source), now=h.fixed_now)
    with pytest.raises(error) as info:
        await sync.sync()
    unchanged()
    assert resolver.domains() == ()
    assert "\n" not in str(info.value)
    return info.value


async def test_valid_manifest_registers(kit, resolver, h) -> None:
    path = kit.write(kit.envelope(kit.payload()))
    result = await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    assert (result.version, result.registered, result.unchanged) == (1, 1, False)
    winner = resolver.resolve("adapter", "cache")
    assert str(winner.source) == "manifest:acme==1"
    assert winner.source.detail == str(path)


async def test_case01_threshold_two_one_signature(kit, resolver, h, unchanged) -> None:
    data = kit.envelope(kit.payload(), keys=[0])
    await _sync_fails(kit, resolver, h, unchanged, data, SignatureError,
                      trusted_keys=kit.trusted[:2], threshold=2)


async def test_case01_same_key_twice_counts_once(kit) -> None:
    doc = _doc(kit.envelope(kit.payload(), keys=[0]))
    doc["signatures"] = doc["signatures"] * 2
    with pytest.raises(SignatureError):
        verify_envelope(_raw(doc), trusted_keys=kit.trusted[:2], threshold=2)
    both = kit.envelope(kit.payload(), keys=[0, 1])
    assert verify_envelope(both, trusted_keys=kit.trusted[:2], threshold=2)["version"] == 1


async def test_case02_keyid_relabelled(kit, resolver, h, unchanged) -> None:
    doc = _doc(kit.envelope(kit.payload(), keys=[0]))
    doc["signatures"][0]["keyid"] = kit.trusted[1].keyid  # A's signature labelled as B
    await _sync_fails(kit, resolver, h, unchanged, _raw(doc), SignatureError,
                      trusted_keys=kit.trusted[1:2])


@pytest.mark.parametrize("variant", ["unknown-keys", "empty"])
async def test_case03_unknown_or_no_signatures(kit, resolver, h, unchanged, variant) -> None:
    doc = _doc(kit.envelope(kit.payload(), keys=[2, 3]))
    if variant == "empty":
        doc["signatures"] = []
    await _sync_fails(kit, resolver, h, unchanged, _raw(doc), SignatureError,
                      trusted_keys=kit.trusted[:2])


@pytest.mark.parametrize("variant", ["payload-byte", "payload-type"])
async def test_case04_tampered(kit, resolver, h, unchanged, variant) -> None:
    doc = _doc(kit.envelope(kit.payload()))
    if variant == "payload-byte":
        body = bytearray(base64.b64decode(doc["payload"]))
        body[body.index(b'"version":1') + 10] = ord("2")
        doc["payload"] = base64.b64encode(bytes(body)).decode()
    else:
        doc["payloadType"] = "application/vnd.in-toto+json"
    await _sync_fails(kit, resolver, h, unchanged, _raw(doc), SignatureError)


@pytest.mark.parametrize("sig", ["AAAA", "not base64!", base64.b64encode(b"x" * 65).decode(),
                                 "QUJD\n", "-_-_"])
async def test_case05_bad_signature_encoding(kit, resolver, h, unchanged, sig) -> None:
    doc = _doc(kit.envelope(kit.payload()))
    doc["signatures"][0]["sig"] = sig
    err = await _sync_fails(kit, resolver, h, unchanged, _raw(doc), SignatureError)
    assert type(err) is not ValueError


def _sign_raw(kit, body: bytes, key: int = 0) -> bytes:
    sk = kit.keys[key]
    sig = sk.sign(pae(PAYLOAD_TYPE, body)).signature
    return _raw({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(),
                 "signatures": [{"keyid": kit.trusted[key].keyid,
                                 "sig": base64.b64encode(sig).decode()}]})


@pytest.mark.parametrize("style", ["whitespace", "unsorted"])
async def test_case06_non_canonical(kit, resolver, h, unchanged, style) -> None:
    payload = kit.payload()
    if style == "whitespace":
        body = json.dumps(payload, sort_keys=True, indent=1).encode()
    else:
        body = json.dumps(dict(reversed(list(payload.items()))), separators=(",", ":")).encode()
    await _sync_fails(kit, resolver, h, unchanged, _sign_raw(kit, body), ManifestFormatError)


@pytest.mark.parametrize("value", ["NaN", "1.5", str(2**53), "-Infinity"])
async def test_case07_numbers(kit, resolver, h, unchanged, value) -> None:
    body = json.dumps(kit.payload(), sort_keys=True, separators=(",", ":")).replace(
        '"version":1', f'"version":{value}'
    ).encode()
    await _sync_fails(kit, resolver, h, unchanged, _sign_raw(kit, body), ManifestFormatError)


async def test_case07_duplicate_keys(kit) -> None:
    body = json.dumps(kit.payload(), sort_keys=True, separators=(",", ":")).replace(
        '"version":1', '"version":1,"version":1').encode()
    with pytest.raises(ManifestFormatError, match="duplicate"):
        verify_envelope(_sign_raw(kit, body), trusted_keys=kit.trusted[:1], threshold=1)


@pytest.mark.parametrize("change", [{"surprise": 1}, {"spec_version": "2.0"}])
async def test_case08_unknown_field_and_major(kit, resolver, h, unchanged, change) -> None:
    data = kit.envelope(kit.payload(**change))
    await _sync_fails(kit, resolver, h, unchanged, data, ManifestFormatError)


async def test_case09_wrong_repository(kit, resolver, h, unchanged) -> None:
    data = kit.envelope(kit.payload(repository="other"))
    await _sync_fails(kit, resolver, h, unchanged, data, WrongRepositoryError)


@pytest.mark.parametrize(
    ("shape", "error"),
    [
        ("expired", ExpiredManifestError),
        ("future", FutureIssuedError),
        ("naive", ManifestFormatError),
        ("lifetime", ManifestFormatError),
    ],
)
async def test_case10_time(kit, resolver, h, unchanged, shape, error) -> None:
    now = h.NOW
    if shape == "expired":
        payload = kit.payload(issued=now - timedelta(days=3), expires=now - timedelta(seconds=1))
    elif shape == "future":
        payload = kit.payload(issued=now + timedelta(days=1))
    elif shape == "naive":
        payload = kit.payload()
        payload["expires"] = payload["expires"].rstrip("Z")
    else:
        payload = kit.payload(issued=now - timedelta(days=1), expires=now + timedelta(days=40))
    await _sync_fails(kit, resolver, h, unchanged, kit.envelope(payload), error)


def test_trusted_key_rejects_mismatched_keyid(kit) -> None:
    key = kit.trusted[0]
    with pytest.raises(ValueError, match="does not match"):
        TrustedKey(kit.trusted[1].keyid, key.public_key)
    with pytest.raises(ValueError, match="base64"):
        TrustedKey(key.keyid, "not-base64")


def test_sign_payload_rejects_floats(kit) -> None:
    with pytest.raises(ManifestFormatError):
        sign_payload({"x": 1.5}, [kit.keys[0]])


def test_envelope_size_cap(kit) -> None:
    with pytest.raises(ManifestFormatError, match="limit"):
        verify_envelope(b" " * (1024 * 1024 + 1), trusted_keys=kit.trusted[:1], threshold=1)
