"""Small providers the demo registers in code (the way an application would).

Why built in: ``oneiric demo`` must work with only core + lifecycle + cli
installed; when oneiric-adapters-cache is absent, ``DemoCache`` also stands in
for its ``memory`` provider.  ``FlakyCache`` fails its health check on purpose
to show a swap being rolled back.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["DemoCache", "FlakyCache", "SlowStep"]


class DemoCache:
    """A dict-backed async cache with the cache protocol's core methods."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self.closed = False

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._data[key] = value

    async def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    async def exists(self, key: str) -> bool:
        return key in self._data

    async def clear(self) -> None:
        self._data.clear()

    def health(self) -> bool:
        return not self.closed

    async def cleanup(self) -> None:
        self.closed = True


class _Report:
    """What ``health()`` returns (any object with ``ok`` and ``detail`` will do)."""

    def __init__(self, ok: bool, detail: str) -> None:
        self.ok = ok
        self.detail = detail


class FlakyCache(DemoCache):
    """Starts, then reports unhealthy: a swap to it must roll back."""

    async def init(self) -> None:
        await asyncio.sleep(0)

    def health(self) -> Any:
        return _Report(False, "backend unreachable (simulated by the demo)")


class SlowStep:
    """A workflow step that takes a moment (so the demo can kill a run mid-node).

    Imports nothing from oneiric-actions at module level: this module is
    imported by the demo with only core + lifecycle + cli installed.
    """

    async def invoke(self, payload: Any, context: Any) -> Any:
        await asyncio.sleep(0.3)
        return {"step": context.node_id, "attempt_key": context.idempotency_key,
                "got": payload}

