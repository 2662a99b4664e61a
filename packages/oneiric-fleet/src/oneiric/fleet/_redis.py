"""Connecting to the fleet's Redis and turning its failures into one-line fleet errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from oneiric.core.helpers import one_line, scrub_credentials

from ._errors import FleetError, FleetUnavailable

__all__ = ["connect", "redis_errors"]


def connect(url: str, *, asyncio: bool = False) -> Any:
    """A redis-py client for ``url`` (sync, or ``redis.asyncio``), with timeouts set."""
    options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
    if asyncio:
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(url, **options)
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, **options)


@contextlib.contextmanager
def redis_errors(where: str, action: str) -> Iterator[None]:
    """Raise ``FleetUnavailable``/``FleetError`` naming ``where`` (credentials scrubbed)."""
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise FleetUnavailable(
            f"fleet Redis at {scrub_credentials(where)}: cannot {action}: unreachable "
            f"({one_line(exc)}); check that it runs and the url") from None
    except redis.RedisError as exc:
        raise FleetError(
            f"fleet Redis at {scrub_credentials(where)}: cannot {action}: {one_line(exc)}; "
            "check the server (Redis >= 6.2) and the user's ACL") from None
