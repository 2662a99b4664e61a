"""oneiric-remote: verify + register a 1,000-component manifest; install a 10 MB wheel over HTTPS.

Figures:

- **verify + register 1,000 components**: signature check (Ed25519), strict canonical
  parse, schema, candidate construction and one resolver batch, for a 1,000-component
  envelope, vs ``json.loads`` of the same envelope (reference).  Target <= 50 ms.
- **full sync, 1,000 components**: the same through ``RemoteSync.sync()`` from a local file
  with a fresh cache each time (adds the state file with fsync, the lock and status).
- **10 MB wheel over local HTTPS**: ``RemoteSync.sync()`` with a fresh cache: download over
  TLS on 127.0.0.1, size + sha256 check, archive checks, extraction, read-only vendor dir,
  register - vs a plain httpx download of the same bytes from the same server (reference).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, interleaved, median, parser, report

from oneiric.core import Resolver
from oneiric.remote import RemoteSource, RemoteSync, TrustedKey, sign_payload

SEED = bytes(range(32))


def _key() -> tuple[Any, TrustedKey]:
    from nacl.signing import SigningKey

    sk = SigningKey(SEED)
    return sk, TrustedKey.from_public(bytes(sk.verify_key))


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload(version: int, components: list[dict[str, Any]], artifacts: dict[str, Any]) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "_type": "oneiric.manifest", "spec_version": "1.0", "repository": "bench",
        "version": version, "issued_at": _ts(now - timedelta(minutes=1)),
        "expires": _ts(now + timedelta(days=7)), "artifacts": artifacts,
        "components": components,
    }


def bench_manifest(repeats: int) -> list[Result]:
    from oneiric.remote._models import parse_manifest
    from oneiric.remote._verify import Ed25519Verifier

    sk, trusted = _key()
    components = [
        {"domain": "adapter", "key": f"k{i:04d}", "provider": "remote", "factory": "json:loads",
         "priority": 5, "capabilities": ["ttl"], "description": f"component {i}"}
        for i in range(1000)
    ]
    envelope = sign_payload(_payload(1, components, {}), [sk])
    verifier = Ed25519Verifier([trusted], 1)

    def verify_register() -> float:
        from oneiric.core import Candidate, Source

        resolver = Resolver()
        start = time.perf_counter()
        verified = verifier.verify(envelope)
        manifest = parse_manifest(verified.data)
        src = Source("manifest", manifest.repository, str(manifest.version), detail="bench")
        with resolver.batch():
            resolver.unregister_source(("manifest", manifest.repository))
            for c in manifest.components:
                resolver.register(Candidate(
                    c.domain, c.key, c.provider, c.factory, priority=c.priority,
                    stack_level=c.stack_level, capabilities=frozenset(c.capabilities),
                    source=src, description=c.description, metadata={"manifest_url": "bench"},
                ))
        return time.perf_counter() - start

    def reference() -> float:
        start = time.perf_counter()
        json.loads(envelope)
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="oneiric-bench-remote-") as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_bytes(envelope)
        counter = iter(range(10**6))

        def full_sync() -> float:
            cache = Path(tmp) / f"cache{next(counter)}"
            source = RemoteSource(str(path), repository="bench", trusted_keys=[trusted],
                                  cache_dir=cache, factory_allowlist=["json"])
            resolver = Resolver()
            start = time.perf_counter()
            result = asyncio.run(RemoteSync(resolver, source).sync())
            elapsed = time.perf_counter() - start
            assert result.registered == 1000
            shutil.rmtree(cache)
            return elapsed

        verify_register()
        samples = interleaved(
            {"vr": verify_register, "ref": reference, "sync": full_sync}, repeats
        )
    ref = median(samples["ref"]) * 1000
    return [
        Result("verify + register 1,000-component manifest", median(samples["vr"]) * 1000, "ms",
               ref, "json.loads of the envelope", "<= 50 ms", ("value", 50.0),
               note=f"envelope {len(envelope):,} bytes; median of {repeats}",
               samples=[s * 1000 for s in samples["vr"]]),
        Result("full RemoteSync.sync(), 1,000 components, local file",
               median(samples["sync"]) * 1000, "ms", ref, "json.loads of the envelope",
               note="includes lock, state file (fsync), status file, asyncio.run",
               samples=[s * 1000 for s in samples["sync"]]),
    ]


# ------------------------------------------------------------------ https


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


def _certs(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """Server context and CA file: trustme when installed, else a self-signed openssl cert."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca_path = tmp / "ca.pem"
    try:
        import trustme

        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").configure_cert(ctx)
        ca.cert_pem.write_to_path(str(ca_path))
    except ImportError:
        key, cert = tmp / "key.pem", tmp / "cert.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
        ctx.load_cert_chain(cert, key)
        shutil.copy(cert, ca_path)
    return ctx, ca_path


