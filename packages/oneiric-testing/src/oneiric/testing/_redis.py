"""A private ``redis-server`` a test owns: kill it, freeze it, restart it empty.

Fleet and runtime tests must see what a user's instances see when Redis dies
(SIGKILL, no goodbye to clients), stalls (SIGSTOP) or comes back empty - which
the shared CI server (``ONEIRIC_TEST_REDIS_URL``) must never be made to do.
So each such test starts its own server from ``redis-server`` on PATH, on a
free loopback port, with persistence off (a restart is a wiped server).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._helpers import free_port, poll_until, require_live

__all__ = ["PrivateRedis", "private_redis"]

#: Generous ceiling for the server to answer PING (never an assertion on speed).
START_CEILING = 60.0


class PrivateRedis:
    """``start()``, ``kill()`` (SIGKILL), ``pause()``/``resume()`` (SIGSTOP/SIGCONT), ``url``."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self._binary = binary
        self._workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start (or start again, empty) on the same port; return once it answers PING."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self._binary, "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--dir", str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        poll_until(self._pong, timeout=START_CEILING, message=f"private redis on {self.port}")

    def kill(self) -> None:
        """SIGKILL (no shutdown, no goodbye to clients) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process dies only when run
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a stalled server)."""
        assert self.process is not None, "start() first"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, "start() first"
        self.process.send_signal(signal.SIGCONT)


def _available() -> str | None:
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        return None
    return binary


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started ``PrivateRedis`` (skips locally without redis-server/redis-py; fails in CI)."""
    binary = _available()
    require_live(binary is not None,
                 "redis-server on PATH (.ci/services/cache.sh installs it) and redis-py")
    assert binary is not None
    server = PrivateRedis(binary, tmp_path / "private-redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
