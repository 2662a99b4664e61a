"""Attack: a secret held as a plain ``str`` leaks into the status snapshot.

``dsn = "redis://:${secret:redis_pw}@host/0"`` validated by a provider model
whose ``dsn`` is a ``str`` used to be written in clear to
``<state dir>/status/<pid>.json``; so did a failure text quoting it.  Real
settings files, a real ``LifecycleManager`` activation and the real file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from oneiric.core import ActivationError, Candidate, Resolver, _redact, load_settings
from oneiric.lifecycle import LifecycleManager

pytestmark = pytest.mark.anyio

SECRET = "hunter2-Sup3rS3cret"


class DsnSettings(BaseModel):
    dsn: str
    replicas: list[str] = []


class Client:
    def __init__(self, settings: DsnSettings) -> None:
        self.settings = settings

    def health(self) -> bool:
        return True


def refuse(settings: DsnSettings) -> Client:
    raise ConnectionError(f"connection refused by {settings.dsn}")


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ONEIRIC_SECRET"):
            monkeypatch.delenv(name)
    _redact.reset_registry()
    yield
    _redact.reset_registry()


@pytest.fixture(params=["env", "secrets_dir"])
def settings_dir(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(secrets))
    if request.param == "env":
        monkeypatch.setenv("ONEIRIC_SECRET_REDIS_PW", SECRET)
    else:
        (secrets / "redis_pw").write_text(SECRET + "\n", encoding="utf-8")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "oneiric.toml").write_text(
        "[adapter.provider_settings.cache.redis]\n"
        'dsn = "redis://:${secret:redis_pw}@host/0"\n'
        'replicas = ["redis://:${secret:redis_pw}@replica/0"]\n',
        encoding="utf-8",
    )
    return conf


async def test_attack_str_dsn_secret_in_status_snapshot(settings_dir: Path, state: Path) -> None:
    resolver = Resolver(stack_order={})
    resolver.register(
        Candidate("adapter", "cache", "redis", Client, settings_model=DsnSettings)
    )
    manager = LifecycleManager(resolver, settings=load_settings(settings_dir), state_dir=state)
    try:
        client: Any = await manager.activate("adapter", "cache")
        assert SECRET in client.settings.dsn  # the provider gets the real value
        path = manager.write_status()
        assert path is not None
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text
        assert SECRET not in json.dumps(manager.status())
        (entry,) = json.loads(text)["keys"]
        assert entry["settings"] == {"dsn": "**********", "replicas": ["**********"]}
    finally:
        await manager.shutdown()


async def test_attack_secret_quoted_by_a_failed_activation_in_status_snapshot(
    settings_dir: Path, state: Path
) -> None:
    resolver = Resolver(stack_order={})
    resolver.register(
        Candidate("adapter", "cache", "redis", refuse, settings_model=DsnSettings)
    )
    manager = LifecycleManager(resolver, settings=load_settings(settings_dir), state_dir=state)
    try:
        with pytest.raises(ActivationError):
            await manager.activate("adapter", "cache")
        path = manager.write_status()
        assert path is not None
        text = path.read_text(encoding="utf-8")
        assert "connection refused" in text or "**********" in text
        assert SECRET not in text
    finally:
        await manager.shutdown()
