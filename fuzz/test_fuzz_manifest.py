"""Fuzz the remote manifest parser: envelope bytes, signed payloads, the schema.

Property for every input: ``verify_envelope`` (and the path ``RemoteSync`` takes:
``Ed25519Verifier.verify`` -> ``parse_manifest`` -> ``check_time``) either
returns or raises a ``RemoteError`` subclass with a one-line message.  Anything
else (``RecursionError``, ``KeyError``, ``UnicodeError``, a pydantic error...)
is a failure, and so is an input that takes more than 1 s.

Random bytes alone never get past the JSON parser, so most inputs are
structure-aware: envelopes built field by field, and payloads *genuinely
signed* with a real Ed25519 key (``sign_payload``, or PAE + PyNaCl for payload
bytes ``sign_payload`` would refuse to produce), so the strict payload parser,
the canonical-form check and the schema are reached with a valid signature.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example
from hypothesis import strategies as st
from nacl.signing import SigningKey

from oneiric.remote import (
    PAYLOAD_TYPE,
    Ed25519Verifier,
    RemoteError,
    TrustedKey,
    sign_payload,
    verify_envelope,
)
from oneiric.remote._canonical import canonical
from oneiric.remote._envelope import encode_envelope, pae
from oneiric.remote._models import check_time, parse_manifest

KEYS = [SigningKey(bytes([seed]) * 32) for seed in (1, 2)]
TRUSTED = [TrustedKey.from_public(bytes(k.verify_key)) for k in KEYS]
OTHER = SigningKey(bytes([3]) * 32)  # signs, but is not trusted
NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
MAX_SAFE = 2**53 - 1


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc), f"{type(exc).__name__} message is not one line: {exc!s}"


def check_verify(data: bytes, threshold: int = 1) -> None:
    """The property: what ``verify_envelope`` and the sync path do with ``data``."""
    try:
        payload = verify_envelope(data, trusted_keys=TRUSTED, threshold=threshold)
    except RemoteError as exc:
        _one_line(exc)
    else:
        parse_manifest(payload)  # documented: verify_envelope returns schema-valid payloads only
    try:
        verified = Ed25519Verifier(TRUSTED, threshold).verify(data)
        # A verified payload is its own canonical form (what equivocation compares).
        assert canonical(dict(verified.data)) == verified.payload
        manifest = parse_manifest(verified.data)
        check_time(manifest, NOW, max_lifetime_days=365)
    except RemoteError as exc:
        _one_line(exc)


# ------------------------------------------------------------------ strategies

# JSON values inside the canonical subset (what sign_payload accepts), plus
# integers just outside it and non-ASCII keys, which the verifier must refuse.
_ints = st.integers(-MAX_SAFE, MAX_SAFE) | st.sampled_from([MAX_SAFE + 1, -(2**64), 0, -1])
_texts = st.text(max_size=40) | st.sampled_from(
    ["", "acme", "adapter", "cache", "json:loads", "a" * 65, "é", "\x00", "\u2028", "1.0"]
)
_keys = st.text(st.characters(max_codepoint=127), max_size=12) | st.sampled_from(
    ["_type", "version", "urls", "kind", "artifact", "é"]
)
json_values = st.recursive(
    st.none() | st.booleans() | _ints | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


def _ts() -> st.SearchStrategy[str]:
    valid = st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
    ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
    odd = st.sampled_from([
        "2030-01-01T12:00:00Z", "2030-02-30T00:00:00Z", "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z", "2030-01-01T12:00:00+00:00", "2030-01-01T24:00:00Z",
        "2030-01-01T12:00:00\nZ", "\uff12\uff10\uff13\uff10-01-01T12:00:00Z",
    ])
    return valid | odd


_names = st.sampled_from(["acme", "a", "adapter", "cache", "x-1", "m.v2", "a" * 64])
_bad_names = st.sampled_from(["", "A", "é", "a" * 65, "-a", "a b", "a\n"])
_factories = st.sampled_from(["json:loads", "pkg.mod:Attr", "a.b:c.d"])
_bad_factories = st.sampled_from(["_p:x", "a:_b", "a:", ":b", "é:x", "a:b\n", "a.:b"])


@st.composite
def valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest the schema accepts (before mutation)."""
    issued = draw(st.datetimes(min_value=datetime(2029, 6, 1), max_value=datetime(2030, 6, 1)))
    lifetime = draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400)))
    artifacts = {
        name: {
            "urls": draw(st.lists(st.sampled_from(["https://h/a.whl", "https://m/a.zip"]),
                                  min_size=1, max_size=2)),
            "sha256": draw(st.sampled_from(["0" * 64, "ab" * 32])),
            "size": draw(st.integers(0, 10**9)),
            "kind": draw(st.sampled_from(["wheel", "zip"])),
        }
        for name in draw(st.sets(_names, max_size=2))
    }
    components = []
    for domain, key, provider in draw(st.sets(st.tuples(_names, _names, _names), max_size=3)):
        comp: dict[str, Any] = {"domain": domain, "key": key, "provider": provider,
                                "factory": draw(_factories)}
        if artifacts and draw(st.booleans()):
            comp["artifact"] = draw(st.sampled_from(sorted(artifacts)))
        if draw(st.booleans()):
            comp["priority"] = draw(st.integers(-100, 100) | st.none())
        if draw(st.booleans()):
            comp["capabilities"] = draw(st.lists(st.sampled_from(["ttl", "x"]), max_size=2))
        if draw(st.booleans()):
            comp["description"] = draw(st.text(max_size=20))
        components.append(comp)
    return {
        "_type": "oneiric.manifest",
        "spec_version": draw(st.sampled_from(["1.0", "1.7"])),
        "repository": draw(_names),
        "version": draw(st.integers(1, MAX_SAFE)),
        "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": (issued + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "artifacts": artifacts,
        "components": components,
    }


def _slots(doc: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) of a JSON document, in document order."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((doc, key))
            _slots(value, out)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.append((doc, index))
            _slots(value, out)
    return out


_replacements = st.one_of(
    json_values, _ts(), _bad_names, _bad_factories,
    st.sampled_from([MAX_SAFE + 1, -1, 0, True, None, "1", [], {}, "2.0", "oneiric.manifest "]),
)
_edits = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(["set", "delete", "add"]), _keys,
              _replacements),
    max_size=3,
)


