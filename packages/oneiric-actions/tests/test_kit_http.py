"""``http.fetch`` (provider ``httpx``) against real servers on 127.0.0.1.

An HTTPS server with a throwaway CA (trustme) and a plain-HTTP one record
every request (method, path, headers, body); routes are per test.  Every
refusal is checked twice: the error, and that the server saw nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest
import trustme

from oneiric.actions import ActionContext, ActionFailed, ActionInputError, ActionTimeout
from oneiric.actions._kits.http import (
    FetchError,
    FetchSettings,
    HostAllowlist,
    HttpFetch,
    RedirectRefused,
    ResponseTooLarge,
)
from oneiric.core import ConfigError, RetryPolicy
from oneiric.lifecycle import DomainBridge

pytestmark = pytest.mark.anyio

KEY = "http.fetch"


# ------------------------------------------------------------------ servers


class Seen(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[["_Handler", int], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                     body)
            )
            count = sum(1 for s in self.server.seen if s.path.split("?", 1)[0] == path)
        route = self.server.routes.get(path)
        try:
            if route is None:
                reply(self, 404, b"not found")
            else:
                route(self, count)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def reply(
    handler: BaseHTTPRequestHandler,
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ctx: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if ctx is not None:
            self.socket = ctx.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # slow routes wait for it (set at teardown)

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class Server:
    """A real server on 127.0.0.1 (TLS when given a CA) with per-test routes."""

    def __init__(self, ca: trustme.CA | None) -> None:
        ctx = None
        if ca is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self._server = _Server(ctx)
        self.port = self._server.server_address[1]
        self.base = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        return self._server.seen

    @property
    def release(self) -> threading.Event:
        return self._server.release

    def route(self, path: str, route: Route) -> str:
        self._server.routes[path] = route
        return self.base + path

    def serve(self, path: str, body: bytes = b"", status: int = 200,
              headers: dict[str, str] | None = None) -> str:
        return self.route(path, lambda h, _n: reply(h, status, body, headers))

    def close(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls(ca: trustme.CA) -> Iterator[Server]:
    server = Server(ca)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def plain() -> Iterator[Server]:
    server = Server(None)
    try:
        yield server
    finally:
        server.close()


def toml(ca_path: str, **settings: Any) -> str:
    """The provider settings table (``allowed_hosts = ["127.0.0.1"]`` and the test CA)."""
    values = {"allowed_hosts": ["127.0.0.1"], "verify": ca_path, **settings}
    lines = ['[action.provider_settings."http.fetch".httpx]']
    lines += [f"{name} = {json.dumps(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def context(seconds: float = 30.0, key: str = "idem-1") -> ActionContext:
    return ActionContext(KEY, "httpx", 1, time.monotonic() + seconds, key)


@pytest.fixture
async def direct(ca_path: str) -> AsyncIterator[Callable[..., HttpFetch]]:
    """Build ``HttpFetch`` instances directly; each is cleaned up after the test."""
    built: list[HttpFetch] = []

    def make(**settings: Any) -> HttpFetch:
        values = {"allowed_hosts": ["127.0.0.1"], "verify": ca_path, **settings}
        provider = HttpFetch(FetchSettings(**values))
        built.append(provider)
        return provider

    yield make
    for provider in built:
        await provider.cleanup()


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


# ----------------------------------------------------------------- results


async def test_get_json_through_actions(make_actions: Any, tls: Server, ca_path: str) -> None:
    url = tls.serve("/data", b'{"a": [1, 2], "ok": true}', headers={
        "Content-Type": "application/json; charset=utf-8", "X-Trace": "t1"})
    actions = await make_actions(toml(ca_path))
    result = await actions.invoke(KEY, {"url": url})
    assert result.provider == "httpx"
    assert result.value["status"] == 200
    assert result.value["json"] == {"a": [1, 2], "ok": True}
    assert "body" not in result.value
    assert result.value["headers"]["x-trace"] == "t1"
    assert tls.seen[0].method == "GET"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"hello \xc3\xa9", "text/plain", "hello \u00e9"),
        (b"caf\xe9", "text/plain; charset=latin-1", "caf\u00e9"),
        (b"\xff\xfe\x00binary", "application/octet-stream", b"\xff\xfe\x00binary"),
        (b"caf\xe9", "text/plain; charset=no-such-codec", b"caf\xe9"),
        (b"", "application/json", ""),
    ],
    ids=["utf8-text", "declared-charset", "binary-bytes", "unknown-charset-bytes", "empty-json"],
)
async def test_body_text_or_bytes(
    direct: Callable[..., HttpFetch], tls: Server, body: bytes, content_type: str,
    expected: str | bytes,
) -> None:
    url = tls.serve("/b", body, headers={"Content-Type": content_type})
    value = await direct().invoke({"url": url}, context())
    assert value["body"] == expected


async def test_post_json_and_body_are_sent(direct: Callable[..., HttpFetch], tls: Server) -> None:
    url = tls.serve("/in", b"ok", status=201)
    provider = direct()
    value = await provider.invoke(
        {"method": "post", "url": url, "json": {"x": [1, "y"]}, "headers": {"X-One": "1"}},
        context(),
    )
    assert value == {"status": 201, "headers": value["headers"], "body": "ok"}
    await provider.invoke({"method": "PUT", "url": url, "body": {"base64": "AAEC"}}, context())
    first, second = tls.seen
    assert (first.method, json.loads(first.body)) == ("POST", {"x": [1, "y"]})
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-one"] == "1"
    assert (second.method, second.body) == ("PUT", b"\x00\x01\x02")


async def test_non_2xx_is_a_result_not_an_error(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    url = tls.serve("/gone", b"nope", status=503)
    value = await direct().invoke({"url": url}, context())
    assert (value["status"], value["body"]) == (503, "nope")


async def test_head_has_an_empty_body(direct: Callable[..., HttpFetch], tls: Server) -> None:
    url = tls.serve("/h", b"ignored", headers={"Content-Type": "text/plain"})
    value = await direct().invoke({"method": "HEAD", "url": url}, context())
    assert (value["status"], value["body"]) == (200, "")


async def test_settings_headers_are_sent_and_not_in_repr(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    url = tls.serve("/auth", b"ok")
    provider = direct(headers={"Authorization": "Bearer s3cr3t-token"})
    await provider.invoke({"url": url}, context())
    assert tls.seen[0].headers["authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t" not in repr(provider)
    assert "s3cr3t" not in repr(provider.settings)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[NaN, 1]", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b"{not json", "application/problem+json"),
    ],
    ids=["nan-constant", "deep-nesting", "invalid-json"],
)
async def test_attack_json_response_that_is_not_json_comes_back_as_body(
    make_actions: Any, tls: Server, ca_path: str, body: bytes, content_type: str
) -> None:
    url = tls.serve("/j", body, headers={"Content-Type": content_type})
    actions = await make_actions(toml(ca_path))
    result = await actions.invoke(KEY, {"url": url})
    assert "json" not in result.value
    assert result.value["body"] == body.decode()


# --------------------------------------------------------------- allowlist


@pytest.mark.parametrize(
    ("settings", "url", "reason"),
    [
        ({"allowed_hosts": []}, "{base}/x", "allowed_hosts is empty"),
        ({"allowed_hosts": ["api.example.com"]}, "{base}/x", "'127.0.0.1' is not in"),
        ({}, "https://127.0.0.1@localhost:{port}/x", "'localhost' is not in"),
        ({}, "https://localhost:{port}/x", "'localhost' is not in"),
        ({"allowed_hosts": ["*.0.0.1"]}, "{base}/x", "'127.0.0.1' is not in"),
        ({}, "http://127.0.0.1:{port}/x", "plain http is off"),
        ({}, "ftp://127.0.0.1:{port}/x", "scheme 'ftp'"),
        ({}, "file:///etc/passwd", "scheme 'file'"),
    ],
    ids=["empty-allowlist", "host-not-listed", "userinfo-confusion", "other-name-same-ip",
         "wildcard-not-an-ip", "plain-http-off", "ftp-scheme", "file-scheme"],
)
async def test_attack_url_outside_the_allowlist_is_refused_before_any_request(
    make_actions: Any, tls: Server, ca_path: str, settings: dict[str, Any], url: str,
    reason: str,
) -> None:
    tls.serve("/x", b"secret")
    actions = await make_actions(toml(ca_path, **settings))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"url": url.format(base=tls.base, port=tls.port)})
    assert info.value.path == "url"
    assert reason in one_line(info.value)
    assert tls.seen == []


@pytest.mark.parametrize(
    ("entries", "host", "allowed"),
    [
        (["*.example.com"], "api.example.com", True),
        (["*.example.com"], "a.b.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "evilexample.com", False),
        (["*.example.com"], "example.com.evil.net", False),
        (["API.Example.com."], "api.example.com", True),
        (["bücher.de"], "xn--bcher-kva.de", True),
        (["[::1]"], "::1", True),
        (["*"], "anything.invalid", True),
        ([], "127.0.0.1", False),
    ],
)
def test_allowlist_matching(entries: list[str], host: str, allowed: bool) -> None:
    assert HostAllowlist(entries).allows(host) is allowed


async def test_plain_http_to_an_allowed_host_with_allow_http(
    direct: Callable[..., HttpFetch], plain: Server
) -> None:
    url = plain.serve("/p", b"plain")
    value = await direct(allow_http=True).invoke({"url": url}, context())
    assert value["body"] == "plain"


# --------------------------------------------------------------- redirects


async def test_redirect_within_the_allowlist_is_followed(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    tls.serve("/final", b"arrived")
    url = tls.serve("/hop", status=302, headers={"Location": "/final"})
    value = await direct().invoke({"url": url}, context(key="same-key"))
    assert value["body"] == "arrived"
    assert [s.path for s in tls.seen] == ["/hop", "/final"]
    assert {s.headers["idempotency-key"] for s in tls.seen} == {"same-key"}


@pytest.mark.parametrize("allow_http", [False, True], ids=["http-off", "http-on"])
async def test_attack_https_redirect_to_http_is_refused(
    make_actions: Any, tls: Server, plain: Server, ca_path: str, allow_http: bool
) -> None:
    target = plain.serve("/leak", b"downgraded")
    url = tls.serve("/hop", status=302, headers={"Location": target})
    actions = await make_actions(toml(ca_path, allow_http=allow_http))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"url": url})
    assert isinstance(info.value.cause, RedirectRefused)
    assert "downgrades https to http" in one_line(info.value)
    assert plain.seen == []


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://localhost:{port}/final", "'localhost' is not in allowed_hosts"),
        ("https://127.0.0.1@localhost:{port}/final", "'localhost' is not in allowed_hosts"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("https://[bad", "refused"),
    ],
    ids=["other-host", "userinfo-confusion", "javascript", "file", "invalid"],
)
async def test_attack_redirect_outside_the_allowlist_is_refused(
    direct: Callable[..., HttpFetch], tls: Server, location: str, reason: str
) -> None:
    tls.serve("/final", b"secret")
    url = tls.serve("/hop", status=307, headers={"Location": location.format(port=tls.port)})
    with pytest.raises(RedirectRefused) as info:
        await direct().invoke({"url": url}, context())
    assert reason in one_line(info.value)
    assert [s.path for s in tls.seen] == ["/hop"]


async def test_attack_redirect_loop_stops_at_max_redirects(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    url = tls.serve("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(RedirectRefused, match=r"more than max_redirects \(3\)"):
        await direct(max_redirects=3).invoke({"url": url}, context())
    assert len(tls.seen) == 4


async def test_follow_redirects_off_returns_the_redirect(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    url = tls.serve("/hop", status=302, headers={"Location": "https://elsewhere.invalid/"})
    value = await direct(follow_redirects=False).invoke({"url": url}, context())
    assert value["status"] == 302
    assert value["headers"]["location"] == "https://elsewhere.invalid/"
    assert len(tls.seen) == 1


# --------------------------------------------------------------- size cap


def _endless(handler: _Handler, _n: int) -> None:
    reply(handler, 200, b"", {"Content-Type": "text/plain"}, length=False)
    chunk = b"x" * 65536
    for _ in range(1024):  # bounded: 64 MiB at most
        handler.wfile.write(chunk)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)


@pytest.mark.parametrize("kind", ["declared", "streamed", "gzip-bomb", "deflate-bomb"])
async def test_attack_oversized_response_stops_at_the_cap(
    make_actions: Any, tls: Server, ca_path: str, bomb: bytes, kind: str
) -> None:
    if kind == "declared":
        tls.serve("/big", b"y" * (2 * 1024 * 1024))
    elif kind == "streamed":
        tls.route("/big", _endless)
    elif kind == "gzip-bomb":
        tls.serve("/big", bomb, headers={"Content-Encoding": "gzip"})
    else:
        import zlib

        tls.serve("/big", zlib.compress(b"\0" * (32 * 1024 * 1024), 9),
                  headers={"Content-Encoding": "deflate"})
    actions = await make_actions(toml(ca_path, max_response_bytes=1024 * 1024))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"url": tls.base + "/big"})
    assert isinstance(info.value.cause, ResponseTooLarge)
    assert "max_response_bytes (1048576)" in one_line(info.value)


@pytest.mark.parametrize("size", [1024, 1025])
async def test_cap_boundary(direct: Callable[..., HttpFetch], tls: Server, size: int) -> None:
    tls.serve("/gz", gzip.compress(b"z" * size), headers={"Content-Encoding": "gzip"})
    provider = direct(max_response_bytes=1024)
    if size <= 1024:
        assert (await provider.invoke({"url": tls.base + "/gz"}, context()))["body"] == "z" * size
    else:
        with pytest.raises(ResponseTooLarge):
            await provider.invoke({"url": tls.base + "/gz"}, context())


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [("br", b"\x00\x01", "does not decode"), ("gzip", b"not gzip at all", "not valid gzip")],
)
async def test_bad_or_unsupported_content_encoding(
    direct: Callable[..., HttpFetch], tls: Server, encoding: str, body: bytes, reason: str
) -> None:
    url = tls.serve("/enc", body, headers={"Content-Encoding": encoding})
    with pytest.raises(FetchError) as info:
        await direct().invoke({"url": url}, context())
    assert reason in one_line(info.value)


# ----------------------------------------------------------------- timeouts


def _slow(handler: _Handler, _n: int) -> None:
    handler.server.release.wait(30)  # set at teardown
    reply(handler, 200, b"late")


async def test_slow_server_times_out_through_actions(
    make_actions: Any, tls: Server, ca_path: str
) -> None:
    url = tls.route("/slow", _slow)
    actions = await make_actions(toml(ca_path))
    with pytest.raises(ActionTimeout):
        await actions.invoke(KEY, {"url": url}, timeout=0.3)


@pytest.mark.parametrize("which", ["deadline", "setting"])
async def test_request_timeout_is_bounded_by_deadline_and_setting(
    direct: Callable[..., HttpFetch], tls: Server, which: str
) -> None:
    url = tls.route("/slow", _slow)
    if which == "deadline":  # a long setting, a short attempt: the attempt wins
        provider, ctx = direct(timeout=300), context(0.3)
    else:
        provider, ctx = direct(timeout=0.3), context(300)
    # Called directly (no invoker around it): the provider itself ends the request.
    # The message names the time the attempt had: 0.3 s, less what passed between the
    # context's creation and the request (0.299s on a loaded machine).
    with pytest.raises(ActionTimeout, match=r"did not answer within (0\.\d+)s") as caught:
        await provider.invoke({"url": url}, ctx)
    stated = re.search(r"within (0\.\d+)s", str(caught.value))
    assert stated is not None and 0.25 <= float(stated.group(1)) <= 0.3


async def test_no_time_left_sends_nothing(direct: Callable[..., HttpFetch], tls: Server) -> None:
    url = tls.serve("/x", b"x")
    with pytest.raises(ActionTimeout, match="no time left"):
        await direct().invoke({"url": url}, context(-1))
    assert tls.seen == []


# --------------------------------------------------------- idempotency key


async def test_retry_sends_the_same_idempotency_key(
    make_actions: Any, tls: Server, ca_path: str
) -> None:
    def flaky(handler: _Handler, n: int) -> None:
        if n == 1:
            handler.close_connection = True  # drop the first attempt without an answer
            return
        reply(handler, 200, b"second")

    url = tls.route("/flaky", flaky)
    actions = await make_actions(toml(ca_path))
    result = await actions.invoke(
        KEY, {"method": "POST", "url": url, "json": {"n": 1}},
        retry=RetryPolicy(max_attempts=3, initial=0.01, jitter=0.0),
    )
    assert (result.attempts, result.value["body"]) == (2, "second")
    keys = [s.headers["idempotency-key"] for s in tls.seen]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


async def test_without_a_policy_a_failed_post_is_not_retried(
    make_actions: Any, tls: Server, ca_path: str
) -> None:
    def drop(handler: _Handler, _n: int) -> None:
        handler.close_connection = True

    url = tls.route("/drop", drop)
    actions = await make_actions(toml(ca_path))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"method": "POST", "url": url}, idempotency_key="k-42")
    assert isinstance(info.value.cause, FetchError)
    assert info.value.attempts == 1
    assert [s.headers["idempotency-key"] for s in tls.seen] == ["k-42"]


# ------------------------------------------------------- state between calls


async def test_attack_cookie_from_one_call_is_not_sent_on_the_next(
    direct: Callable[..., HttpFetch], tls: Server
) -> None:
    url = tls.serve("/c", b"ok", headers={"Set-Cookie": "session=tenant-a; Path=/"})
    provider = direct()
    await provider.invoke({"url": url}, context())
    await provider.invoke({"url": url}, context())
    assert [s.headers.get("cookie") for s in tls.seen] == [None, None]


async def test_attack_proxy_environment_is_ignored(
    direct: Callable[..., HttpFetch], tls: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    url = tls.serve("/direct", b"direct")
    assert (await direct().invoke({"url": url}, context()))["body"] == "direct"


async def test_untrusted_certificate_fails(
    make_actions: Any, tls: Server, ca_path: str
) -> None:
    url = tls.serve("/x", b"x")
    actions = await make_actions(toml(ca_path, verify=True))  # system CAs only
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"url": url})
    assert isinstance(info.value.cause, FetchError)
    assert "CERTIFICATE_VERIFY_FAILED" in one_line(info.value)
    assert tls.seen == []


# -------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("payload", "path", "words"),
    [
        ([1], "<payload>", "must be an object"),
        ({"url": "{url}", "verb": "GET"}, "verb", "unknown payload field"),
        ({}, "url", "is required"),
        ({"url": 5}, "url", "must be a string"),
        ({"url": "not a url"}, "url", "refused"),
        ({"url": "https://[::1"}, "url", "not a valid URL"),
        ({"url": "{url}", "method": "TRACE"}, "method", "not supported"),
        ({"url": "{url}", "method": 1}, "method", "must be a string"),
        ({"url": "{url}", "headers": ["x"]}, "headers", "must be an object"),
        ({"url": "{url}", "headers": {"X": 1}}, "headers.X", "must be a string"),
        ({"url": "{url}", "headers": {"X": "a\r\nInjected: 1"}}, "headers.X", "CR, LF"),
        ({"url": "{url}", "headers": {"Bad Name": "x"}}, "headers.Bad Name", "HTTP token"),
        ({"url": "{url}", "headers": {"Host": "evil"}}, "headers.Host", "set by the"),
        ({"url": "{url}", "headers": {"Content-Length": "1"}}, "headers.Content-Length",
         "set by the"),
        ({"url": "{url}", "headers": {"Idempotency-Key": "x"}}, "headers.Idempotency-Key",
         "idempotency_key"),
        ({"url": "{url}", "json": {}, "body": "x"}, "body", "not both"),
        ({"url": "{url}", "json": {"x": float("nan")}}, "json.x", "cannot be sent as JSON"),
        ({"url": "{url}", "json": {"x": b"raw"}}, "json.x", "cannot be sent as JSON"),
        ({"url": "{url}", "body": 12}, "body", "expected bytes"),
        ({"url": "{url}", "body": {"base64": "!!"}}, "body.base64", "not valid base64"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_bad_input(
    make_actions: Any, tls: Server, ca_path: str, payload: Any, path: str, words: str
) -> None:
    url = tls.serve("/x", b"x")
    if isinstance(payload, dict):
        payload = {k: (url if v == "{url}" else v) for k, v in payload.items()}
    actions = await make_actions(toml(ca_path))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, payload)
    assert info.value.path == path
    assert words in one_line(info.value)
    assert tls.seen == []


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("verify = false", "cannot be turned off"),
        ('verify = "/no/such/ca.pem"', "is not a file"),
        ('allowed_hosts = ["https://api.example.com/"]', "without scheme, port or path"),
        ('allowed_hosts = ["api.*.com"]', "not a host name"),
        ("max_response_bytes = 0", "greater than 0"),
        ("max_redirects = 99", "less than or equal to 20"),
        ("timeout = -1", "greater than 0"),
        ('headers = { "X-Bad" = "a\\nb" }', "CR, LF or NUL"),
        ('headers = { "Host" = "x" }', "set by the transport"),
        ("proxy = 'http://x'", "unknown setting"),
    ],
)
async def test_bad_settings(make_actions: Any, setting: str, words: str) -> None:
    text = f'[action.provider_settings."http.fetch".httpx]\n{setting}\n'
    with pytest.raises(ConfigError) as info:
        await make_actions(text)
    assert words in one_line(info.value)


# ----------------------------------------------------------- lifecycle, imports


async def test_cleanup_closes_the_client(make_actions: Any, tls: Server, ca_path: str) -> None:
    url = tls.serve("/x", b"x")
    actions = await make_actions(toml(ca_path))
    await actions.invoke(KEY, {"url": url})
    provider = DomainBridge("action", actions.lifecycle).handle(KEY).instance
    assert isinstance(provider, HttpFetch)
    await actions.lifecycle.shutdown()
    assert provider._client.is_closed


def test_spec_is_not_retried_by_default() -> None:
    assert HttpFetch.spec.idempotent is False
    assert HttpFetch.spec.side_effects is True
    assert HttpFetch.spec.retry is None


def test_importing_the_kit_does_not_import_httpx() -> None:
    code = (
        "import sys, oneiric.actions._kits.http\n"
        "assert 'httpx' not in sys.modules, 'httpx imported at module level'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_settings_defaults_are_safe() -> None:
    settings = FetchSettings()
    assert settings.allowed_hosts == []
    assert settings.allow_http is False
    assert settings.max_response_bytes == 10 * 1024 * 1024
    assert (settings.timeout, settings.follow_redirects, settings.max_redirects) == (30, True, 5)
    assert settings.verify is True
