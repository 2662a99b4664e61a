"""Oneiric in a FastAPI app: a dependency yields a lease; paused → 503 + Retry-After.

Run it::

    uvicorn web_fastapi:app --app-dir examples

then ``curl localhost:8000/`` → ``{"message": "hello, web"}``;
``oneiric pause adapter greeter`` → ``503`` with ``Retry-After: 5``;
``oneiric resume adapter greeter`` → ``200`` again.  See docs/web-app.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from web_greeter import Greeter, make_host

from oneiric.lifecycle import DomainBridge, Host
from oneiric.lifecycle.asgi import UnavailableMiddleware, lifespan


async def greeter(request: Request) -> AsyncIterator[Greeter]:
    """A lease for the request's duration: a swap or drain waits for it to end."""
    host: Host = request.state.oneiric_host
    async with DomainBridge[Greeter]("adapter", host.lifecycle).lease("greeter") as component:
        yield component


api = FastAPI()
# Inside FastAPI (its outermost error handler would answer 500 first).
api.add_middleware(UnavailableMiddleware, retry_after=5)


@api.get("/")
async def hello(component: Annotated[Greeter, Depends(greeter)]) -> dict[str, str]:
    return {"message": component.greet("web")}


# lifespan() owns the server's lifespan: the Host lives as long as the server.
app = lifespan(api, make_host)
