"""Fetching bytes: fetchers (built-in ``file``/``https`` plus plugins), limits, retries, breaker.

A ``Fetcher`` only moves bytes: ``stream(url, *, headers)`` yields chunks.  The
``Downloader`` around it enforces everything that matters for safety - byte
limit (counted on decoded bytes), an overall deadline (a read timeout alone
never fires on a one-byte-per-second drip), scheme policy, retries of transient
failures only - so a plugin fetcher (s3, gs, oci) cannot weaken any of them, and
the built-in ``file`` and ``https`` fetchers cannot be overridden.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import ssl

    import pluggy

from oneiric.core import get_logger, get_plugin_manager
from oneiric.core.helpers import call_hook, one_line

from ._config import SyncRetry, Timeouts, local_path
from ._errors import (
    CircuitOpenError,
    DeadlineExceeded,
    FetchError,
    InsecureURLError,
    RemoteError,
)

__all__ = [
    "BUILTIN_SCHEMES",
    "CircuitBreaker",
    "Downloader",
    "Fetcher",
    "FileFetcher",
    "HttpsFetcher",
    "pick_error",
    "plugin_fetchers",
    "scheme_of",
]

_log = get_logger("oneiric.remote.fetch")
BUILTIN_SCHEMES = frozenset({"https", "file"})
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
HEADERS = {"Accept-Encoding": "identity", "User-Agent": "oneiric-remote"}
CHUNK = 64 * 1024

_S = TypeVar("_S", bound="_Sink")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@runtime_checkable
class Fetcher(Protocol):
    """Moves bytes for one URL scheme; the caller enforces limits, deadline and digest."""

    def stream(self, url: str, *, headers: Mapping[str, str]) -> AsyncIterator[bytes]: ...


def scheme_of(url: str) -> str:
    """``https``, ``file`` (also for plain paths), or whatever scheme the URL names."""
    if "://" not in url and not url.startswith(("file:", "data:", "http:", "https:")):
        parts = urlsplit(url)
        return parts.scheme.lower() if parts.scheme and len(parts.scheme) > 1 else "file"
    return urlsplit(url).scheme.lower()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class FileFetcher:
    """Local files: only for the top-level source named in local config (and dev artifacts)."""

    async def stream(
        self, url: str, *, headers: Mapping[str, str], limit: int | None = None
    ) -> AsyncIterator[bytes]:
        path = local_path(url)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed in finally across yields
        except OSError as exc:
            raise FetchError(
                f"cannot read {path}: {exc.strerror or exc}; check the source path",
            ) from None
        try:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    return
                yield chunk
                await asyncio.sleep(0)
        finally:
            handle.close()


class HttpsFetcher:
    """httpx with verified TLS, manual redirects (at most N, https only), identity encoding."""

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True,
                 timeouts: Timeouts | None = None,
                 max_redirects: int = 3) -> None:
        self.verify = verify
        self.timeouts = timeouts or Timeouts()
        self.max_redirects = max_redirects

    async def stream(
        self, url: str, *, headers: Mapping[str, str], limit: int | None = None
    ) -> AsyncIterator[bytes]:
        import httpx

        timeout = httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect)
        async with httpx.AsyncClient(
            verify=self.verify, timeout=timeout, follow_redirects=False, trust_env=False,
            event_hooks={"response": [_refuse_insecure_redirect]},
        ) as client:
            current = url
            for _hop in range(self.max_redirects + 1):
                try:
                    request = client.build_request("GET", current, headers=dict(headers))
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise FetchError(f"timed out fetching {current}: {exc}", transient=True)
                except httpx.TransportError as exc:
                    raise FetchError(
                        f"cannot connect to {current}: {one_line(exc)}", transient=True
                    )
                except httpx.InvalidURL as exc:
                    raise FetchError(
                        f"{current} redirects to an invalid URL ({one_line(exc)}); fix the server"
                    ) from None
                try:
                    status = response.status_code
                    if status in REDIRECT_STATUS:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(f"{current} answered {status} without Location")
                        current = _redirect_target(current, location)
                        continue
                    if status in TRANSIENT_STATUS:
                        raise FetchError(
                            f"{current} answered {status}; the server is unavailable, retry later",
                            transient=True,
                            retry_after=_retry_after(response.headers.get("retry-after")),
                            status=status,
                        )
                    if status != 200:
                        raise FetchError(
                            f"{current} answered {status}; check the URL", status=status
                        )
                    declared = response.headers.get("content-length")
                    if (
                        limit is not None and declared and declared.isdigit()
                        and int(declared) > limit
                    ):
                        raise _TooLarge(int(declared))
                    try:
                        async for chunk in response.aiter_bytes():
                            if chunk:
                                yield chunk
                    except httpx.TimeoutException as exc:
                        raise FetchError(f"timed out reading {current}: {exc}", transient=True)
                    except httpx.HTTPError as exc:
                        raise FetchError(
                            f"error reading {current}: {one_line(exc)}", transient=True
                        )
                    return
                finally:
                    await response.aclose()
            raise FetchError(
                f"{url} redirected more than {self.max_redirects} times; fix the URL"
            )


def _redirect_target(current: str, location: str) -> str:
    """Where a redirect leads; refuses (``InsecureURLError``) anything but https."""
    try:
        target = urljoin(current, location)
    except ValueError as exc:
        raise FetchError(f"{current} redirects to an invalid URL ({exc}); fix the server") from None
    scheme = urlsplit(target).scheme.lower() if ":" in target else ""
    if scheme != "https":
        raise InsecureURLError(
            f"{current} redirects to {target[:200]!r}, which is not https; "
            "refusing to downgrade - fix the server or the URL"
        )
    return target


async def _refuse_insecure_redirect(response: Any) -> None:
    """httpx response hook: runs before httpx parses the Location itself.

    httpx builds the next request of a redirect even when not following it, and
    fails on URLs it cannot represent (``data:``, ``javascript:``) with its own
    error; checking the scheme here first makes every non-https target an
    ``InsecureURLError``, whatever httpx would make of it.
    """
    if response.status_code in REDIRECT_STATUS:
        location = response.headers.get("location")
        if location:
            _redirect_target(str(response.request.url), location)


class _TooLarge(Exception):
    """Raised by a built-in fetcher when Content-Length already exceeds the limit."""

    def __init__(self, declared: int) -> None:
        super().__init__(declared)
        self.declared = declared


def plugin_fetchers(hooks: pluggy.PluginManager | None = None) -> dict[str, Fetcher]:
    """Fetchers contributed through ``oneiric_fetchers()``; built-in schemes cannot be replaced.

    Each plugin is asked separately (``call_hook``): a plugin whose hook raises
    or returns something other than ``{scheme: fetcher}`` costs its own schemes
    (logged), never the others' or the sync.  The first plugin in pluggy's call
    order wins a scheme two plugins claim.
    """
    manager = hooks or get_plugin_manager()
    found: dict[str, Fetcher] = {}
    for result in call_hook(manager, "oneiric_fetchers"):
        usable = result.value is None or isinstance(result.value, Mapping)
        if result.error is not None or not usable:
            _log.warning(
                "plugin fetchers ignored",
                plugin=result.plugin,
                error=one_line(result.error) if result.error else "did not return a mapping",
            )
            continue
        for scheme, fetcher in (result.value or {}).items():
            scheme = str(scheme).lower()
            if scheme in BUILTIN_SCHEMES or scheme == "http":
                _log.warning("plugin fetcher ignored: built-in scheme", scheme=scheme)
                continue
            found.setdefault(scheme, fetcher)
    return found


def pick_error(errors: Sequence[RemoteError]) -> RemoteError:
    """The error to report after every URL failed: a verification failure beats transport."""
    for error in errors:
        if not isinstance(error, FetchError):
            return error
    return errors[-1]


class CircuitBreaker:
    """Opens after ``threshold`` failed sync cycles in a row; half-open after ``cooldown``."""

    def __init__(self, threshold: int, cooldown: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.cooldown else "half-open"

    def check(self, what: str) -> None:
        if self.state == "open":
            assert self.opened_at is not None
            wait = self.cooldown - (self.clock() - self.opened_at)
            raise CircuitOpenError(
                f"{what}: circuit open after {self.failures} failed sync cycles; "
                f"next try in {wait:.0f} s - check the server and mirrors"
            )

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()


class Downloader:
    """Runs a fetcher under the caller's policy: limit, deadline, retries with backoff."""

    def __init__(
        self,
        *,
        https: Fetcher,
        plugins: Mapping[str, Fetcher] | None = None,
        retry: SyncRetry | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.builtins: dict[str, Fetcher] = {"https": https, "file": FileFetcher()}
        self.plugins = dict(plugins or {})
        self.retry = retry or SyncRetry()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng

    def fetcher(self, url: str) -> tuple[Fetcher, bool]:
        scheme = scheme_of(url)
        if scheme in self.builtins:
            return self.builtins[scheme], True
        if scheme in self.plugins:
            return self.plugins[scheme], False
        if scheme == "http":
            raise InsecureURLError(f"{url} uses http; only https is allowed")
        raise InsecureURLError(
            f"no fetcher for scheme {scheme!r} in {url}; use https or install a fetcher plugin"
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        policy = self.retry
        delay = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
        delay *= 1 - policy.jitter * self.rng()
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max_retry_after))
        return delay

    async def download(
        self,
        url: str,
        *,
        limit: int,
        deadline: float,
        sink: Callable[[], _S],
        too_large: type[RemoteError],
        what: str,
    ) -> _S:
        """Fetch ``url`` into a fresh sink per attempt; retry transient failures only.

        More than ``limit`` bytes (declared or received) is a ``too_large`` error
        naming ``what`` was fetched; it is never retried.
        """
        attempt = 0
        while True:
            attempt += 1
            target = sink()
            try:
                await self._once(url, limit, deadline, target, too_large, what)
                return target
            except FetchError as exc:
                target.discard()
                if not exc.transient or attempt >= self.retry.attempts:
                    if exc.transient:
                        raise FetchError(
                            f"{exc} (gave up after {attempt} attempts)",
                            transient=True, retry_after=exc.retry_after, status=exc.status,
                        ) from None
                    raise
                delay = self.backoff(attempt, exc.retry_after)
                _log.info("retrying fetch", url=url, attempt=attempt, delay=delay, error=str(exc))
                await self.sleep(delay)
            except BaseException:
                target.discard()
                raise

    async def _once(
        self,
        url: str,
        limit: int,
        deadline: float,
        target: _Sink,
        too_large: type[RemoteError],
        what: str,
    ) -> None:
        fetcher, builtin = self.fetcher(url)
        stream = (
            fetcher.stream(url, headers=HEADERS, limit=limit)  # type: ignore[call-arg]
            if builtin
            else fetcher.stream(url, headers=HEADERS)
        )
        deadline_at = self.clock() + deadline
        total = 0
        try:
            async with aclosing(stream):  # type: ignore[type-var]
                iterator = stream.__aiter__()
                while True:
                    remaining = deadline_at - self.clock()
                    if remaining <= 0:
                        raise DeadlineExceeded(
                            f"{url} did not finish within {deadline:g} s ({total} bytes so far); "
                            "the server is too slow - try again or use a mirror"
                        )
                    try:
                        async with asyncio.timeout(remaining) as cm:
                            chunk = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        if cm.expired():
                            raise DeadlineExceeded(
                                f"{url} did not finish within {deadline:g} s ({total} bytes so "
                                "far); the server is too slow - try again or use a mirror"
                            ) from None
                        raise
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(too_large, what, url, limit, total)
                    target.write(chunk)
        except _TooLarge as exc:
            raise _too_large(too_large, what, url, limit, exc.declared) from None
        except RemoteError:
            raise
        except Exception as exc:  # a plugin fetcher may raise anything: one line, no retry
            raise FetchError(  # a foreign exception: its type says what the text may not
                f"fetching {url} failed: {type(exc).__name__}: {one_line(exc)}", transient=False
            ) from None
        target.finish()


def _too_large(
    error_type: type[RemoteError], what: str, url: str, limit: int, seen: int
) -> RemoteError:
    return error_type(
        f"{what} from {url} is larger than the {limit} bytes allowed (aborted at {seen}); "
        "the server or mirror is broken or hostile"
    )


class _Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def discard(self) -> None: ...
    def finish(self) -> None: ...


class MemorySink:
    """Collects a small download (the manifest) in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.parts.append(chunk)

    def discard(self) -> None:
        self.parts.clear()

    def finish(self) -> None:
        pass

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)
