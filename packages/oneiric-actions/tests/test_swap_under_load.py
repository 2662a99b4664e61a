"""Issue #12 acceptance: swap ``compression.encode`` gzip -> zstd while 4 tasks invoke it.

0 failed invocations, and each invocation's output decodes with the provider
that produced it (``result.provider``), never with the other one.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest

from oneiric.actions import Actions

pytestmark = pytest.mark.anyio

WORKERS = 4


def _decode(provider: str, data: bytes) -> bytes:
    if provider == "gzip":
        return gzip.decompress(data)
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)


async def test_swap_gzip_to_zstd_and_back_under_load(make_actions: Any) -> None:
    pytest.importorskip("zstandard")
    actions: Actions = await make_actions()
    lifecycle = actions.lifecycle
    await lifecycle.activate("action", "compression.encode")
    stop = asyncio.Event()
    outcomes: list[tuple[str, bytes, bytes]] = []
    failures: list[BaseException] = []

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            payload = f"worker {n} call {i} ".encode() * 20
            i += 1
            try:
                result = await actions.invoke("compression.encode", {"data": payload})
            except Exception as exc:  # counted, not raised: the figure is the count
                failures.append(exc)
                continue
            assert result.provider is not None
            outcomes.append((result.provider, payload, result.value["data"]))
            await asyncio.sleep(0)  # let the swapper run between calls

    tasks = [asyncio.create_task(worker(n)) for n in range(WORKERS)]

    async def calls_after(count: int) -> None:
        target = len(outcomes) + count
        while len(outcomes) < target:
            await asyncio.sleep(0.001)

    swaps = 0
    for provider in ("zstd", "gzip", "zstd", "gzip", "zstd"):
        await calls_after(50)
        result = await lifecycle.swap("action", "compression.encode", provider)
        assert result.new_provider == provider
        swaps += 1
    await calls_after(50)
    stop.set()
    await asyncio.gather(*tasks)

    assert failures == []
    by_provider = {"gzip": 0, "zstd": 0}
    for provider, payload, data in outcomes:
        assert _decode(provider, data) == payload, provider
        by_provider[provider] += 1
    assert by_provider["gzip"] > 0 and by_provider["zstd"] > 0
    assert swaps == 5
    print(f"\n{len(outcomes)} invocations by {WORKERS} tasks across {swaps} swaps, "
          f"0 failed; {by_provider}")
