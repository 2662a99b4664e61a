"""``compression.hash``: ``{"data"}`` -> ``{"digest": hex}`` with sha256, sha512, blake2b, blake3.

``data`` is bytes, ``{"base64": ...}`` or text (hashed as UTF-8).

Speed matters here (``Actions.invoke`` of sha256 on 1 MiB is benchmarked
against ``hashlib`` directly), so the common payload ``{"data": bytes}`` takes
a short path and the providers run inline on the event loop, not in a worker
thread.  Measured on this machine (2 cores, sha256 ~1.9 GB/s, 1 MiB):
inline ``invoke`` ~1.03-1.04x hashlib directly, ``blocking=True`` (a thread
hop per call) ~1.36-1.39x.  Inputs above ``_THREAD_ABOVE`` bytes are hashed in
a worker thread instead, so a huge input does not stall the loop: hashlib and
blake3 release the GIL, and a thread hop is noise next to hashing that much.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from .._json import binary
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take

__all__ = ["Blake2b", "Blake2bSettings", "Blake3", "Sha256", "Sha512"]

_KEY: Final = "compression.hash"
_FIELDS: Final = frozenset({"data"})
#: Inputs larger than this are hashed in a worker thread (16 MiB: ~10 ms of sha256).
_THREAD_ABOVE: Final = 16 << 20

_SPEC: Final = ActionSpec(
    description="hex digest of data", idempotent=True, side_effects=False
)


def _data(payload: Any) -> bytes:
    if type(payload) is dict and len(payload) == 1:  # the common case, checked cheaply
        data = payload.get("data")
        if type(data) is bytes:
            return data
    fields = fields_of(payload, _KEY, _FIELDS)
    return binary(take(fields, _KEY, "data", object), "data")


class _Hash:
    """One digest function; ``invoke`` hashes inline, or in a thread for huge inputs."""

    spec = _SPEC

    def __init__(self, digest: Callable[[bytes], str]) -> None:
        self._digest = digest

    def invoke(
        self, payload: Any, context: ActionContext
    ) -> dict[str, str] | Awaitable[dict[str, str]]:
        """The digest, or (above ``_THREAD_ABOVE`` bytes) an awaitable of it from a thread.

        Sync on purpose: ``Actions.invoke`` awaits only what is awaitable, so
        the common case skips the coroutine and the timeout scope entirely.
        """
        data = _data(payload)
        if len(data) > _THREAD_ABOVE:
            return self._in_thread(data)
        return {"digest": self._digest(data)}

    async def _in_thread(self, data: bytes) -> dict[str, str]:
        return {"digest": await asyncio.to_thread(self._digest, data)}


class Blake2bSettings(BaseModel):
    """``[action.provider_settings."compression.hash".blake2b]``."""

    model_config = ConfigDict(extra="forbid")
    digest_size: int = Field(64, ge=1, le=64, description="bytes of digest (hex is twice)")


class Sha256(_Hash):
    def __init__(self) -> None:
        super().__init__(lambda data: hashlib.sha256(data).hexdigest())


class Sha512(_Hash):
    def __init__(self) -> None:
        super().__init__(lambda data: hashlib.sha512(data).hexdigest())


class Blake2b(_Hash):
    def __init__(self, settings: Blake2bSettings) -> None:
        size = settings.digest_size
        super().__init__(lambda data: hashlib.blake2b(data, digest_size=size).hexdigest())


class Blake3(_Hash):
    def __init__(self) -> None:
        blake3 = require("blake3", provider="blake3", extra="blake3").blake3
        super().__init__(lambda data: str(blake3(data).hexdigest()))
