"""Fixtures: signing keys, manifests, wheels built on disk, and a real HTTPS server on 127.0.0.1.

The server is a ``ThreadingHTTPServer`` wrapped in TLS with a certificate from a
throwaway CA (trustme); routes are set per test and every request is logged, so
tests assert what was (not) downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import ssl
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from nacl.signing import SigningKey

from oneiric.core import Resolver
from oneiric.remote import RemoteSource, TrustedKey, sign_payload

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ server


class Route:
    """What the server answers for one path."""

    def __init__(
        self,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_length: int | str | None = "auto",
        drip: float | None = None,
        endless: bool = False,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}
        self.content_length = content_length
        self.drip = drip
        self.endless = endless


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if callable(route):
            route = route(self.server.hits.count(self.path))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.content_length == "auto" and not route.endless and route.drip is None:
            self.send_header("Content-Length", str(len(route.body)))
        elif isinstance(route.content_length, int):
            self.send_header("Content-Length", str(route.content_length))
        self.end_headers()
        try:
            if route.endless:
                chunk = b"x" * 65536
                for _ in range(2048):  # bounded: 128 MiB at most
                    self.wfile.write(chunk)
            elif route.drip is not None:
                for _ in range(3000):  # bounded
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(route.drip)
            else:
                self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.socket = ctx.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.routes: dict[str, Any] = {}
        self.hits: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class HttpsServer:
    """A real TLS server on 127.0.0.1 with per-test routes."""

    def __init__(self, ca: trustme.CA, tmp: Path) -> None:
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._server = _Server(ctx)
        self.port = self._server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.ca_path = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def routes(self) -> dict[str, Any]:
        return self._server.routes

    @property
    def hits(self) -> list[str]:
        return self._server.hits

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | Route | Callable[[int], Route]) -> str:
        self.routes[path] = Route(body) if isinstance(body, bytes) else body
        return self.url(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA, tmp_path: Path) -> Iterator[HttpsServer]:
    server = HttpsServer(ca, tmp_path)
    try:
        yield server
    finally:
        server.close()


# ------------------------------------------------------------- artifacts


def make_wheel(
    path: Path,
    files: dict[str, str | bytes],
    *,
    name: str = "demo",
    version: str = "1.0",
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
) -> Path:
    """Write a minimal wheel (WHEEL, METADATA, RECORD) with ``files``."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
    entries: dict[str, bytes] = {
        k: v.encode() if isinstance(v, str) else v for k, v in files.items()
    }
    entries[f"{dist}/METADATA"] = metadata.encode()
    entries[f"{dist}/WHEEL"] = wheel.encode()
    record = "".join(f"{k},,\n" for k in entries) + f"{dist}/RECORD,,\n"
    entries[f"{dist}/RECORD"] = record.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_, data in entries.items():
            zf.writestr(name_, data)
    return path


