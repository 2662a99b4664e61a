"""Ids: a version-4 UUID string without building a ``uuid.UUID``; this process's instance id.

Action invocations (idempotency keys) and events (ids, the dedupe key) each
need one per call; ``str(uuid.uuid4())`` costs about 2 µs, this about 0.8 µs,
from the same ``os.urandom`` bytes and in the same canonical form.  The
instance id (ARCHITECTURE §12) names this process to a fleet - a Redis
consumer, a control-plane reader - the same way in every package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["INSTANCE_ID_VARIABLE", "instance_id", "uuid4_text"]

#: The environment variable that names an instance (else ``<hostname>:<pid>``).
INSTANCE_ID_VARIABLE = "ONEIRIC_INSTANCE_ID"


def uuid4_text() -> str:
    """A new random UUID, version 4 and RFC 4122 variant, in canonical text form."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def instance_id(environ: Mapping[str, str] | None = None) -> str:
    """``ONEIRIC_INSTANCE_ID`` if set and not blank, else ``<hostname>:<pid>``.

    Read on every call (not cached): a forked worker has another pid, so it
    is another instance - a restart is a new instance too (§12).  ``environ``
    replaces ``os.environ`` (tests).
    """
    env = os.environ if environ is None else environ
    named = env.get(INSTANCE_ID_VARIABLE, "").strip()
    if named:
        return named
    # os.uname() is what gethostname() returns, without importing socket (not on Windows)
    if hasattr(os, "uname"):
        host = os.uname().nodename
    else:  # pragma: no cover - Windows
        import socket

        host = socket.gethostname()
    return f"{host}:{os.getpid()}"
