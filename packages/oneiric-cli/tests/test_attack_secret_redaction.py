"""Attack: ``oneiric status`` printed a secret a provider model held as a plain ``str``.

A real application (a ``LifecycleManager`` with real settings files) publishes
its snapshot; the CLI, through click's CliRunner, prints it as JSON and as a
table.  Neither may contain the secret, from either built-in secret source.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from oneiric.core import Candidate, Resolver, _redact, load_settings
from oneiric.lifecycle import LifecycleManager

SECRET = "hunter2-Sup3rS3cret"


class DsnSettings(BaseModel):
    dsn: str


class Client:
    def __init__(self, settings: DsnSettings) -> None:
        self.settings = settings

    def health(self) -> bool:
        return True


def refuse(settings: DsnSettings) -> Client:
    raise ConnectionError(f"connection refused by {settings.dsn}")


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    _redact.reset_registry()
    yield
    _redact.reset_registry()


@pytest.fixture(params=["env", "secrets_dir"])
def secret_source(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, workspace: Any
) -> str:
    secrets = workspace.root / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(secrets))
    monkeypatch.delenv("ONEIRIC_SECRET_REDIS_PW", raising=False)
    if request.param == "env":
        monkeypatch.setenv("ONEIRIC_SECRET_REDIS_PW", SECRET)
    else:
        (secrets / "redis_pw").write_text(SECRET + "\n", encoding="utf-8")
    (workspace.config / "oneiric.toml").write_text(
        "[adapter.provider_settings.cache.redis]\n"
        'dsn = "redis://:${secret:redis_pw}@host/0"\n',
        encoding="utf-8",
    )
    return str(request.param)


def _publish(config: Path, state: Path, factory: Callable[[DsnSettings], Client]) -> None:
    """Run an application that activates adapter/cache and writes its status snapshot."""

    async def app() -> None:
        resolver = Resolver(stack_order={})
        resolver.register(
            Candidate("adapter", "cache", "redis", factory, settings_model=DsnSettings)
        )
        manager = LifecycleManager(resolver, settings=load_settings(config), state_dir=state)
        try:
            await manager.activate("adapter", "cache")
        except Exception:  # the failing variant: the failure is what gets published
            pass
        assert manager.write_status() is not None
        # Leave the snapshot in place (shutdown would remove it): the CLI reads it.
        manager._status_file = None

    asyncio.run(app())


@pytest.mark.parametrize("factory", [Client, refuse], ids=["bound", "failed_activation"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_attack_status_prints_str_dsn_secret(
    workspace: Any,
    oneiric_inproc: Callable[..., Any],
    secret_source: str,
    factory: Callable[[DsnSettings], Client],
    as_json: bool,
) -> None:
    _publish(workspace.config, workspace.state, factory)
    snapshots = list((workspace.state / "status").glob("*.json"))
    assert snapshots
    for snapshot in snapshots:
        assert SECRET not in snapshot.read_text(encoding="utf-8")
    result = oneiric_inproc("status", *(["--json"] if as_json else []))
    assert result.code == 0, result.err
    assert SECRET not in result.out and SECRET not in result.err
    if as_json:
        keys = [k for doc in json.loads(result.out)["processes"] for k in doc["keys"]]
        assert any(k["domain"] == "adapter" and k["key"] == "cache" for k in keys), result.out


LEAKY_APP = '''
from pydantic import BaseModel

from oneiric.core import Candidate


class DsnSettings(BaseModel):
    dsn: str


def refuse(settings):
    raise ConnectionError(f"connection refused by {settings.dsn}")


def register(resolver):
    resolver.register(Candidate("notify", "leaky", "smtp", refuse, settings_model=DsnSettings))
'''


def test_attack_swap_validate_error_line_prints_str_dsn_secret(
    workspace: Any, oneiric_inproc: Callable[..., Any], secret_source: str
) -> None:
    """The one-line ``Error:`` of a failed ``swap --validate`` quotes the factory's message."""
    (workspace.cwd / "leakyapp.py").write_text(LEAKY_APP, encoding="utf-8")
    (workspace.config / "oneiric.toml").write_text(
        "[notify.provider_settings.leaky.smtp]\n"
        'dsn = "smtp://:${secret:redis_pw}@host/0"\n',
        encoding="utf-8",
    )
    result = oneiric_inproc(
        "--state-dir", str(workspace.state), "--config", str(workspace.config),
        "--app", "leakyapp:register", "swap", "notify", "leaky", "smtp", "--validate",
        base=False,
    )
    assert result.code != 0
    (line,) = [ln for ln in result.err.splitlines() if ln.startswith("Error: ")]
    assert "connection refused by" in line and "nothing was bound" in line
    assert SECRET not in result.err and SECRET not in result.out