def _edit(doc: dict[str, Any], edits: list[tuple[int, str, str, Any]]) -> dict[str, Any]:
    """Structure-aware mutation: change, delete or add a field anywhere in the document."""
    for index, op, key, value in edits:
        slots = _slots(doc, [])
        container, slot = slots[index % len(slots)] if slots else (doc, key)
        if op == "set":
            container[slot] = copy.deepcopy(value)
        elif op == "delete":
            del container[slot]
        elif isinstance(container, dict):
            container[key] = copy.deepcopy(value)
        else:
            container.append(copy.deepcopy(value))
    return doc


payloads = st.builds(_edit, valid_payloads(), _edits)


def _valid_payload() -> dict[str, Any]:
    return {
        "_type": "oneiric.manifest", "spec_version": "1.0", "repository": "acme", "version": 1,
        "issued_at": "2030-01-01T00:00:00Z", "expires": "2030-01-08T00:00:00Z",
        "artifacts": {}, "components": [
            {"domain": "adapter", "key": "cache", "provider": "m", "factory": "json:loads"}
        ],
    }


def sign_raw(body: bytes, keys: list[SigningKey], payload_type: str = PAYLOAD_TYPE) -> bytes:
    """Sign arbitrary payload bytes (sign_payload only produces canonical ones)."""
    message = pae(payload_type, body)
    sigs = [
        {"keyid": TrustedKey.from_public(bytes(k.verify_key)).keyid,
         "sig": base64.b64encode(k.sign(message).signature).decode()}
        for k in keys
    ]
    return encode_envelope(payload_type, body, sigs)


def _deep(depth: int, kind: str) -> bytes:
    inner = b'{"a":' * depth + b"1" + b"}" * depth if kind == "obj" else (
        b"[" * depth + b"]" * depth
    )
    return b'{"_type":' + inner + b"}"


raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "replace")),
    payloads.map(lambda p: json.dumps(p, indent=1).encode()),  # signed but not canonical
    st.tuples(st.integers(1, 5000), st.sampled_from(["obj", "list"])).map(lambda t: _deep(*t)),
    st.sampled_from([
        b'{"a":1,"a":1}', b'{"a":1.0}', b'{"a":NaN}', b'{"a":1e400}', b'{"\xc3\xa9":1}',
        b'{"a":9007199254740993}', b"\xef\xbb\xbf{}", b"{}", b"[]", b'"x"', b"\xff",
        b'{"a":"\\ud800"}',
    ]),
)

_b64 = st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
_keyids = st.sampled_from([t.keyid for t in TRUSTED]) | st.text(max_size=70) | st.sampled_from(
    [TRUSTED[0].keyid.upper(), TRUSTED[0].keyid + "\n", "é" * 64, "\x00" * 64]
)
_signature_entries = st.fixed_dictionaries(
    {}, optional={"keyid": _keyids | json_values, "sig": _b64 | json_values,
                  "extra": json_values},
)
envelope_docs = st.fixed_dictionaries(
    {},
    optional={
        "payloadType": st.just(PAYLOAD_TYPE) | _texts | json_values,
        "payload": raw_bodies.map(lambda b: base64.b64encode(b).decode()) | _b64 | json_values,
        "signatures": st.lists(_signature_entries, max_size=3) | json_values,
        "extra": json_values,
    },
)


