"""The orchestrator's HTTP endpoint: a strict, minimal HTTP/1.1 server on ``asyncio``.

Why not a framework or uvicorn: the endpoint serves four ``GET`` routes with
small bodies to probes and scrapers.  A server dependency (uvicorn + h11, or
aiohttp) would cost the serverless cold start more than the routes are worth,
and every feature it brings (keep-alive, pipelining, chunked bodies, upgrades)
is attack surface this endpoint does not need.  ``asyncio.start_server`` with a
parser that accepts only the subset below leaves nothing to desynchronise:

* one request per connection, every response ``Connection: close`` with a
  ``Content-Length`` (no keep-alive, no pipelining, no chunked encoding);
* the request head (request line and headers) is at most ``max_head`` bytes
  (8 KiB; 431 beyond) and must arrive within ``read_timeout`` (5 s; 408 after),
  so a slow client cannot hold a connection open;
* at most ``max_connections`` (64) connections at once; one more is answered
  503 and closed at once;
* ``GET`` (and ``HEAD``) only, else 405; ``HTTP/1.0`` or ``HTTP/1.1`` only, else
  505; the target in origin form (``/path?query``), printable ASCII, at most
  2 KiB; a request body (``Content-Length`` other than 0, any
  ``Transfer-Encoding``) is 400; header names are tokens, folded lines, bare
  CR/LF/NUL and a repeated ``Host``/``Authorization``/``Content-Length`` are 400;
  ``HTTP/1.1`` without ``Host`` is 400.

A handler maps a ``Request`` to a ``Response``; a handler that raises is a 500
with a generic body (the error goes to the log, never to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from oneiric.core import get_logger
from oneiric.core.helpers import one_line

__all__ = ["HttpEndpoint", "Request", "Response"]

_log = get_logger("oneiric.runtime.http")

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")
_SINGLE = ("host", "authorization", "content-length")
MAX_TARGET = 2048


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: method, path (without the query), query, lower-cased headers."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler returns; ``Content-Length`` and ``Connection: close`` are added."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _text(status: int, detail: str = "") -> Response:
    body = (detail or HTTPStatus(status).phrase) + "\n"
    return Response(status, body.encode())


def parse_head(head: bytes) -> Request:
    """Parse a request head ending in CRLF CRLF; ``_BadRequest`` names what is wrong."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise _BadRequest(400, "malformed request line")
    method_b, target_b, version_b = parts
    if not _TOKEN.fullmatch(method_b):
        raise _BadRequest(400, "malformed method")
    if version_b not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _BadRequest(505 if version_b.startswith(b"HTTP/") else 400, "HTTP/1.1 only")
    try:
        target = target_b.decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest(400, "non-ASCII request target") from None
    if len(target) > MAX_TARGET:
        raise _BadRequest(414, "request target too long")
    if not _TARGET.fullmatch(target) or "#" in target:
        raise _BadRequest(400, "request target must be a path like /readyz")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name_b, colon, value_b = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name_b):
            raise _BadRequest(400, "malformed header line")
        value = value_b.strip(b" \t")
        if any(c in value for c in b"\r\n\x00"):
            raise _BadRequest(400, "control character in a header value")
        name = name_b.decode("ascii").lower()
        text = value.decode("latin-1")
        if name in headers:
            if name in _SINGLE:
                raise _BadRequest(400, f"repeated {name} header")
            headers[name] += ", " + text
        else:
            headers[name] = text
    if version_b == b"HTTP/1.1" and "host" not in headers:
        raise _BadRequest(400, "HTTP/1.1 request without Host")
    if "transfer-encoding" in headers or headers.get("content-length", "0") != "0":
        raise _BadRequest(400, "request bodies are not accepted")
    method = method_b.decode("ascii")
    path, _, query = target.partition("?")
    return Request(method, path, query, headers)


def _serialise(response: Response, *, head_only: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {response.status} {reason}",
             f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}",
             "Connection: close",
             "Cache-Control: no-store",
             "X-Content-Type-Options: nosniff",
             *(f"{name}: {value}" for name, value in response.headers)]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class HttpEndpoint:
    """Serve ``handler`` on a TCP address or a Unix socket until ``close()``."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_head: int = 8192,
        read_timeout: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self._handler = handler
        self.max_head = max_head
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[object]] = set()
        self._unix: Path | None = None
        self.address = ""

    async def start_tcp(self, host: str, port: int) -> str:
        """Listen on ``host:port`` (port 0: any free one); return ``http://host:port``."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=self.max_head, reuse_address=True)
        sock = self._server.sockets[0].getsockname()
        shown = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
        self.address = f"http://{shown}:{sock[1]}"
        return self.address

    async def start_unix(self, path: Path) -> str:
        """Listen on a Unix socket at ``path`` (mode 0600; a stale socket is replaced)."""
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None:
            if not stat.S_ISSOCK(mode):
                from oneiric.core import ConfigError

                raise ConfigError(f"--unix {str(path)!r} exists and is not a socket; "
                                  "remove it or pick another path")
            path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, str(path), limit=self.max_head)
        finally:
            os.umask(old)
        self._unix = path
        self.address = f"unix:{path}"
        return self.address

    async def close(self) -> None:
        """Stop accepting, give open connections a moment, then cut them."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=1.0)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(set(self._connections))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        if self._unix is not None:
            with contextlib.suppress(OSError):
                self._unix.unlink()
            self._unix = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        busy = len(self._connections) >= self.max_connections
        self._connections.add(task)
        try:
            if busy:
                response, head_only = _text(503, "too many connections"), False
            else:
                response, head_only = await self._respond(reader)
            writer.write(_serialise(response, head_only=head_only))
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
        except TimeoutError:
            return _text(408), False
        except asyncio.LimitOverrunError:
            return _text(431, f"request head over {self.max_head} bytes"), False
        try:
            request = parse_head(head)
        except _BadRequest as exc:
            return _text(exc.status, str(exc)), False
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"GET only\n", headers=(("Allow", "GET, HEAD"),)), False
        try:
            return await self._handler(request), request.method == "HEAD"
        except Exception as exc:
            _log.error("endpoint handler failed", path=request.path, error=one_line(exc))
            return _text(500), False
