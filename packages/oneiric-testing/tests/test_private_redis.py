"""``PrivateRedis``: a server a test may kill, freeze and restart empty (live)."""

from __future__ import annotations

import pytest

from oneiric.testing import PrivateRedis

pytestmark = pytest.mark.live


def test_kill_and_restart_gives_an_empty_server_on_the_same_port(
    private_redis: PrivateRedis,
) -> None:
    import redis

    client = redis.Redis.from_url(private_redis.url, socket_timeout=5)
    client.set("k", "v")
    port = private_redis.port
    private_redis.kill()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(private_redis.url, socket_timeout=5).ping()
    private_redis.start()
    fresh = redis.Redis.from_url(private_redis.url, socket_timeout=5)
    assert private_redis.port == port and fresh.get("k") is None


def test_a_paused_server_does_not_answer_until_resumed(private_redis: PrivateRedis) -> None:
    import redis

    client = redis.Redis.from_url(private_redis.url, socket_timeout=0.5)
    private_redis.pause()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    private_redis.resume()
    assert redis.Redis.from_url(private_redis.url, socket_timeout=5).ping()
