"""oneiric-adapters-storage: put/get ops/s per provider, and the adapter's overhead.

For each live provider the same workload runs through the adapter and through the
raw client it wraps (obstore for s3/azure, gcloud-aio-storage for gcs),
interleaved in the same run against the same real server; the ratio
adapter/raw is the overhead (ops/s, so a ratio < 1 means the adapter is slower).
local and memory have no raw client and report ops/s only.

Workload: 1 KiB objects, 16 requests in flight, 400 puts then 400 gets; median
of 3 repeats.  Servers: ``bash .ci/services/storage.sh start`` then source its
env file.  Run: ``python benchmarks/bench_storage.py [--ops N] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from oneiric.adapters.storage._gcs import GCSStorage
from oneiric.adapters.storage._local import LocalStorage
from oneiric.adapters.storage._memory import MemoryStorage
from oneiric.adapters.storage._obstore import create_azure, create_s3
from oneiric.adapters.storage._settings import (
    AzureSettings,
    GCSSettings,
    LocalSettings,
    S3Settings,
)

PAYLOAD = os.urandom(1024)
INFLIGHT = 16


async def _rate(n: int, op: Callable[[int], Awaitable[Any]]) -> float:
    gate = asyncio.Semaphore(INFLIGHT)

    async def one(i: int) -> None:
        async with gate:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def _env(name: str) -> str | None:
    return os.environ.get(name)


async def _adapters(prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"memory": MemoryStorage()}
    local = LocalStorage(LocalSettings(root=tempfile.mkdtemp(prefix="bench-storage-")))
    out["local"] = local
    if _env("ONEIRIC_TEST_S3_ENDPOINT"):
        out["s3"] = create_s3(S3Settings(
            bucket=_env("ONEIRIC_TEST_S3_BUCKET") or "oneiric-test",
            endpoint=_env("ONEIRIC_TEST_S3_ENDPOINT"), allow_http=True, prefix=prefix,
            access_key_id=_env("ONEIRIC_TEST_S3_ACCESS_KEY"),
            secret_access_key=_env("ONEIRIC_TEST_S3_SECRET_KEY"),
        ))
    if _env("ONEIRIC_TEST_AZURITE_ENDPOINT"):
        out["azure"] = create_azure(AzureSettings(
            container=_env("ONEIRIC_TEST_AZURITE_CONTAINER") or "oneiric-test",
            account=_env("ONEIRIC_TEST_AZURITE_ACCOUNT") or "devstoreaccount1",
            account_key=_env("ONEIRIC_TEST_AZURITE_KEY"),
            endpoint=_env("ONEIRIC_TEST_AZURITE_ENDPOINT"), allow_http=True, prefix=prefix,
        ))
    if _env("ONEIRIC_TEST_GCS_ENDPOINT"):
        out["gcs"] = GCSStorage(GCSSettings(
            bucket=_env("ONEIRIC_TEST_GCS_BUCKET") or "oneiric-test",
            endpoint=_env("ONEIRIC_TEST_GCS_ENDPOINT"), allow_http=True, prefix=prefix,
        ))
    for storage in out.values():
        await storage.init()
    return out


def _raw(name: str, adapter: Any, prefix: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(put, get) on the raw client with the same store/session the adapter built."""
    if name in ("s3", "azure"):
        import obstore

        store = adapter._store

        async def put(path: str) -> None:
            await obstore.put_async(store, path, PAYLOAD, use_multipart=False)

        async def get(path: str) -> bytes:
            return bytes(await (await obstore.get_async(store, path)).bytes_async())

        return put, get
    client, bucket = adapter._client, adapter.settings.bucket

    async def gput(path: str) -> None:
        await client.upload(bucket, f"{prefix}/{path}", PAYLOAD, metadata={"contentType": "x/y"})

    async def gget(path: str) -> bytes:
        return bytes(await client.download(bucket, f"{prefix}/{path}"))

    return gput, gget


def _workload(storage: Any, raw: Any, r: int) -> list[tuple[str, Callable[[int], Any]]]:
    """Adapter and raw calls interleaved, each on its own key range."""
    steps: list[tuple[str, Callable[[int], Any]]] = [
        ("put", lambda i: storage.put(f"a{r}/{i}", PAYLOAD)),
        ("get", lambda i: storage.get(f"a{r}/{i}")),
    ]
    if raw:
        steps += [("raw put", lambda i: raw[0](f"b{r}/{i}")),
                  ("raw get", lambda i: raw[1](f"b{r}/{i}"))]
    return steps


async def main(ops: int, repeats: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    stores = await _adapters(prefix)
    rows = []
    try:
        for name, storage in stores.items():
            samples: dict[str, list[float]] = {"put": [], "get": [], "raw put": [], "raw get": []}
            raw = _raw(name, storage, prefix) if name in ("s3", "azure", "gcs") else None
            for r in range(repeats):
                for key, op in _workload(storage, raw, r):
                    samples[key].append(await _rate(ops, op))
            med = {k: statistics.median(v) for k, v in samples.items() if v}
            rows.append((name, med))
    finally:
        for storage in stores.values():
            await storage.cleanup()
    print("| provider | put ops/s | get ops/s | raw client put | raw client get | "
          "adapter/raw put | adapter/raw get |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, med in rows:
        raw_put, raw_get = med.get("raw put"), med.get("raw get")
        cells = [f"{med['put']:,.0f}", f"{med['get']:,.0f}",
                 f"{raw_put:,.0f}" if raw_put else "—", f"{raw_get:,.0f}" if raw_get else "—",
                 f"{med['put'] / raw_put:.2f}" if raw_put else "—",
                 f"{med['get'] / raw_get:.2f}" if raw_get else "—"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.repeats))
    sys.exit(0)