def digest(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


# -------------------------------------------------------------- manifests


class Kit:
    """Keys, payloads, envelopes and sources for one test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.keys = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
        self.trusted = [TrustedKey.from_public(bytes(k.verify_key)) for k in self.keys]
        self.cache = tmp / "cache"
        self.repository = "acme"
        self.counter = 0

    def payload(
        self,
        version: int = 1,
        *,
        components: list[dict[str, Any]] | None = None,
        artifacts: dict[str, Any] | None = None,
        repository: str | None = None,
        issued: datetime | None = None,
        expires: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        issued = issued or NOW - timedelta(hours=1)
        doc = {
            "_type": "oneiric.manifest",
            "spec_version": "1.0",
            "repository": repository or self.repository,
            "version": version,
            "issued_at": ts(issued),
            "expires": ts(expires or issued + timedelta(days=7)),
            "artifacts": artifacts or {},
            "components": components
            if components is not None
            else [
                {
                    "domain": "adapter",
                    "key": "cache",
                    "provider": "remote-memory",
                    "factory": "json:loads",
                    "priority": 7,
                }
            ],
        }
        doc.update(extra)
        return doc

    def envelope(self, payload: dict[str, Any], keys: list[int] | None = None) -> bytes:
        return sign_payload(payload, [self.keys[i] for i in (keys or [0])])

    def source(self, url: str, **kwargs: Any) -> RemoteSource:
        kwargs.setdefault("repository", self.repository)
        kwargs.setdefault("trusted_keys", self.trusted[:1])
        kwargs.setdefault("cache_dir", self.cache)
        kwargs.setdefault("factory_allowlist", ("json",))
        return RemoteSource(url, **kwargs)

    def settings(self, url: str, extra: str = "") -> Path:
        """A settings dir with one ``[remote.sources.s]`` like ``source()`` (for the CLI)."""
        key = self.trusted[0]
        config = self.tmp / "cfg"
        config.mkdir(exist_ok=True)
        (config / "oneiric.toml").write_text(
            f'[remote]\ncache_dir = "{self.cache}"\n[remote.sources.s]\nurl = "{url}"\n'
            f'repository = "{self.repository}"\ntrusted_keys = [{{ keyid = "{key.keyid}", '
            f'public_key = "{key.public_key}" }}]\n{textwrap.dedent(extra)}'
        )
        return config

    def write(self, data: bytes, name: str = "manifest.json") -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def wheel(self, pkg: str, body: str = "def make():\n    return 'ok'\n", **kw: Any
              ) -> tuple[Path, dict[str, Any]]:
        """A wheel shipping package ``pkg`` and its artifact entry (urls filled by caller)."""
        self.counter += 1
        path = self.tmp / f"{pkg}-{self.counter}.whl"
        make_wheel(path, {f"{pkg}/__init__.py": body}, name=pkg, **kw)
        sha, size = digest(path)
        return path, {"sha256": sha, "size": size, "kind": "wheel"}


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


def snapshot(resolver: Resolver, cache: Path) -> dict[str, Any]:
    """Everything a failed sync must leave unchanged."""
    regs = sorted(
        (c.domain, c.key, c.provider, str(c.source))
        for d in resolver.domains()
        for k in resolver.keys(d)
        for c in resolver.candidates(d, k)
    )
    # The rollback floor (highest_*) rises as soon as an authentic manifest is seen
    # (REMOTE.md, State); everything that decides what is served must stay.
    states = {}
    for p in sorted(cache.glob("state-*.json")) if cache.exists() else []:
        try:
            doc = json.loads(p.read_bytes())
        except ValueError:
            states[p.name] = p.read_bytes()
            continue
        if isinstance(doc, dict) and doc.get("active_version") is None:
            continue  # a floor-only state: nothing active, nothing served
        if isinstance(doc, dict):
            doc.pop("highest_version", None)
            doc.pop("highest_digest", None)
        states[p.name] = doc
    return {"registry": regs, "sys.path": list(sys.path), "state": states}


def leftovers(cache: Path) -> list[str]:
    """Temp files left anywhere in the cache (there must be none after a sync)."""
    found = []
    if not cache.exists():
        return found
    for current, _dirs, files in os.walk(cache):
        for name in files:
            if name.endswith((".tmp", ".part")):
                found.append(os.path.join(current, name))
    tmp = cache / "tmp"
    if tmp.exists():
        found.extend(str(p) for p in tmp.iterdir())
    return found


@pytest.fixture
def unchanged(resolver: Resolver, kit: Kit) -> Iterator[Callable[[], None]]:
    """Call ``check()`` after a failing sync: registry, sys.path, state and temp files intact."""
    before = snapshot(resolver, kit.cache)

    def check() -> None:
        assert snapshot(resolver, kit.cache) == before
        assert leftovers(kit.cache) == []

    yield check


@pytest.fixture(autouse=True)
def _restore_sys_path() -> Iterator[None]:
    saved = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = saved
    for name in set(sys.modules) - modules:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) or ""
        if "vendor" in origin:
            sys.modules.pop(name, None)
    from oneiric.remote import _activate

    _activate._active_paths.clear()


@pytest.fixture
def clock() -> Callable[[], float]:
    class Clock:
        def __init__(self) -> None:
            self.t = 1000.0

        def __call__(self) -> float:
            return self.t

    return Clock()


def fixed_now() -> datetime:
    return NOW


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.fixture
def h() -> Any:
    """Helpers for test modules (conftest is not importable under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        NOW=NOW, ts=ts, Route=Route, make_wheel=make_wheel, digest=digest, zip_bytes=zip_bytes,
        snapshot=snapshot, leftovers=leftovers, fixed_now=fixed_now, env=env, dumps=dumps,
    )
