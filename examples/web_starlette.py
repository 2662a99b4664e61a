"""Oneiric in a Starlette app: one ``Host`` for the server's lifetime, 503 while paused.

Run it::

    uvicorn web_starlette:app --app-dir examples

then ``curl localhost:8000/`` → ``{"message": "hello, web"}``;
``oneiric pause adapter greeter`` → ``503`` with ``Retry-After: 5``;
``oneiric resume adapter greeter`` → ``200`` again.  See docs/web-app.md.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from web_greeter import Greeter, make_host

from oneiric.lifecycle import DomainBridge, Host
from oneiric.lifecycle.asgi import UnavailableMiddleware, lifespan


async def hello(request: Request) -> JSONResponse:
    host: Host = request.state.oneiric_host
    # A lease: a paused key raises ComponentPaused here → 503 by the middleware.
    async with DomainBridge[Greeter]("adapter", host.lifecycle).lease("greeter") as greeter:
        return JSONResponse({"message": greeter.greet("web")})


# UnavailableMiddleware goes *inside* Starlette (its outermost error handler
# would answer 500 first); lifespan() goes outside: it owns the server's lifespan.
app = lifespan(
    Starlette(
        routes=[Route("/", hello)],
        middleware=[Middleware(UnavailableMiddleware, retry_after=5)],
    ),
    make_host,
)
