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

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import DomainBridge, Host
from oneiric.lifecycle.asgi import UnavailableMiddleware, lifespan


class Greeter:
    """The application's component: any object; ``health()`` is optional."""

    def greet(self, name: str) -> str:
        return f"hello, {name}"

    def health(self) -> bool:
        return True


def register(resolver: Resolver) -> None:
    """Called with the resolver once plugins and settings are loaded."""
    resolver.register(Candidate("adapter", "greeter", "builtin", Greeter))


def make_host() -> Host:
    # Settings from ONEIRIC_CONFIG (or ./settings); state (activity store,
    # status) in ONEIRIC_STATE_DIR — the same place `oneiric pause` writes.
    return Host(app=register, activate=["adapter/greeter"])


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
