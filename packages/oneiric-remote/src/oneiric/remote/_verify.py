"""Trust: pinned Ed25519 keys, a threshold, and the ``ManifestVerifier`` interface.

Why an interface: the verifier is the one component that decides what is
authentic.  Keeping it behind ``ManifestVerifier.verify(data) -> VerifiedPayload``
lets python-tuf (or a hardware-backed verifier) replace it without touching
fetching, state or installation.

Rules: count *distinct trusted keys* whose signature verifies; unknown keyids
are ignored; a keyid only selects a key and is never trusted by itself; every
PyNaCl failure (``BadSignatureError`` or ``ValueError``) is a ``SignatureError``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from oneiric.core import ConfigError
from oneiric.core.helpers import one_line

from ._canonical import JSONValue, canonical, parse_canonical
from ._envelope import (
    PAYLOAD_TYPE,
    b64decode_strict,
    b64encode,
    encode_envelope,
    pae,
    parse_envelope,
)
from ._errors import SignatureError

if TYPE_CHECKING:
    from nacl.signing import SigningKey

__all__ = [
    "Ed25519Verifier",
    "ManifestVerifier",
    "TrustedKey",
    "VerifiedPayload",
    "keyid_of",
    "sign_payload",
    "trust_fingerprint",
    "verify_envelope",
]

_KEYID = re.compile(r"[0-9a-f]{64}")


def keyid_of(raw_public_key: bytes) -> str:
    """The keyid of a raw 32-byte Ed25519 public key: lowercase hex sha256."""
    return hashlib.sha256(raw_public_key).hexdigest()


def _check_public(keyid: str, public_key: str) -> bytes:
    try:
        raw = b64decode_strict(public_key)
    except ValueError:
        raise ConfigError(
            f"trusted key {keyid!r}: public_key is not standard padded base64; "
            "paste the value printed by 'oneiric manifest keygen'"
        ) from None
    if len(raw) != 32:
        raise ConfigError(
            f"trusted key {keyid!r}: public_key decodes to {len(raw)} bytes, expected 32 "
            "(a raw Ed25519 public key)"
        )
    if not isinstance(keyid, str) or not _KEYID.fullmatch(keyid) or keyid != keyid_of(raw):
        raise ConfigError(
            f"trusted key {keyid!r} does not match its public key (expected keyid "
            f"{keyid_of(raw)}); copy keyid and public_key from the same keygen output"
        )
    return raw


@dataclass(frozen=True)
class TrustedKey:
    """A pinned Ed25519 public key.

    ``public_key`` is base64 of the raw 32 bytes; ``keyid`` must be the lowercase
    hex sha256 of those bytes, so a typo in either fails at configuration time
    instead of silently trusting nothing (or the wrong key).
    """

    keyid: str
    public_key: str
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _check_public(self.keyid, self.public_key))

    @classmethod
    def from_public(cls, raw: bytes) -> TrustedKey:
        """Build from raw 32 public-key bytes (keyid computed)."""
        if not isinstance(raw, bytes | bytearray) or len(raw) != 32:
            raise ConfigError("TrustedKey.from_public expects the raw 32-byte Ed25519 public key")
        return cls(keyid_of(bytes(raw)), b64encode(bytes(raw)))

    def as_dict(self) -> dict[str, str]:
        return {"keyid": self.keyid, "public_key": self.public_key}


def trust_fingerprint(repository: str, keys: Iterable[TrustedKey], threshold: int) -> str:
    """Identity of a trust configuration: repository, sorted keyids, threshold.

    URLs and mirrors are transport and take no part: moving a manifest to a new
    host keeps its rollback floor.
    """
    doc = {"repository": repository, "keyids": sorted({k.keyid for k in keys}),
           "threshold": threshold}
    return hashlib.sha256(canonical(doc)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class VerifiedPayload:
    """What a verifier vouches for: the exact payload bytes, the parsed payload, the signers."""

    payload: bytes
    data: Mapping[str, JSONValue]
    signers: tuple[str, ...]

    @property
    def digest(self) -> str:
        """sha256 of the payload bytes (what equivocation compares)."""
        return hashlib.sha256(self.payload).hexdigest()


@runtime_checkable
class ManifestVerifier(Protocol):
    """Turns untrusted envelope bytes into a verified payload, or raises ``RemoteError``.

    Implementations check everything up to and including the canonical payload
    parse; schema, repository, time and state checks are the caller's.
    """

    def verify(self, data: bytes) -> VerifiedPayload: ...


class Ed25519Verifier:
    """The built-in verifier: DSSE + Ed25519 threshold over pinned keys (PyNaCl)."""

    def __init__(self, trusted_keys: Sequence[TrustedKey], threshold: int = 1) -> None:
        keys = {k.keyid: k for k in trusted_keys}
        if not keys:
            raise ConfigError("no trusted keys configured; add trusted_keys to the source")
        if type(threshold) is not int or not 1 <= threshold <= len(keys):
            raise ConfigError(
                f"threshold {threshold!r} must be an integer between 1 and the number of "
                f"distinct trusted keys ({len(keys)})"
            )
        self.keys = keys
        self.threshold = threshold

    def verify(self, data: bytes) -> VerifiedPayload:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        envelope = parse_envelope(data)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise SignatureError(
                f"envelope payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}; "
                "refusing to verify signatures made for another type"
            )
        message = pae(envelope.payload_type, envelope.payload)
        good: set[str] = set()
        problems: list[str] = []
        for entry in envelope.signatures:
            key = self.keys.get(entry.keyid)
            if key is None or entry.keyid in good:
                continue  # unknown keyids are ignored; a key counts once
            try:
                sig = b64decode_strict(entry.sig)
                if len(sig) != 64:
                    raise ValueError(f"signature is {len(sig)} bytes, expected 64")
                VerifyKey(key.raw).verify(message, sig)
            except (BadSignatureError, ValueError, TypeError) as exc:
                reason = one_line(exc)
                problems.append(f"{entry.keyid[:12]}: {reason}")
                continue
            good.add(entry.keyid)
        if len(good) < self.threshold:
            detail = f" ({'; '.join(problems)})" if problems else ""
            raise SignatureError(
                f"manifest has {len(good)} valid signature(s) from trusted keys, "
                f"threshold is {self.threshold}{detail}; sign it with enough trusted keys "
                "or check trusted_keys"
            )
        payload = parse_canonical(envelope.payload)
        return VerifiedPayload(envelope.payload, payload, tuple(sorted(good)))


def verify_envelope(
    data: bytes, *, trusted_keys: Sequence[TrustedKey], threshold: int = 1
) -> dict[str, JSONValue]:
    """Verify envelope bytes and return the payload, checked against the manifest schema.

    Signatures, canonical form and schema (spec 1.x: strict types, no unknown or
    missing fields) - everything a client checks about the document itself; the
    repository, time and rollback checks need client state and stay with ``RemoteSync``.
    """
    from ._models import parse_manifest

    payload = dict(Ed25519Verifier(trusted_keys, threshold).verify(data).data)
    parse_manifest(payload)  # ManifestFormatError, one line
    return payload


def _signing_key(key: SigningKey | bytes | bytearray) -> SigningKey:
    from nacl.signing import SigningKey

    if isinstance(key, SigningKey):
        return key
    if isinstance(key, bytes | bytearray) and len(key) == 32:
        return SigningKey(bytes(key))
    raise TypeError("signing keys must be nacl.signing.SigningKey or raw 32-byte seeds")


def sign_payload(
    payload: Mapping[str, object], signing_keys: Iterable[SigningKey | bytes | bytearray]
) -> bytes:
    """Canonicalize ``payload`` and return a DSSE envelope signed by every key.

    A key is a ``nacl.signing.SigningKey`` or its raw 32-byte seed (what
    ``oneiric manifest keygen`` stores); anything else is a ``TypeError``.
    """
    body = canonical(dict(payload))
    message = pae(PAYLOAD_TYPE, body)
    signatures = []
    for key in signing_keys:
        sk = _signing_key(key)
        raw_public = bytes(sk.verify_key)
        signatures.append(
            {"keyid": keyid_of(raw_public), "sig": b64encode(sk.sign(message).signature)}
        )
    if not signatures:
        raise ValueError("sign_payload needs at least one signing key")
    return encode_envelope(PAYLOAD_TYPE, body, signatures)
