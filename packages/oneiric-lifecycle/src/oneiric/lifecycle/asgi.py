"""Oneiric in an ASGI application, with no framework dependency (pure ASGI).

``lifespan(app, host_factory)`` enters a ``Host`` at server startup and exits
it at shutdown, so the application's components live exactly as long as the
server; ``UnavailableMiddleware`` turns a paused, draining or unreachable
component (errors whose category is *unavailable*) into ``503`` with
``Retry-After`` instead of a ``500`` and a traceback, so load balancers and
clients back off and retry.  Works with Starlette, FastAPI or any ASGI app.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from oneiric.core import ConfigError, error_category, get_logger
from oneiric.core.helpers import one_line

if TYPE_CHECKING:
    from ._host import Host

__all__ = ["HOST_STATE_KEY", "UnavailableMiddleware", "lifespan"]

_log = get_logger("oneiric.lifecycle.asgi")

# ASGI's own types, spelled out (no dependency on asgiref or starlette).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
HostFactory = Callable[[], "Host | Awaitable[Host]"]

#: Where the running host is exposed: ``scope["state"][HOST_STATE_KEY]``
#: (Starlette/FastAPI: ``request.state.oneiric_host``).
HOST_STATE_KEY = "oneiric_host"


class _Lifespan:
    """The ASGI app ``lifespan()`` returns: handles ``lifespan``, passes the rest on."""

    def __init__(self, app: ASGIApp, host_factory: HostFactory) -> None:
        self.app = app
        self.host_factory = host_factory
        self.host: Host | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    made = self.host_factory()
                    host = await made if inspect.isawaitable(made) else made
                    await host.__aenter__()
                except Exception as exc:
                    text = f"{type(exc).__name__}: {one_line(exc)}"
                    _log.error("oneiric host failed to start", error=text)
                    await send({"type": "lifespan.startup.failed", "message": text})
                    return
                self.host = host
                state = scope.get("state")
                if state is not None:
                    state[HOST_STATE_KEY] = host
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                running, self.host = self.host, None
                try:
                    if running is not None:
                        await running.__aexit__(None, None, None)
                except Exception as exc:
                    text = f"{type(exc).__name__}: {one_line(exc)}"
                    await send({"type": "lifespan.shutdown.failed", "message": text})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def lifespan(app: ASGIApp, host_factory: HostFactory) -> ASGIApp:
    """Wrap ``app`` so the server's lifespan enters ``host_factory()``'s ``Host``.

    ``host_factory`` takes no arguments and returns an unentered ``Host`` (or
    an awaitable of one).  A failed start is reported as
    ``lifespan.startup.failed`` with the one-line reason, so the server exits
    instead of serving without components.  The wrapped ``app`` must not
    handle ``lifespan`` itself (Starlette/FastAPI: do not pass a lifespan there too).
    """
    return _Lifespan(app, host_factory)


class UnavailableMiddleware:
    """503 + ``Retry-After`` for errors whose category is *unavailable*.

    ``ComponentPaused``, ``ComponentDraining`` and the adapters'
    ``*UnavailableError`` are the operator's or the backend's decision, not a
    bug: the client should retry later.  Only errors raised before the
    response started are mapped (after that the status line is sent); every
    other exception propagates unchanged.
    """

    def __init__(self, app: ASGIApp, *, retry_after: int = 5) -> None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ConfigError(
                f"retry_after={retry_after!r}: expected a whole number of seconds >= 0"
            )
        self.app = app
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or error_category(exc) != "unavailable":
                raise
            retry_after = getattr(exc, "retry_after", None)
            seconds = retry_after if isinstance(retry_after, int) and retry_after >= 0 else (
                self.retry_after
            )
            body = b"503 Service Unavailable: the component is paused, draining or unreachable\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(seconds).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
