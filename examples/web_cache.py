"""A Starlette app whose every request does a real cache round trip on ``adapter/cache``.

The provider (memory, redis, memcached from ``oneiric-adapters-cache``) is
whatever the settings select — with nothing selected the embedded ``memory``
wins — and the operator moves it live from another process::

    ONEIRIC_CONFIG=settings uvicorn web_cache:app --app-dir examples
    curl localhost:8000/                    # {"provider": "memory", "hits": 1, ...}
    oneiric swap adapter cache redis        # needs [provider_settings.cache.redis] url
    curl localhost:8000/                    # {"provider": "redis", ...}, no failed request
    oneiric pause adapter cache             # 503 + Retry-After: 5 until 'oneiric resume'
    oneiric health --domain adapter --key cache   # probed every [lifecycle] health_interval

Settings come from ``ONEIRIC_CONFIG`` (else ``./settings``), state (activity
store, status, selection overlay) from ``ONEIRIC_STATE_DIR``: the CLI must see
the same two.  ``tests/test_web_load.py`` runs this under uvicorn and load.
"""

from __future__ import annotations

import json
import uuid

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oneiric.adapters.cache import Cache
from oneiric.lifecycle import DomainBridge, Host
from oneiric.lifecycle.asgi import UnavailableMiddleware, lifespan


def make_host() -> Host:
    """Settings from ONEIRIC_CONFIG (or ./settings); ``adapter/cache`` active at startup
    so the first request does not pay for the connection."""
    return Host(activate=["adapter/cache"])


async def visit(request: Request) -> JSONResponse:
    host: Host = request.state.oneiric_host
    # The lease pins one instance for the whole round trip: a swap binds the new
    # provider for later requests and cleans the old one up only after this ends.
    # Paused, draining or an unreachable server (CacheUnavailableError) → 503.
    async with DomainBridge[Cache]("adapter", host.lifecycle).lease("cache") as cache:
        hits = await cache.incr("hits")
        key = f"request:{uuid.uuid4().hex}"
        written = json.dumps({"hits": hits}).encode()
        await cache.set(key, written, ttl=60)
        read = await cache.get(key)
        await cache.delete(key)
        provider = str(getattr(cache, "provider", type(cache).__name__))
    if read != written:
        # A cache that loses a value it just stored is a bug worth a 500, not a 503.
        return JSONResponse(
            {"provider": provider, "error": f"read back {read!r}, wrote {written!r}"},
            status_code=500,
        )
    return JSONResponse({"provider": provider, "hits": hits, "roundtrip": True})


# As in web_starlette.py: UnavailableMiddleware inside Starlette, lifespan() outside.
app = lifespan(
    Starlette(
        routes=[Route("/", visit)],
        middleware=[Middleware(UnavailableMiddleware, retry_after=5)],
    ),
    make_host,
)
