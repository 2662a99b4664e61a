"""Failure behaviour against real, private servers: down, killed while active, bad credentials.

Private server processes are started here and killed here; the shared CI
servers are never touched (their env vars only name the binaries).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneiric.adapters.storage import (
    MissingExtraError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)
from oneiric.testing import apoll_until, free_port, poll_until, require_live

LIVE = ("s3", "azure", "gcs")

pytestmark = [pytest.mark.anyio, pytest.mark.live]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def private_gcs(tmp_path: Path, live_settings: Any) -> Iterator[dict[str, Any]]:
    """A fake-gcs-server of our own, with bucket ``private``."""
    binary = os.environ.get("ONEIRIC_TEST_GCS_BIN", "")
    require_live(bool(binary) and Path(binary).exists(), "fake-gcs-server (ONEIRIC_TEST_GCS_BIN)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _spawn(
        [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
         "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
        tmp_path / "fake-gcs.log",
    )

    def create_bucket() -> bool:
        request = urllib.request.Request(
            f"{url}/storage/v1/b?project=p", data=b'{"name": "private"}', method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=2).close()
        except OSError:
            return False
        return True

    try:
        poll_until(create_bucket, message="private fake-gcs-server answering")
        yield {"proc": proc, "settings": live_settings(
            "gcs", {"ONEIRIC_TEST_GCS_ENDPOINT": url}, bucket="private", retries=1)}
    finally:
        _kill(proc)


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A SeaweedFS of our own with one identity; it creates the bucket on first write."""
    weed = os.environ.get("ONEIRIC_TEST_S3_WEED") or shutil.which("weed") or ""
    require_live(bool(weed), "SeaweedFS (ONEIRIC_TEST_S3_WEED)")
    ports = [free_port() for _ in range(8)]
    while len(set(ports)) < 8:
        ports = [free_port() for _ in range(8)]
    (tmp_path / "data").mkdir()
    (tmp_path / "s3.json").write_text(
        '{"identities": [{"name": "t", "credentials": [{"accessKey": "private", '
        '"secretKey": "private-secret"}], "actions": ["Admin", "Read", "List", "Write"]}]}'
    )
    proc = _spawn(
        [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={tmp_path / 'data'}",
         "-master.telemetry=false", "-volume.max=0", "-master.volumeSizeLimitMB=64",
         f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
         f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
         "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
         "-s3", f"-s3.port={ports[6]}", f"-s3.port.grpc={ports[7]}",
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={tmp_path / 's3.json'}"],
        tmp_path / "weed.log",
    )
    env = {
        "ONEIRIC_TEST_S3_ENDPOINT": f"http://127.0.0.1:{ports[6]}",
        "ONEIRIC_TEST_S3_ACCESS_KEY": "private", "ONEIRIC_TEST_S3_SECRET_KEY": "private-secret",
        "ONEIRIC_TEST_S3_BUCKET": "private",
    }
    try:
        yield {"proc": proc, "env": env}
    finally:
        _kill(proc)


async def _s3_writable(env: dict[str, str]) -> bool:
    """Raw client on purpose: the bucket must exist before the adapter's init() probe."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        "private", endpoint=env["ONEIRIC_TEST_S3_ENDPOINT"], region="us-east-1",
        access_key_id=env["ONEIRIC_TEST_S3_ACCESS_KEY"],
        secret_access_key=env["ONEIRIC_TEST_S3_SECRET_KEY"],
        client_options={"allow_http": True}, retry_config={"max_retries": 0},
    )
    try:
        await obstore.put_async(store, "ready", b"1")  # SeaweedFS creates the bucket
    except Exception:
        return False
    return True


async def test_gcs_killed_while_active(private_gcs: dict[str, Any], build_storage: Any) -> None:
    storage = build_storage("gcs", private_gcs["settings"])
    await storage.init()
    try:
        await storage.put("before", b"ok")
        assert await storage.health()
        _kill(private_gcs["proc"])
        for call in (storage.get("before"), storage.put("after", b"x"), storage.health()):
            with pytest.raises(StorageUnavailableError) as caught:
                await call
            assert "\n" not in str(caught.value)
    finally:
        await storage.cleanup()


async def test_s3_killed_while_active(
    private_s3: dict[str, Any], live_settings: Any, build_storage: Any
) -> None:
    settings = live_settings("s3", private_s3["env"], retries=1, retry_timeout_s=2.0)
    storage = build_storage("s3", settings)
    await apoll_until(
        lambda: _s3_writable(private_s3["env"]), timeout=120, message="private SeaweedFS writable"
    )
    await storage.init()
    try:
        await storage.put("ready", b"1")
        assert await storage.get("ready") == b"1"
        assert await storage.health()
        _kill(private_s3["proc"])
        for call in (storage.get("ready"), storage.exists("ready"), storage.health()):
            with pytest.raises(StorageUnavailableError) as caught:
                await call
            assert "\n" not in str(caught.value)
        with pytest.raises(StorageUnavailableError):
            [info async for info in storage.list()]
    finally:
        await storage.cleanup()


@pytest.mark.parametrize("provider", ["s3", "azure", "gcs"])
async def test_server_down_at_activation(
    provider: str, live_settings: Any, build_storage: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    endpoint = dead + ("/devstoreaccount1" if provider == "azure" else "")
    storage = build_storage(provider, live_settings(provider, endpoint=endpoint, retries=0))
    try:
        with pytest.raises(StorageUnavailableError, match=provider):
            await storage.init()
    finally:
        await storage.cleanup()


async def test_s3_wrong_credentials_fail_activation(
    live_settings: Any, build_storage: Any
) -> None:
    storage = build_storage("s3", live_settings("s3", secret_access_key="not-the-secret"))
    with pytest.raises(StorageAuthError) as caught:
        await storage.init()
    assert "credentials" in str(caught.value) and "\n" not in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


async def test_azure_wrong_key_fails_activation(live_settings: Any, build_storage: Any) -> None:
    storage = build_storage("azure", live_settings("azure", account_key="d3Jvbmcga2V5"))
    with pytest.raises(StorageAuthError):
        await storage.init()


@pytest.mark.parametrize("provider", ["s3", "azure", "gcs"])
async def test_missing_bucket_fails_activation(
    provider: str, live_settings: Any, build_storage: Any
) -> None:
    field = {"azure": "container"}.get(provider, "bucket")
    storage = build_storage(provider, live_settings(provider, **{field: "no-such-bucket-oneiric"}))
    try:
        with pytest.raises(StorageError, match="does not exist"):
            await storage.init()
    finally:
        await storage.cleanup()


@pytest.mark.parametrize(("module", "provider", "extra"), [
    ("obstore", "s3", "s3"), ("obstore", "azure", "azure"), ("gcloud.aio.storage", "gcs", "gcs"),
])
def test_missing_extra_is_one_line(module: str, provider: str, extra: str) -> None:
    """Run in a subprocess where the client library cannot be imported."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from oneiric.core import Resolver, load_plugins, resolve_factory\n"
        "r = Resolver(); load_plugins(r)\n"
        "cands = r.candidates('adapter', 'storage')\n"
        f"c = [x for x in cands if x.provider == {provider!r}][0]\n"
        "from oneiric.core import resolve_settings_model\n"
        "model = resolve_settings_model(c)\n"
        "factory = resolve_factory(c)\n"
        "fields = {'bucket': 'b', 'container': 'c', 'account': 'a'}\n"
        "settings = model(**{k: v for k, v in fields.items() if k in model.model_fields})\n"
        "try:\n    factory(settings)\nexcept Exception as e:\n    print(type(e).__name__, '|', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = out.stdout.strip()
    assert line.count("\n") == 0, out
    assert line.startswith("MissingExtraError |"), out
    assert f"oneiric-adapters-storage[{extra}]" in line
    assert issubclass(MissingExtraError, ImportError)
