"""``security.secure``: password hash/verify (scrypt; argon2) and random tokens.

``{"op": "hash", "password"}`` -> ``{"hash"}``; ``{"op": "verify", "password",
"hash"}`` -> ``{"valid"}``; ``{"op": "token", "bytes"?}`` -> ``{"token"}``
(``secrets.token_urlsafe``, 16..1024 random bytes, 32 by default).

Hashes describe themselves, so settings can change without locking anyone
out: scrypt writes ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, argon2 the
standard ``$argon2id$v=19$m=..,t=..,p=..$salt$hash``.  Verify takes the cost
parameters from the hash, bounded by the same ranges the settings allow, so a
planted hash cannot make one verify allocate gigabytes.

Verify answers: the right password ``{"valid": true}``; a wrong one
``{"valid": false}`` (compared with ``hmac.compare_digest`` for scrypt, by
libargon2's constant-time ``argon2_verify`` for argon2); a hash that is not
this provider's format is an ``ActionInputError`` - a hash from the other
provider says which provider reads it, since answering ``false`` would
silently lock users out after a swap.  The password is never part of an
error message, a repr or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._errors import ActionInputError
from .._json import binary
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take

__all__ = ["Argon2Secure", "Argon2Settings", "ScryptSecure", "ScryptSettings"]

_KEY: Final = "security.secure"
_FIELDS: Final = {
    "hash": frozenset({"op", "password"}),
    "verify": frozenset({"op", "password", "hash"}),
    "token": frozenset({"op", "bytes"}),
}
_ALL_FIELDS: Final = frozenset().union(*_FIELDS.values())
_MAX_PASSWORD: Final = 4096
_MAX_HASH: Final = 1024
_GIB: Final = 1 << 30

_SPEC: Final = ActionSpec(
    description="password hash/verify and random tokens",
    idempotent=False,  # a hash has a fresh salt, a token is random
    side_effects=False,
    blocking=True,  # a hash costs tens of milliseconds of CPU and memory on purpose
)


# ----------------------------------------------------------------- shared


def _scrypt_limits(n: int, r: int, p: int) -> str | None:
    """Why (n, r, p) is out of range, or ``None``: one rule for settings and parsed hashes."""
    if n < 1 << 10 or n > 1 << 22 or n & (n - 1):
        return f"n must be a power of two from 1024 to 4194304, got {n}"
    if not 1 <= r <= 32:
        return f"r must be 1..32, got {r}"
    if not 1 <= p <= 16:
        return f"p must be 1..16, got {p}"
    if 128 * n * r * p > _GIB:
        return f"n*r*p needs {128 * n * r * p >> 20} MiB (128*n*r*p); at most 1024 MiB"
    return None


class _Secure:
    """The ops every provider shares; ``_hash``/``_verify`` are the provider's."""

    spec = _SPEC
    name: str = ""

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        op = take(fields_of(payload, _KEY, _ALL_FIELDS), _KEY, "op", str)
        if op not in _FIELDS:
            raise ActionInputError(
                f"action {_KEY!r}: payload field op must be \"hash\", \"verify\" or \"token\"",
                path="op",
            )
        fields = fields_of(payload, _KEY, _FIELDS[op])
        if op == "token":
            size = take(fields, _KEY, "bytes", int, default=32)
            if not 16 <= size <= 1024:
                raise ActionInputError(
                    f"action {_KEY!r}: payload field bytes must be 16..1024, got {size}",
                    path="bytes",
                )
            return {"token": secrets.token_urlsafe(size)}
        password = self._password(fields, required=op == "hash")
        if op == "hash":
            return {"hash": self._hash(password)}
        encoded = take(fields, _KEY, "hash", str)
        if len(encoded) > _MAX_HASH:
            raise self._malformed(f"it is {len(encoded)} characters long")
        return {"valid": self._verify(password, encoded.strip())}

    @staticmethod
    def _password(fields: Any, *, required: bool) -> bytes:
        password = binary(take(fields, _KEY, "password", object), "password")
        if len(password) > _MAX_PASSWORD:
            raise ActionInputError(
                f"action {_KEY!r}: payload field password is longer than {_MAX_PASSWORD} bytes",
                path="password",
            )
        if required and not password:
            raise ActionInputError(
                f"action {_KEY!r}: payload field password is empty; refusing to hash it",
                path="password",
            )
        return password

    def _malformed(self, why: str, encoded: str = "") -> ActionInputError:
        other = ("argon2" if encoded.startswith("$argon2")
                 else "scrypt" if encoded.startswith("scrypt$") else None)
        if other is not None and other != self.name:
            return ActionInputError(
                f"action {_KEY!r}: payload field hash is an {other} hash, not {self.name}; "
                f"verify it with provider {other} (select it for {_KEY})",
                path="hash",
            )
        return ActionInputError(
            f"action {_KEY!r}: payload field hash is not a {self.name} hash ({why}); "
            f"send a hash that op \"hash\" of provider {self.name} returned",
            path="hash",
        )

    def _hash(self, password: bytes) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _verify(self, password: bytes, encoded: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------- scrypt


class ScryptSettings(BaseModel):
    """``[action.provider_settings."security.secure".scrypt]``.

    Memory per hash is ``128 * n * r * p`` bytes (32 MiB by default, ~80 ms
    here); raise ``n`` as hardware allows.  Values below the defaults are
    accepted for tests but weaken stored hashes.
    """

    model_config = ConfigDict(extra="forbid")
    n: int = Field(1 << 15, description="CPU/memory cost, a power of two")
    r: int = Field(8, description="block size")
    p: int = Field(1, description="parallelism")
    salt_bytes: int = Field(16, ge=16, le=64)
    hash_bytes: int = Field(32, ge=16, le=64)

    @model_validator(mode="after")
    def _in_range(self) -> ScryptSettings:
        why = _scrypt_limits(self.n, self.r, self.p)
        if why is not None:
            raise ValueError(why)
        return self


_SCRYPT_FORMAT = re.compile(
    r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})"
)


