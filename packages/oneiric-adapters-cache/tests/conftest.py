"""Live-server fixtures: the shared CI servers and private ones a test may kill.

The shared servers come from ``.ci/services/cache.sh`` through
``ONEIRIC_TEST_REDIS_URL`` / ``ONEIRIC_TEST_MEMCACHED``; without them a live test
skips locally and fails under ``CI=true`` (``oneiric.testing.require_live``).
Tests that stop or misconfigure a server spawn their own on a free port and
never touch the shared ones.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oneiric.testing import free_port, poll_until, require_live


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("ONEIRIC_TEST_REDIS_URL", "")
    require_live(bool(url), "redis at ONEIRIC_TEST_REDIS_URL")
    return url


@pytest.fixture(scope="session")
def memcached_address() -> tuple[str, int]:
    address = os.environ.get("ONEIRIC_TEST_MEMCACHED", "")
    require_live(bool(address), "memcached at ONEIRIC_TEST_MEMCACHED (host:port)")
    host, _, port = address.rpartition(":")
    return host, int(port)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    return free_port()


def _answers(port: int, request: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


class PrivateServer:
    """A server process this test owns: start, kill and restart it on one port."""

    def __init__(self, argv: Callable[[int], list[str]], probe: tuple[bytes, bytes]) -> None:
        self.port = free_port()
        self._argv = argv
        self._probe = probe
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateServer:
        self.process = subprocess.Popen(
            self._argv(self.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        poll_until(
            lambda: _answers(self.port, *self._probe),
            message=f"private server on port {self.port} answering",
        )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[Callable[..., PrivateServer]]:
    """``start(*extra_args)`` -> a redis-server of this test's own on a free port."""
    binary = shutil.which("redis-server")
    require_live(binary is not None, "redis-server on PATH (.ci/services/cache.sh installs it)")
    servers: list[PrivateServer] = []
    workdir = Path(tempfile.mkdtemp(prefix="oneiric-private-redis-"))

    def start(*extra: str) -> PrivateServer:
        def argv(port: int) -> list[str]:
            return [
                str(binary),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                *extra,
            ]

        # a password-protected server answers PING with -NOAUTH: still "answering"
        server = PrivateServer(argv, (b"PING\r\n", b""))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def private_memcached() -> Iterator[Callable[[], PrivateServer]]:
    """``start()`` -> a memcached of this test's own on a free port."""
    binary = shutil.which("memcached")
    require_live(binary is not None, "memcached on PATH (.ci/services/cache.sh installs it)")
    servers: list[PrivateServer] = []
    user = ["-u", "root"] if os.geteuid() == 0 else []

    def start() -> PrivateServer:
        def argv(port: int) -> list[str]:
            return [str(binary), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-I", "2m", *user]

        server = PrivateServer(argv, (b"version\r\n", b"VERSION"))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def wait_dead() -> Callable[[int], None]:
    """Block until nothing answers on ``port`` any more."""

    def wait(port: int) -> None:
        def dead() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return True
            time.sleep(0.05)
            return False

        poll_until(dead, message=f"port {port} closed")

    return wait