def bench_wheel(repeats: int, size_mb: int = 10) -> list[Result]:
    import httpx

    sk, trusted = _key()
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-remote-") as tmpdir:
        tmp = Path(tmpdir)
        wheel = tmp / "bench_payload-1.0-py3-none-any.whl"
        dist = "bench_payload-1.0.dist-info"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("bench_payload/__init__.py", "def make():\n    return 1\n")
            zf.writestr("bench_payload/blob.bin", os.urandom(size_mb * 1024 * 1024))
            zf.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: bench-payload\n"
                                            "Version: 1.0\n")
            zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n")
            zf.writestr(f"{dist}/RECORD", "")
        data = wheel.read_bytes()
        ctx, ca_path = _certs(tmp)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        base = f"https://127.0.0.1:{server.server_address[1]}"
        payload = _payload(1, [{"domain": "adapter", "key": "bench", "provider": "remote",
                                "factory": "bench_payload:make", "artifact": "w"}],
                           {"w": {"urls": [f"{base}/w.whl"], "sha256": hashlib.sha256(data)
                                  .hexdigest(), "size": len(data), "kind": "wheel"}})
        _Handler.routes = {"/w.whl": data, "/m.json": sign_payload(payload, [sk])}
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        counter = iter(range(10**6))
        client_ctx = ssl.create_default_context(cafile=str(ca_path))

        def install() -> float:
            cache = tmp / f"cache{next(counter)}"
            source = RemoteSource(f"{base}/m.json", repository="bench", trusted_keys=[trusted],
                                  cache_dir=cache, verify=client_ctx)
            start = time.perf_counter()
            result = asyncio.run(RemoteSync(Resolver(), source).sync())
            elapsed = time.perf_counter() - start
            assert result.registered == 1
            from oneiric.remote._install import remove_tree

            remove_tree(cache)
            sys.path[:] = [p for p in sys.path if str(tmp) not in p]
            return elapsed

        def plain() -> float:
            async def go() -> int:
                total = 0
                async with httpx.AsyncClient(verify=client_ctx) as client, client.stream(
                    "GET", f"{base}/w.whl"
                ) as response:
                    async for chunk in response.aiter_bytes():
                        total += len(chunk)
                return total

            start = time.perf_counter()
            assert asyncio.run(go()) == len(data)
            return time.perf_counter() - start

        try:
            samples = interleaved({"install": install, "plain": plain}, repeats)
        finally:
            server.shutdown()
            server.server_close()
    mb = len(data) / (1024 * 1024)
    t_install, t_plain = median(samples["install"]), median(samples["plain"])
    return [
        Result(f"{size_mb} MB wheel: download + verify + install over local HTTPS", mb / t_install,
               "MB/s", mb / t_plain, "plain httpx download, same server",
               note=f"{t_install * 1000:.0f} ms per sync vs {t_plain * 1000:.0f} ms plain "
                    f"download (median of {repeats}); higher is better, ratio = install "
                    "throughput / plain download throughput",
               samples=[mb / s for s in samples["install"]]),
    ]


def main() -> int:
    args = parser(__doc__).parse_args()
    repeats = 3 if args.quick else 9
    results = bench_manifest(repeats)
    gc.collect()
    results += bench_wheel(3 if args.quick else 5)
    return report("oneiric-remote", results, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
