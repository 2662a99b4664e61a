"""``http.fetch`` (provider ``httpx``): one HTTP request, fenced in.

An action that fetches URLs is a server-side request forgery waiting for a
payload, so every limit is on by default and checked by this module, not left
to the library's defaults:

- **host allowlist** (``allowed_hosts``): exact hosts (``api.example.com``,
  ``127.0.0.1``, ``::1``) and ``*.example.com`` (any subdomain, not the apex);
  ``"*"`` allows every host.  Empty (the default) refuses every host: fetching
  is opted into per host.  Checked for the URL and for every redirect hop,
  on the host the client really connects to (after httpx parsed the URL, so
  ``https://good.com@evil.com/`` is ``evil.com``).  Names are checked, not the
  addresses they resolve to.
- **https only** unless ``allow_http``; a redirect from https to http is
  refused whatever ``allow_http`` says (no scheme downgrade).
- **redirects** followed by hand (``follow_redirects``, at most
  ``max_redirects``), each target checked before httpx builds the next request.
- **size cap** (``max_response_bytes``): the body is streamed and reading stops
  at the cap; gzip/deflate bodies are decompressed here with a bounded output,
  so a compression bomb costs at most the cap.  Other encodings are refused.
- **TLS** always verified (``verify``: ``true`` or a CA bundle path; ``false``
  is refused); ``trust_env`` is off, so neither ``HTTP(S)_PROXY`` nor
  ``~/.netrc`` credentials reach a request the payload chose.
- **no cookie jar**: one client serves every invocation (and every tenant), so
  a cookie set for one call is never sent on another.
- **time**: ``timeout`` bounds the whole request (redirects and body included)
  and is cut to ``context.remaining()``, so the action ends inside its
  attempt's deadline; expiry raises ``ActionTimeout``.
- **Idempotency-Key**: every attempt sends ``context.idempotency_key``, which
  ``Actions.invoke`` keeps the same across retries; a payload cannot set it.

Payload ``{"method"?, "url", "headers"?, "json"?, "body"?}`` →
``{"status", "headers", "json"}`` when the response is JSON
(``application/json`` or ``+json``, and parses), else ``{"status", "headers",
"body"}`` with ``body`` text when it decodes (declared charset, else UTF-8),
bytes otherwise.  A non-2xx status is a result, not an error: the caller
decides.  The spec is static, so it says ``idempotent=False,
side_effects=True`` for every method (a GET is idempotent, a POST is not):
retries happen only when the caller passes a ``RetryPolicy``.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .._errors import ActionInputError, ActionTimeout
from .._json import binary, find_non_json
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take
from ._fence import HOST_ENTRY, HostAllowlist, check_header, check_verify, ssl_context

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FetchError",
    "FetchSettings",
    "HostAllowlist",
    "HttpFetch",
    "RedirectRefused",
    "ResponseTooLarge",
]

_KEY = "http.fetch"
_FIELDS = frozenset({"method", "url", "headers", "json", "body"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DECODABLE = "gzip, deflate"
MiB = 1024 * 1024


def _shown(url: httpx.URL) -> str:
    """``url`` for an error message: without credentials, at most 200 characters."""
    return str(url.copy_with(userinfo=b"") if url.userinfo else url)[:200]


class FetchError(Exception):
    """The request could not be made or its response not read (wrapped in ``ActionFailed``)."""


class RedirectRefused(FetchError):
    """A redirect led to a host outside the allowlist, to plain http, or too many times."""


class ResponseTooLarge(FetchError):
    """The response body exceeded ``max_response_bytes``; reading stopped there."""


class _Expired(TimeoutError):
    """httpx's own timeout fired (``invoke`` words it as ``ActionTimeout``)."""


# ------------------------------------------------------------------ settings


