"""``security.signature`` (provider ``hmac``): sign and verify with HMAC, constant-time.

``{"op": "sign", "data", "key"?}`` -> ``{"signature": hex}``;
``{"op": "verify", "data", "signature", "key"?}`` -> ``{"valid": bool}``.
``data`` and ``key`` are bytes, ``{"base64": ...}`` or text (UTF-8); the key
falls back to the provider setting ``key`` (usually ``"${secret:...}"``).

``signature`` must be a string; what it says is the sender's claim, so any
string that is not the right hex digest - wrong length, not hex, empty - is
``{"valid": false}``, never an error: callers verifying webhooks get one
answer for every forgery.  Case is ignored and an ``"<algorithm>="`` prefix
(as GitHub's ``X-Hub-Signature-256: sha256=...``) is accepted.  The
comparison is ``hmac.compare_digest`` over the hex text.

MD5 and SHA-1 are refused as algorithms: both still make "working" HMACs,
which is exactly why a configuration typo must not silently choose them.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from .._errors import ActionInputError
from .._json import binary
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, take

__all__ = ["HmacSettings", "HmacSignature"]

_KEY: Final = "security.signature"
_ALGORITHMS: Final = ("sha256", "sha384", "sha512")
_FIELDS: Final = {
    "sign": frozenset({"op", "data", "key"}),
    "verify": frozenset({"op", "data", "signature", "key"}),
}


class HmacSettings(BaseModel):
    """``[action.provider_settings."security.signature".hmac]``: ``key``, ``algorithm``."""

    model_config = ConfigDict(extra="forbid")
    key: SecretStr | None = None
    algorithm: str = "sha256"

    @field_validator("algorithm")
    @classmethod
    def _strong(cls, value: str) -> str:
        name = value.lower().replace("-", "")
        if name in ("md5", "sha1"):
            raise ValueError(f"{value} is refused (too weak for signatures); use sha256 or sha512")
        if name not in _ALGORITHMS:
            raise ValueError(f"unknown algorithm {value!r}; use one of {', '.join(_ALGORITHMS)}")
        return name

    @field_validator("key")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("key is empty; set a secret key or remove the setting")
        return value


class HmacSignature:
    """HMAC with the configured algorithm; the key from the payload or the settings."""

    spec = ActionSpec(
        description="HMAC sign/verify (constant-time comparison)",
        idempotent=True, side_effects=False,
    )

    def __init__(self, settings: HmacSettings) -> None:
        self.algorithm = settings.algorithm
        self._digest = getattr(hashlib, settings.algorithm)
        self._key = settings.key

    def __repr__(self) -> str:
        return f"HmacSignature(algorithm={self.algorithm!r}, key={'set' if self._key else None})"

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        op = take(fields_of(payload, _KEY, _FIELDS["verify"]), _KEY, "op", str)
        if op not in _FIELDS:
            raise ActionInputError(
                f"action {_KEY!r}: payload field op must be \"sign\" or \"verify\"", path="op"
            )
        fields = fields_of(payload, _KEY, _FIELDS[op])
        data = binary(take(fields, _KEY, "data", object), "data")
        expected = hmac.new(self._key_of(fields), data, self._digest).hexdigest()
        if op == "sign":
            return {"signature": expected}
        claimed = take(fields, _KEY, "signature", str)
        prefix = f"{self.algorithm}="
        if claimed[: len(prefix)].lower() == prefix:
            claimed = claimed[len(prefix):]
        claimed_bytes = claimed.strip().lower().encode("utf-8", "replace")
        return {"valid": hmac.compare_digest(expected.encode("ascii"), claimed_bytes)}

    def _key_of(self, fields: Any) -> bytes:
        if "key" in fields:
            key = binary(fields["key"], "key")
        elif self._key is not None:
            key = self._key.get_secret_value().encode("utf-8")
        else:
            raise ActionInputError(
                f"action {_KEY!r}: no HMAC key; send payload field key or set key under "
                f'[action.provider_settings."{_KEY}".hmac] (e.g. key = "${{secret:NAME}}")',
                path="key",
            )
        if not key:
            raise ActionInputError(f"action {_KEY!r}: payload field key is empty", path="key")
        return key