class ScryptSecure(_Secure):
    """``hashlib.scrypt``; hashes ``scrypt$n$r$p$salt$hash`` (standard base64)."""

    name = "scrypt"

    def __init__(self, settings: ScryptSettings) -> None:
        self.n, self.r, self.p = settings.n, settings.r, settings.p
        self.salt_bytes = settings.salt_bytes
        self.hash_bytes = settings.hash_bytes

    @staticmethod
    def _derive(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
        # maxmem: the 128*n*r*p working set plus the 128*r*p block and slack
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=size,
                              maxmem=128 * r * (n + p + 2) + (1 << 20))

    def _hash(self, password: bytes) -> str:
        salt = secrets.token_bytes(self.salt_bytes)
        derived = self._derive(password, salt, self.n, self.r, self.p, self.hash_bytes)
        b64 = base64.b64encode
        return (f"scrypt${self.n}${self.r}${self.p}$"
                f"{b64(salt).decode('ascii')}${b64(derived).decode('ascii')}")

    def _verify(self, password: bytes, encoded: str) -> bool:
        match = _SCRYPT_FORMAT.fullmatch(encoded)
        if match is None:
            raise self._malformed("expected scrypt$n$r$p$salt$hash", encoded)
        n, r, p = (int(match.group(i)) for i in (1, 2, 3))
        why = _scrypt_limits(n, r, p)
        if why is not None:
            raise self._malformed(why)
        try:
            salt = base64.b64decode(match.group(4), validate=True)
            stored = base64.b64decode(match.group(5), validate=True)
        except binascii.Error:
            raise self._malformed("salt or hash is not valid base64") from None
        if not 16 <= len(salt) <= 64 or not 16 <= len(stored) <= 64:
            raise self._malformed("salt and hash must be 16..64 bytes")
        derived = self._derive(password, salt, n, r, p, len(stored))
        return hmac.compare_digest(derived, stored)


# ----------------------------------------------------------------- argon2


class Argon2Settings(BaseModel):
    """``[action.provider_settings."security.secure".argon2]`` (Argon2id).

    Defaults are argon2-cffi's (RFC 9106's second recommendation): t=3,
    64 MiB, 4 lanes.  ``memory_cost`` is in KiB.
    """

    model_config = ConfigDict(extra="forbid")
    time_cost: int = Field(3, ge=1, le=20)
    memory_cost: int = Field(65536, ge=1024, le=1 << 20, description="KiB")
    parallelism: int = Field(4, ge=1, le=16)
    hash_len: int = Field(32, ge=16, le=64)
    salt_len: int = Field(16, ge=16, le=64)


class Argon2Secure(_Secure):
    """``argon2.PasswordHasher`` (Argon2id); verify reads any Argon2 variant within bounds."""

    name = "argon2"

    def __init__(self, settings: Argon2Settings) -> None:
        argon2 = require("argon2", provider="argon2", extra="argon2")
        self._argon2 = argon2
        self._hasher = argon2.PasswordHasher(
            time_cost=settings.time_cost, memory_cost=settings.memory_cost,
            parallelism=settings.parallelism, hash_len=settings.hash_len,
            salt_len=settings.salt_len,
        )

    def _hash(self, password: bytes) -> str:
        return str(self._hasher.hash(password))

    def _verify(self, password: bytes, encoded: str) -> bool:
        exceptions = self._argon2.exceptions
        if not encoded.startswith("$argon2"):
            raise self._malformed("expected $argon2id$v=19$m=...,t=...,p=...$salt$hash", encoded)
        try:
            params = self._argon2.extract_parameters(encoded)
        except (exceptions.InvalidHashError, ValueError):
            raise self._malformed("its parameters do not parse") from None
        if not (1 <= params.time_cost <= 20 and 8 <= params.memory_cost <= 1 << 20
                and 1 <= params.parallelism <= 16 and 8 <= params.salt_len <= 64
                and 16 <= params.hash_len <= 64):
            raise self._malformed(
                "cost out of range: t 1..20, m up to 1048576 KiB, p 1..16, "
                "salt 8..64 bytes, hash 16..64 bytes"
            )
        try:
            return bool(self._hasher.verify(encoded, password))
        except exceptions.VerifyMismatchError:
            return False
        except exceptions.InvalidHashError:
            raise self._malformed("it does not parse") from None
        except exceptions.VerificationError as exc:
            raise self._malformed(str(exc) or "verification failed") from None
