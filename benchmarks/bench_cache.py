"""oneiric-adapters-cache: get/set throughput per provider and the adapter's overhead.

For each provider, against its real server (``ONEIRIC_TEST_REDIS_URL``,
``ONEIRIC_TEST_MEMCACHED``, as started by ``.ci/services/cache.sh start``):

1. ``get`` of a present 100-byte value and ``set`` of one, through the adapter vs
   the adapter's own raw client object (same connection pool and settings) on the
   same server key, interleaved in the same run (sequential awaits: the latency
   path), so the ratio is the adapter's code and nothing else;
2. memory: the adapter vs a plain ``dict`` read behind an ``async def``.

Figures are microseconds per operation (median of interleaved repeats; ops/s is
1e6 / value); the ratio is the adapter's overhead over the raw client.  Target:
redis ``get`` <= 1.10x.  A provider whose server or client is missing is
reported as skipped, not failed.

Run: ``bash .ci/services/cache.sh start && source "$ONEIRIC_SERVICES_ENV" &&
python benchmarks/bench_cache.py [--json] [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, interleaved, median, parser, report

from oneiric.adapters.cache import MemoryCache

US = 1e6
VALUE = bytes(range(100))


def _sampler(
    runner: asyncio.Runner, op: Callable[[], Awaitable[Any]], number: int
) -> Callable[[], float]:
    """One sample: µs per ``await op()`` over ``number`` sequential calls."""

    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await op()
        return (time.perf_counter() - start) / number * US

    return lambda: runner.run(loop())


def _pair(
    provider: str,
    what: str,
    samples: dict[str, list[float]],
    client: str,
    *,
    check: float | None,
    repeats: int,
    number: int,
) -> Result:
    value = median(samples[f"adapter {what}"])
    return Result(
        f"{provider} {what} (adapter)",
        value,
        "µs",
        median(samples[f"raw {what}"]),
        f"{client} {what}",
        target=f"<= {check:.2f}x the raw client" if check else "",
        check=("ratio", check) if check else None,
        note=(
            f"{US / value:,.0f} ops/s; median of {repeats} interleaved x {number:,} sequential "
            "awaits"
        ),
        samples=samples[f"adapter {what}"],
    )


def bench_redis(runner: asyncio.Runner, repeats: int, number: int) -> list[Result]:
    url = os.environ.get("ONEIRIC_TEST_REDIS_URL")
    try:
        import redis.asyncio as raw_redis

        from oneiric.adapters.cache import RedisCache
    except ImportError:
        return [Result("redis", 0.0, "", note="skipped: redis-py not installed")]
    if not url:
        return [Result("redis", 0.0, "", note="skipped: ONEIRIC_TEST_REDIS_URL not set")]
    cache = RedisCache({"url": url, "namespace": "bench"})
    runner.run(cache.init())
    raw: raw_redis.Redis = cache._client  # the very client the adapter wraps
    key = "bench-key"
    full = f"oneiric:bench:{key}".encode()
    runner.run(cache.set(key, VALUE))
    samples = interleaved(
        {
            "adapter get": _sampler(runner, lambda: cache.get(key), number),
            "raw get": _sampler(runner, lambda: raw.get(full), number),
            "adapter set": _sampler(runner, lambda: cache.set(key, VALUE), number),
            "raw set": _sampler(runner, lambda: raw.set(full, VALUE), number),
        },
        repeats,
    )
    runner.run(cache.clear())
    runner.run(cache.cleanup())
    kw = {"repeats": repeats, "number": number}
    return [
        _pair("redis", "get", samples, "redis-py", check=1.10, **kw),
        _pair("redis", "set", samples, "redis-py", check=1.10, **kw),
    ]


def bench_memcached(runner: asyncio.Runner, repeats: int, number: int) -> list[Result]:
    address = os.environ.get("ONEIRIC_TEST_MEMCACHED")
    try:
        import emcache

        from oneiric.adapters.cache import MemcachedCache
    except ImportError:
        return [Result("memcached", 0.0, "", note="skipped: emcache not installed")]
    if not address:
        return [Result("memcached", 0.0, "", note="skipped: ONEIRIC_TEST_MEMCACHED not set")]
    host, _, port = address.rpartition(":")
    cache = MemcachedCache({"host": host, "port": int(port), "namespace": "bench"})
    runner.run(cache.init())
    raw: emcache.Client = cache._client  # the very client the adapter wraps
    key = "bench-key"
    runner.run(cache.set(key, VALUE))
    raw_key = cache._key(key)  # the server key the adapter uses
    samples = interleaved(
        {
            "adapter get": _sampler(runner, lambda: cache.get(key), number),
            "raw get": _sampler(runner, lambda: raw.get(raw_key), number),
            "adapter set": _sampler(runner, lambda: cache.set(key, VALUE), number),
            "raw set": _sampler(runner, lambda: raw.set(raw_key, VALUE), number),
        },
        repeats,
    )
    runner.run(cache.clear())
    runner.run(cache.cleanup())
    kw = {"repeats": repeats, "number": number}
    results = [
        _pair("memcached", "get", samples, "emcache", check=None, **kw),
        _pair("memcached", "set", samples, "emcache", check=None, **kw),
    ]
    results[0].note += (
        "; the adapter reads the namespace generation in the same request (get_many of 2 keys)"
    )
    results[1].note += "; the adapter re-reads the generation first (2 round trips by design)"
    return results


def bench_memory(runner: asyncio.Runner, repeats: int, number: int) -> list[Result]:
    cache = MemoryCache({"max_entries": 10_000})
    table: dict[str, bytes] = {}

    async def dict_get() -> bytes | None:
        return table.get("bench-key")

    async def dict_set() -> None:
        table["bench-key"] = VALUE

    runner.run(cache.set("bench-key", VALUE))
    table["bench-key"] = VALUE
    samples = interleaved(
        {
            "adapter get": _sampler(runner, lambda: cache.get("bench-key"), number),
            "raw get": _sampler(runner, dict_get, number),
            "adapter set": _sampler(runner, lambda: cache.set("bench-key", VALUE), number),
            "raw set": _sampler(runner, dict_set, number),
        },
        repeats,
    )
    kw = {"repeats": repeats, "number": number}
    return [
        _pair("memory", "get", samples, "async dict", check=None, **kw),
        _pair("memory", "set", samples, "async dict", check=None, **kw),
    ]


def main() -> int:
    args = parser(__doc__).parse_args()
    repeats = 3 if args.quick else 15
    number = 1_000 if args.quick else 5_000
    results: list[Result] = []
    with asyncio.Runner() as runner:
        results += bench_redis(runner, repeats, number)
        results += bench_memcached(runner, repeats, number)
        results += bench_memory(runner, repeats, number * 20)
    return report("oneiric-adapters-cache", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
