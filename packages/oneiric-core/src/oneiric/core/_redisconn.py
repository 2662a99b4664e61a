"""One way to open a redis-py client and to say what went wrong with it.

The fleet's control plane, the runtime's checkpoint store and run queue (and
its Streams transport) all talk to Redis; each would otherwise choose its own
timeouts and word its own "unreachable" error.  redis-py is imported only when
a function here is called - ``oneiric.core`` does not depend on it; the
packages that call these do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ._candidate import validate_name
from ._errors import ConfigError, OneiricError
from ._redact import scrub_credentials
from ._text import one_line

__all__ = ["redis_client", "redis_errors", "redis_target"]

#: Seconds to establish a connection; a command's own timeout is the caller's choice.
CONNECT_TIMEOUT = 5.0


def redis_client(url: str, *, asyncio: bool = False,
                 socket_timeout: float | None = 10.0) -> Any:
    """A redis-py client for ``url`` (``redis.asyncio`` when ``asyncio``), timeouts set.

    ``socket_timeout`` must exceed the longest blocking read the caller makes
    (``XREAD BLOCK``); ``None`` waits forever - a frozen server is then never
    noticed, so pass it only for a reason.  (Left out, redis-py would use the
    connect timeout for reads too.)
    """
    options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT,
                               "health_check_interval": 30, "socket_timeout": socket_timeout}
    if asyncio:
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(url, **options)
    import redis

    return redis.Redis.from_url(url, **options)


def redis_target(
    what: str,
    url: str | None,
    client: Any,
    fleet: str,
    *,
    install: str,
    asyncio: bool = False,
    socket_timeout: float | None = 10.0,
) -> tuple[Any, str]:
    """Check the ``(url or client, fleet)`` every Redis-backed component takes; open the client.

    Returns ``(client, where)``, ``where`` naming the server without credentials
    for messages.  Each refusal is a one-line ``ConfigError`` naming ``what``:
    both or neither of ``url``/``client``, a fleet name that is not a valid
    name, redis-py missing (``install`` says what to install).
    """
    if (url is None) == (client is None):
        raise ConfigError(f"{what} needs url='redis://...' or client=, not both and not "
                          "neither")
    try:
        validate_name(fleet, "fleet")
    except OneiricError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if client is None:
        from importlib.util import find_spec

        if find_spec("redis") is None:
            raise ConfigError(f"{what} needs redis-py; pip install \"{install}\"")
        client = redis_client(str(url), asyncio=asyncio, socket_timeout=socket_timeout)
    return client, scrub_credentials(url) if url else "the given Redis client"


ErrorFactory = Callable[[str], OneiricError]


def _default(category: str) -> ErrorFactory:
    return lambda message: OneiricError(message, category=category)


@contextlib.contextmanager
def redis_errors(
    what: str,
    where: str,
    action: str,
    *,
    unavailable: ErrorFactory | None = None,
    failed: ErrorFactory | None = None,
) -> Iterator[None]:
    """redis-py errors as one line: ``<what> at <url without credentials>: cannot <action>``.

    Unreachable (connection refused, a timeout) -> ``unavailable(message)``
    (default: an ``OneiricError`` of category ``unavailable``, exit 5); any
    other Redis error -> ``failed(message)`` (default: ``invalid``, exit 4).
    """
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        make = unavailable or _default("unavailable")
        raise make(f"{what} at {scrub_credentials(where)}: cannot {action}: Redis unreachable "
                   f"({one_line(exc)}); check that it runs and the url") from None
    except redis.RedisError as exc:
        make = failed or _default("invalid")
        raise make(f"{what} at {scrub_credentials(where)}: cannot {action}: {one_line(exc)}; "
                   "check the server (Redis >= 6.2) and the user's ACL") from None
