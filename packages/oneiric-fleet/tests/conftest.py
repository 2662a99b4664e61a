"""Each test owns a redis-server (``private_redis`` from oneiric.testing): kill it, freeze it,
restart it empty - what a fleet's instances must survive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from oneiric.fleet import FleetAdmin, FleetMember
from oneiric.testing import PrivateRedis


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def admin(private_redis: PrivateRedis) -> Iterator[FleetAdmin]:
    made = FleetAdmin(private_redis.url, fleet="shop")
    yield made
    made.close()


@pytest.fixture
async def member(private_redis: PrivateRedis) -> AsyncIterator[FleetMember]:
    made = FleetMember(private_redis.url, fleet="shop", instance="web-1", heartbeat=0.2)
    yield made
    await made.aclose()
