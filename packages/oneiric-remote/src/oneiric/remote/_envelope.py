"""The DSSE envelope: what travels, parsed strictly, and the bytes a signature covers.

Signatures cover the pre-authentication encoding (PAE) of the payload type and
the exact payload bytes, so the verifier never re-serializes anything before
checking a signature, and a signature for one payload type cannot be replayed
as another.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from oneiric.core.helpers import quote_name

from ._canonical import parse_strict
from ._errors import ManifestFormatError

__all__ = [
    "MAX_MANIFEST_BYTES",
    "PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeSignature",
    "b64decode_strict",
    "b64encode",
    "encode_envelope",
    "pae",
    "parse_envelope",
]

PAYLOAD_TYPE = "application/vnd.oneiric.manifest+json;version=1"
#: The manifest size cap (envelope bytes), checked before anything is parsed.
MAX_MANIFEST_BYTES = 1024 * 1024
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: object) -> bytes:
    """Decode standard, padded base64; anything else (whitespace, url-safe, junk) is ValueError."""
    if not isinstance(text, str) or not _B64.fullmatch(text):
        raise ValueError("not standard padded base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the regex already guarantees validity
        raise ValueError(str(exc)) from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (lengths as ASCII decimals)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One ``{"keyid", "sig"}`` entry; ``sig`` is kept as text and decoded by the verifier."""

    keyid: str
    sig: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope: the payload type, the exact payload bytes and the signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]


def parse_envelope(data: bytes) -> Envelope:
    """Parse envelope bytes strictly (size cap, exact fields, strict base64 payload).

    ``payloadType`` is returned as found; the verifier decides whether it is the one
    it accepts (a wrong type is a signature failure, not a format one).
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestFormatError(
            f"envelope is {len(data)} bytes, above the {MAX_MANIFEST_BYTES}-byte limit; "
            "ship fewer components per manifest"
        )
    doc = parse_strict(data, what="envelope")
    if not isinstance(doc, dict):
        raise ManifestFormatError("envelope is not a JSON object; expected a DSSE envelope")
    expected = {"payloadType", "payload", "signatures"}
    if set(doc) != expected:
        extra = [quote_name(k) for k in sorted(set(doc) - expected)]
        missing = sorted(expected - set(doc))
        raise ManifestFormatError(
            f"envelope fields must be exactly payloadType, payload, signatures "
            f"(unknown: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'})"
        )
    payload_type = doc["payloadType"]
    if not isinstance(payload_type, str):
        raise ManifestFormatError("envelope payloadType must be a string")
    try:
        payload = b64decode_strict(doc["payload"])
    except ValueError:
        raise ManifestFormatError(
            "envelope payload is not standard padded base64; re-create the envelope"
        )
    sigs = doc["signatures"]
    if not isinstance(sigs, list):
        raise ManifestFormatError("envelope signatures must be a list")
    parsed: list[EnvelopeSignature] = []
    for index, entry in enumerate(sigs):
        if (
            not isinstance(entry, dict)
            or set(entry) != {"keyid", "sig"}
            or not isinstance(entry["keyid"], str)
            or not isinstance(entry["sig"], str)
        ):
            raise ManifestFormatError(
                f"envelope signatures[{index}] must be an object with string keyid and sig only"
            )
        parsed.append(EnvelopeSignature(entry["keyid"], entry["sig"]))
    return Envelope(payload_type, payload, tuple(parsed))


def encode_envelope(payload_type: str, payload: bytes, signatures: list[dict[str, str]]) -> bytes:
    """Serialize an envelope (stable layout, so identical inputs give identical bytes)."""
    doc: dict[str, Any] = {
        "payload": b64encode(payload),
        "payloadType": payload_type,
        "signatures": signatures,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")
