"""oneiric-adapters-cache under oneiric-lifecycle: live hot swaps, failed activations, no extras.

Cross-package (core + lifecycle + cache), so it lives in the top-level tests/.
Live parts use the servers of ``.ci/services/cache.sh`` (``ONEIRIC_TEST_REDIS_URL``,
``ONEIRIC_TEST_MEMCACHED``): they skip locally without them and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from oneiric.core import Resolver, SwapError, load_plugins, load_settings
from oneiric.lifecycle import DomainBridge, LifecycleConfig, LifecycleManager
from oneiric.testing import apoll_until, free_port, fresh_venv, local_wheel, require_live

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("ONEIRIC_TEST_REDIS_URL", "")
    require_live(bool(url), "redis at ONEIRIC_TEST_REDIS_URL")
    return url


@pytest.fixture
def memcached_address() -> tuple[str, int]:
    address = os.environ.get("ONEIRIC_TEST_MEMCACHED", "")
    require_live(bool(address), "memcached at ONEIRIC_TEST_MEMCACHED")
    host, _, port = address.rpartition(":")
    return host, int(port)


def _settings(tmp: Path, redis_url: str, memcached: tuple[str, int]) -> Any:
    """Settings with one fresh namespace for both servers and fast failure timeouts."""
    namespace = f"lifecycle-{uuid.uuid4().hex[:12]}"
    config = tmp / "settings"
    config.mkdir()
    (config / "adapters.toml").write_text(
        textwrap.dedent(
            f"""
            [provider_settings.cache.memory]
            namespace = "{namespace}"

            [provider_settings.cache.redis]
            url = "{redis_url}"
            namespace = "{namespace}"
            retries = 0
            timeouts = {{ connect = 1.0, operation = 2.0 }}

            [provider_settings.cache.memcached]
            host = "{memcached[0]}"
            port = {memcached[1]}
            namespace = "{namespace}"
            timeouts = {{ connect = 1.0, operation = 2.0 }}
            """
        )
    )
    return load_settings(config)


@pytest.fixture
async def lifecycle_for(tmp_path: Path) -> AsyncIterator[Callable[..., LifecycleManager]]:
    managers: list[LifecycleManager] = []

    def make(settings: Any) -> LifecycleManager:
        resolver = Resolver()
        report = load_plugins(resolver)
        assert not [e for e in report.errors if e.distribution == "oneiric-adapters-cache"]
        lm = LifecycleManager(
            resolver,
            settings=settings,
            config=LifecycleConfig(grace_period=0.1),
            state_dir=tmp_path / "state",
            write_status=False,
        )
        managers.append(lm)
        return lm

    yield make
    for lm in managers:
        await lm.shutdown()


@pytest.mark.anyio
@pytest.mark.live
async def test_hot_swap_memory_redis_memcached_under_load_fails_no_operation(
    tmp_path: Path,
    redis_url: str,
    memcached_address: tuple[str, int],
    lifecycle_for: Callable[..., LifecycleManager],
) -> None:
    lm = lifecycle_for(_settings(tmp_path, redis_url, memcached_address))
    first = await lm.activate("adapter", "cache", "memory")
    bridge: DomainBridge[Any] = DomainBridge("adapter", lm)
    stop = asyncio.Event()
    done = {"ops": 0}
    failures: list[str] = []
    seen: set[str] = set()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            key, value = f"w{n}-{i % 50}", f"{n}:{i}".encode()
            try:
                async with bridge.lease("cache") as cache:
                    seen.add(type(cache).__name__)
                    await cache.set(key, value, ttl=60)
                    got = await cache.get(key)
                    if got != value:
                        failures.append(f"{type(cache).__name__}: {key} read {got!r}")
                    await cache.incr(f"count-{n}")
                done["ops"] += 3
            except Exception as exc:  # any failure is what this test counts
                failures.append(f"{type(exc).__name__}: {exc}")
            i += 1
            await asyncio.sleep(0)

    workers = [asyncio.create_task(worker(n)) for n in range(8)]

    async def progressed(past: int) -> bool:
        return done["ops"] >= past + 300

    try:
        await apoll_until(lambda: progressed(0), message="load on memory")
        result = await lm.swap("adapter", "cache", "redis")
        assert (result.old_provider, result.new_provider) == ("memory", "redis")
        mark = done["ops"]
        await apoll_until(lambda: progressed(mark), message="load on redis")
        result = await lm.swap("adapter", "cache", "memcached")
        assert (result.old_provider, result.new_provider) == ("redis", "memcached")
        mark = done["ops"]
        await apoll_until(lambda: progressed(mark), message="load on memcached")
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert seen == {"MemoryCache", "RedisCache", "MemcachedCache"}
    current = bridge.handle("cache").instance
    assert type(current).__name__ == "MemcachedCache" and current is not first
    await current.clear()


@pytest.mark.anyio
@pytest.mark.live
@pytest.mark.parametrize("provider", ["redis", "memcached"])
async def test_server_down_at_activation_keeps_the_previous_provider(
    tmp_path: Path, provider: str, lifecycle_for: Callable[..., LifecycleManager]
) -> None:
    closed = free_port()
    lm = lifecycle_for(_settings(tmp_path, f"redis://127.0.0.1:{closed}/0", ("127.0.0.1", closed)))
    memory = await lm.activate("adapter", "cache", "memory")
    await memory.set("k", b"still here")
    with pytest.raises(SwapError) as info:
        await lm.swap("adapter", "cache", provider)
    message = str(info.value)
    assert "\n" not in message and "unavailable" in message
    bridge: DomainBridge[Any] = DomainBridge("adapter", lm)
    assert bridge.handle("cache").instance is memory
    async with bridge.lease("cache") as cache:
        assert await cache.get("k") == b"still here"


@pytest.mark.slow
def test_fresh_venv_without_extras(tmp_path: Path) -> None:
    """core + lifecycle + cache only: memory serves, redis is listed, activating it fails
    in one line naming the extra, and memory keeps serving."""
    wheels = [local_wheel(PACKAGES / n, tmp_path / "wheels") for n in
              ("oneiric-core", "oneiric-lifecycle", "oneiric-adapters-cache")]
    python = fresh_venv(tmp_path / "venv", *wheels)
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from oneiric.core import Resolver, SelectionUnavailableError, SwapError, load_plugins
        from oneiric.lifecycle import DomainBridge, LifecycleManager

        async def main():
            resolver = Resolver()
            load_plugins(resolver)
            lm = LifecycleManager(resolver, write_status=False, state_dir=sys.argv[1])
            out = {"providers": sorted(c.provider for c in resolver.candidates("adapter", "cache"))}
            memory = await lm.activate("adapter", "cache", "memory")
            await memory.set("k", b"v")
            try:
                await lm.swap("adapter", "cache", "redis")
                out["swap"] = "bound"
            except (SwapError, SelectionUnavailableError) as exc:  # vetoed: redis not installed
                out["swap"] = str(exc)
            bridge = DomainBridge("adapter", lm)
            async with bridge.lease("cache") as cache:
                out["serving"] = type(cache).__name__
                out["value"] = (await cache.get("k")).decode()
            out["clients"] = [m for m in ("redis", "emcache") if m in sys.modules]
            await lm.shutdown()
            print(json.dumps(out))

        asyncio.run(main())
        """
    )
    proc = subprocess.run(
        [str(python), "-c", script, str(tmp_path / "state")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"memory", "redis", "memcached"} <= set(out["providers"])
    assert "\n" not in out["swap"]
    assert 'pip install "oneiric-adapters-cache[redis]"' in out["swap"]
    assert out["serving"] == "MemoryCache" and out["value"] == "v"
    assert out["clients"] == []