class FetchSettings(BaseModel):
    """``[action.provider_settings."http.fetch".httpx]``."""

    model_config = ConfigDict(extra="forbid")

    #: Hosts a request may go to (``api.example.com``, ``*.example.com``, ``127.0.0.1``,
    #: ``"*"`` for any).  Empty refuses every host.
    allowed_hosts: list[str] = Field(default_factory=list)
    #: Plain http (to allowed hosts).  Never reached by a redirect from https.
    allow_http: bool = False
    max_response_bytes: int = Field(default=10 * MiB, gt=0)
    #: Seconds for the whole request, redirects and body included (cut to the deadline).
    timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=20)
    #: ``true`` (system CAs) or a CA bundle path; ``false`` is refused.
    verify: bool | str = True
    #: Headers sent on every request (held as secrets: they usually carry credentials).
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host != "*" and not HOST_ENTRY.fullmatch(host):
                raise ValueError(
                    f"allowed host {host[:80]!r} is not a host name, '*.domain' or '*'; "
                    "give host names without scheme, port or path"
                )
        return hosts

    @field_validator("verify")
    @classmethod
    def _verify(cls, value: bool | str) -> bool | str:
        return check_verify(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            problem = check_header(name, value.get_secret_value(), "headers")
            if problem:
                raise ValueError(problem)
        return headers


# -------------------------------------------------------------- allowlist

# ------------------------------------------------------------------ bodies


class _BoundedBody:
    """Collects a response body up to ``cap`` bytes, decoding gzip/deflate with bounded output."""

    def __init__(self, encoding: str, cap: int, url: str) -> None:
        self.cap = cap
        self.url = url
        self.parts: list[bytes] = []
        self.size = 0
        self._first = True
        encoding = encoding.strip().lower()
        self.encoding = encoding
        self._zlib: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise FetchError(
                f"{url} answered with Content-Encoding {encoding[:40]!r}, which http.fetch "
                f"does not decode; send Accept-Encoding: {_DECODABLE} or identity"
            )

    def _too_large(self) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the response of {self.url} is larger than max_response_bytes ({self.cap}); "
            "reading stopped there - raise max_response_bytes or fetch less"
        )

    def feed(self, chunk: bytes) -> None:
        if self._zlib is not None:
            chunk = self._inflate(chunk)
        self._add(chunk)

    def _inflate(self, chunk: bytes) -> bytes:
        room = self.cap - self.size
        try:
            out: bytes = self._zlib.decompress(chunk, room + 1)
        except zlib.error as exc:
            if self._first and self.encoding == "deflate":  # raw deflate without zlib header
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self._inflate(chunk)
            raise FetchError(
                f"the response of {self.url} is not valid {self.encoding}: {exc}"
            ) from None
        self._first = False
        if len(out) > room or self._zlib.unconsumed_tail:
            raise self._too_large()
        return out

    def _add(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.cap:
            raise self._too_large()
        self.parts.append(data)

    def finish(self) -> bytes:
        if self._zlib is not None:
            try:
                self._add(self._zlib.flush())
            except zlib.error as exc:
                raise FetchError(
                    f"the response of {self.url} is not valid {self.encoding}: {exc}"
                ) from None
        return b"".join(self.parts)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(data: bytes, content_type: str, charset: str | None) -> dict[str, Any]:
    """``{"json": value}`` for a JSON response that parses, else ``{"body": text|bytes}``."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if data and (mime == "application/json" or mime.endswith("+json")):
        try:
            return {"json": json.loads(data, parse_constant=_no_constant)}
        except (ValueError, RecursionError):
            pass  # not what it says it is: hand back the text
    name = charset or "utf-8"
    try:
        codecs.lookup(name)
        return {"body": data.decode(name)}
    except (LookupError, UnicodeDecodeError):
        return {"body": data}


# ----------------------------------------------------------------- provider


class HttpFetch:
    """``http.fetch`` with httpx: one ``AsyncClient`` per provider instance, closed by cleanup."""

    spec = ActionSpec(
        description="HTTP request with size cap, host allowlist, no https->http redirect",
        idempotent=False,
        side_effects=True,
        timeout=30.0,
    )

    def __init__(self, settings: FetchSettings) -> None:
        lib = require("httpx", provider="httpx", extra="http")
        from http.cookiejar import CookieJar, DefaultCookiePolicy

        self.settings = settings
        self.allowlist = HostAllowlist(settings.allowed_hosts)
        headers = {"Accept-Encoding": _DECODABLE}
        headers.update({k: v.get_secret_value() for k, v in settings.headers.items()})
        self._client: httpx.AsyncClient = lib.AsyncClient(
            verify=ssl_context(settings.verify),
            trust_env=False,
            follow_redirects=False,
            headers=headers,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            event_hooks={"response": [self._check_redirect]},
        )

    def __repr__(self) -> str:
        return f"HttpFetch(allowed_hosts={list(self.allowlist.entries)!r})"

    async def cleanup(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------- checks

    def _refusal(self, url: httpx.URL, previous: httpx.URL | None) -> str | None:
        """Why a request to ``url`` (reached from ``previous``) is refused, or ``None``."""
        scheme = url.scheme
        if scheme not in ("http", "https"):
            return f"scheme {scheme!r} is not http(s)"
        if previous is not None and previous.scheme == "https" and scheme == "http":
            return "it downgrades https to http"
        if scheme == "http" and not self.settings.allow_http:
            return "plain http is off (set allow_http = true to allow it to allowed hosts)"
        host = url.raw_host.decode("ascii", "replace")
        if not host:
            return "it has no host"
        if not self.allowlist.allows(host):
            return f"host {host[:80]!r} is not in allowed_hosts ({self.allowlist.describe()})"
        if url.port is not None and not 0 < url.port < 65536:
            return f"port {url.port} is out of range 1..65535"
        if url.userinfo:  # httpx would send it as Basic auth, and every error would print it
            return ("it carries credentials (user:password@); send them in a header "
                    "(the headers setting, with ${secret:...})")
        return None

    async def _check_redirect(self, response: httpx.Response) -> None:
        """httpx response hook: judge a redirect's target before httpx builds the request."""
        if not self.settings.follow_redirects or not response.has_redirect_location:
            return
        import httpx

        current = response.request.url
        location = response.headers["location"]
        try:
            target = current.join(location)
        except httpx.InvalidURL:
            raise RedirectRefused(
                f"{current} redirects to an invalid URL; refusing it"
            ) from None
        why = self._refusal(target, current)
        if why:
            raise RedirectRefused(
                f"{_shown(current)} redirects to {_shown(target)}, refused: {why}"
            )

    def _request(
        self, payload: Any, context: ActionContext, budget: float
    ) -> httpx.Request:
        import httpx

        fields = fields_of(payload, _KEY, _FIELDS)
        method = take(fields, _KEY, "method", str, default="GET").upper()
        if method not in _METHODS:
            raise ActionInputError(
                f"action {_KEY!r}: method {method[:20]!r} is not supported; "
                f"use one of {', '.join(sorted(_METHODS))}",
                path="method",
            )
        text = take(fields, _KEY, "url", str)
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise ActionInputError(
                f"action {_KEY!r}: url is not a valid URL ({exc}); send an absolute https URL",
                path="url",
            ) from None
        why = self._refusal(url, None)
        if why:
            raise ActionInputError(
                f"action {_KEY!r}: url {_shown(url)} is refused: {why}", path="url"
            )
        headers = take(fields, _KEY, "headers", dict, default={})
        for name, value in headers.items():
            problem = check_header(name, value, "headers")
            if problem:
                raise ActionInputError(f"action {_KEY!r}: {problem}", path=f"headers.{name}")
        if "json" in fields and "body" in fields:
            raise ActionInputError(
                f"action {_KEY!r}: send either json or body, not both", path="body"
            )
        content: bytes | None = None
        if "json" in fields:
            bad = find_non_json(fields["json"], "json", allow_bytes=False)
            if bad is not None:
                raise ActionInputError(
                    f"action {_KEY!r}: {bad} cannot be sent as JSON; send JSON values "
                    "(or bytes in body)",
                    path=bad,
                )
            try:
                content = json.dumps(fields["json"], separators=(",", ":")).encode()
            except (RecursionError, TypeError, ValueError) as exc:
                raise ActionInputError(
                    f"action {_KEY!r}: json cannot be encoded ({type(exc).__name__}); "
                    "send a less deeply nested value",
                    path="json",
                ) from None
            headers = {"Content-Type": "application/json", **headers}
        elif "body" in fields:
            content = binary(fields["body"], "body")
        headers = {**headers, "Idempotency-Key": context.idempotency_key}
        request: httpx.Request = self._client.build_request(
            method, url, headers=headers, content=content, timeout=httpx.Timeout(budget)
        )
        return request

    # ------------------------------------------------------------- invoke

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        budget = min(self.settings.timeout, context.remaining())
        request = self._request(payload, context, budget)
        if budget <= 0:
            raise ActionTimeout(
                f"action {_KEY!r}: no time left before the deadline to request {request.url}"
            )
        limit = asyncio.timeout(budget)
        try:
            async with limit:
                return await self._exchange(request)
        except TimeoutError as exc:
            if not limit.expired() and not isinstance(exc, _Expired):
                raise
            raise ActionTimeout(
                f"action {_KEY!r}: {request.url} did not answer within {budget:.3g}s "
                "(timeout, cut to the attempt's deadline); raise the timeout or check the server"
            ) from None

    async def _exchange(self, request: httpx.Request) -> dict[str, Any]:
        import httpx

        url = request.url
        for _hop in range(self.settings.max_redirects + 1):
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise _Expired from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    f"request to {request.url} failed: {type(exc).__name__}: {exc}"
                ) from None
            try:
                nxt = response.next_request
                if nxt is None or not self.settings.follow_redirects:
                    return await self._read(response)
            finally:
                await response.aclose()
            request = nxt
        raise RedirectRefused(
            f"{url} redirected more than max_redirects ({self.settings.max_redirects}) times; "
            "fix the URL or raise max_redirects"
        )

    async def _read(self, response: httpx.Response) -> dict[str, Any]:
        import httpx

        cap = self.settings.max_response_bytes
        where = str(response.request.url)[:200]
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and not response.headers.get(
            "content-encoding"
        ):
            raise ResponseTooLarge(
                f"the response of {where} declares {declared} bytes, more than "
                f"max_response_bytes ({cap}); raise max_response_bytes or fetch less"
            )
        body = _BoundedBody(response.headers.get("content-encoding", ""), cap, where)
        try:
            async for chunk in response.aiter_raw():
                body.feed(chunk)
        except httpx.TimeoutException:
            raise _Expired from None
        except httpx.HTTPError as exc:
            raise FetchError(
                f"reading the response of {where} failed: {type(exc).__name__}: {exc}"
            ) from None
        data = body.finish()
        headers: Mapping[str, str] = response.headers
        result: dict[str, Any] = {
            "status": response.status_code,
            "headers": {k: v for k, v in headers.items()},
        }
        result.update(
            decode_body(data, headers.get("content-type", ""), response.charset_encoding)
        )
        return result
