"""The demo's publisher side: a provider wheel and the signed manifest that delivers it.

Why apart from the tour (``_demo``): this is what a *publisher* does with
``oneiric manifest keygen`` and ``sign`` - build an artifact, hash it, sign a
payload - while the tour plays the *application* receiving it.  Imported only
when oneiric-remote (and PyNaCl) is installed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from oneiric.core.helpers import format_timestamp

if TYPE_CHECKING:
    from oneiric.remote import TrustedKey

__all__ = ["EDGE_MODULE", "Published", "publish_edge"]

EDGE_MODULE = '''"""A cache provider delivered by a signed manifest in `oneiric demo`."""


class EdgeCache:
    def __init__(self):
        self._data = {}

    async def get(self, key):
        return self._data.get(key)

    async def set(self, key, value, *, ttl=None):
        self._data[key] = value

    async def delete(self, key):
        return self._data.pop(key, None) is not None

    def health(self):
        return True
'''


@dataclass(frozen=True)
class Published:
    """What the publisher hands the application: the envelope, the key to trust, the wheel."""

    envelope: Path
    trusted: TrustedKey
    wheel: Path


def publish_edge(publish: Path) -> Published:
    """Build the ``edge`` cache wheel in ``publish`` and sign a manifest delivering it."""
    from nacl.signing import SigningKey

    from oneiric.remote import TrustedKey, sign_payload

    from ._wheel import build_wheel

    publish.mkdir()
    key = SigningKey.generate()  # `oneiric manifest keygen`
    trusted = TrustedKey.from_public(bytes(key.verify_key))
    wheel = build_wheel(publish, "oneiric-demo-edge", "1.0.0", {
        "oneiric_demo_edge/__init__.py": EDGE_MODULE,
    }, summary="a cache provider delivered by a signed manifest")
    data = wheel.read_bytes()
    moment = datetime.now(UTC).replace(microsecond=0)
    payload = {
        "_type": "oneiric.manifest", "spec_version": "1.0", "repository": "demo-edge",
        "version": 1, "issued_at": format_timestamp(moment, seconds=True),
        "expires": format_timestamp(moment + timedelta(days=1), seconds=True),
        "artifacts": {"edge": {"urls": [wheel.as_uri()],
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "size": len(data), "kind": "wheel"}},
        "components": [{"domain": "adapter", "key": "cache", "provider": "edge",
                        "factory": "oneiric_demo_edge:EdgeCache", "artifact": "edge",
                        "priority": 20, "description": "edge cache from a signed manifest"}],
    }
    envelope = publish / "manifest.json"
    envelope.write_bytes(sign_payload(payload, [key]))  # `oneiric manifest sign`
    return Published(envelope=envelope, trusted=trusted, wheel=wheel)