def _dump(doc: Any, style: int) -> bytes:
    if style == 0:
        return json.dumps(doc).encode()
    if style == 1:
        return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8", "replace")
    return (" \t\n" + json.dumps(doc, separators=(",", ":")) + "\n").encode()


# Mutations applied to a genuinely signed envelope.
def _mutate(envelope: bytes, how: str, arg: Any) -> bytes:
    doc = json.loads(envelope)
    sigs = doc["signatures"]
    if how == "none":
        pass
    elif how == "keyid":
        sigs[0]["keyid"] = arg
    elif how == "sig":
        sigs[0]["sig"] = arg
    elif how == "dup-sig":
        doc["signatures"] = sigs + sigs
    elif how == "no-sig":
        doc["signatures"] = []
    elif how == "type":
        doc["payloadType"] = arg
    elif how == "flip":
        body = bytearray(base64.b64decode(doc["payload"]))
        if body:
            body[arg % len(body)] ^= 1 << (arg % 8)
        doc["payload"] = base64.b64encode(bytes(body)).decode()
    elif how == "truncate":
        return envelope[: arg % (len(envelope) + 1)]
    elif how == "dup-field":
        text = json.dumps(doc)
        return (text[:-1] + ',"payloadType":' + json.dumps(doc["payloadType"]) + "}").encode()
    return json.dumps(doc).encode()


_mutations = st.one_of(
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("keyid"), _keyids),
    st.tuples(st.just("sig"), _b64 | st.text(max_size=90)),
    st.tuples(st.sampled_from(["dup-sig", "no-sig", "dup-field"]), st.none()),
    st.tuples(st.just("type"), _texts),
    st.tuples(st.sampled_from(["flip", "truncate"]), st.integers(0, 10**6)),
)
_signers = st.sampled_from([[KEYS[0]], [KEYS[1]], KEYS, [OTHER], [KEYS[0], OTHER], []])


# ------------------------------------------------------------------ properties


@example(b"")
@example(b"\xff\xfe")
@example(b"[" * 100_000)
@example(b'{"payloadType":"x","payload":"","signatures":[],"payloadType":"x"}')
@example(b'{"\\n":0}')  # finding: an unknown envelope field named "\n" breaks the one-line message
def prop_random_bytes(data: bytes) -> None:
    check_verify(data)


def test_fuzz_verify_envelope_random_bytes(fuzz: Any) -> None:
    fuzz(prop_random_bytes, st.binary(max_size=2048) | raw_bodies)


@example({"payloadType": PAYLOAD_TYPE, "payload": "", "signatures": [{"keyid": "é", "sig": ""}]},
         0)
def prop_envelope_structure(doc: dict[str, Any], style: int) -> None:
    check_verify(_dump(doc, style))


def test_fuzz_verify_envelope_structure(fuzz: Any) -> None:
    fuzz(prop_envelope_structure, envelope_docs, st.integers(0, 2))


@example(_valid_payload(), [KEYS[0]], ("none", None), 1)
@example(_valid_payload(), [KEYS[0]], ("keyid", "é" * 64), 1)
@example(_valid_payload(), KEYS, ("dup-sig", None), 2)
@example({"_type": "oneiric.manifest"}, [KEYS[0]], ("none", None), 1)
# finding: sign_payload's error names the path with the raw key (a newline splits it)
@example({"\n": MAX_SAFE + 1}, [KEYS[0]], ("none", None), 1)
def prop_signed_payload(
    payload: dict[str, Any], signers: list[SigningKey], mutation: tuple[str, Any], threshold: int
) -> None:
    try:
        envelope = sign_payload(payload, signers)
    except RemoteError as exc:  # outside the canonical subset: the signer refuses, one line
        _one_line(exc)
        return
    except ValueError as exc:  # no signing key: documented ValueError of sign_payload
        assert not signers, exc
        return
    check_verify(_mutate(envelope, *mutation), threshold)


def test_fuzz_verify_signed_payloads(fuzz: Any) -> None:
    fuzz(prop_signed_payload, payloads, _signers, _mutations, st.integers(1, 2))


@example(b'{"a":1}', [KEYS[0]])
@example(_deep(3000, "obj"), [KEYS[0]])
@example(b'{"\xc3\xa9":1}', [KEYS[0]])
# finding: the schema error names an unknown field "\n" raw (message not one line)
@example(canonical({**_valid_payload(), "\n": None}), [KEYS[0]])
def prop_signed_raw_bytes(body: bytes, signers: list[SigningKey]) -> None:
    check_verify(sign_raw(body, signers))


def test_fuzz_verify_signed_raw_payload_bytes(fuzz: Any) -> None:
    canonical_payloads = payloads.map(
        lambda p: json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        .encode("utf-8", "replace")
    )
    fuzz(prop_signed_raw_bytes, raw_bodies | canonical_payloads, _signers)
