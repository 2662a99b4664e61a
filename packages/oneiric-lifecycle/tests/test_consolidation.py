"""The shared homes as lifecycle uses them: error categories, timestamps, snapshot writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pydantic
import pytest

from oneiric.core import Candidate, Resolver, exit_code_for, load_settings
from oneiric.core.helpers import EXIT_CODES, parse_timestamp
from oneiric.lifecycle import ActivationError, ActivityStore, LifecycleManager, snapshot_path
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    size: int = 1


def _raises(exc: BaseException) -> Any:
    def build() -> Any:
        raise exc

    return build


def _validation_error() -> pydantic.ValidationError:
    try:
        Model(size="big")  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _bad_settings(resolver: Resolver, tmp_path: Path) -> dict[str, Any]:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "oneiric.toml").write_text('[adapter.provider_settings.bad.main]\nsize = "big"\n')
    resolver.register(Candidate("adapter", "bad", "main", Model, settings_model=Model))
    return {"settings": load_settings(conf)}


def _factory_raising(exc: BaseException) -> Any:
    def setup(resolver: Resolver, tmp_path: Path) -> dict[str, Any]:
        resolver.register(Candidate("adapter", "bad", "main", _raises(exc)))
        return {}

    return setup


def _unimportable(resolver: Resolver, tmp_path: Path) -> dict[str, Any]:
    resolver.register(Candidate("adapter", "bad", "main", "oneiric_no_such_module:Factory"))
    return {}


@pytest.mark.parametrize(
    ("setup", "cause"),
    [
        (_bad_settings, "ConfigError"),
        (_unimportable, "FactoryError"),
        (_factory_raising(ImportError("no module named 'redis'")), "ImportError"),
        (_factory_raising(ModuleNotFoundError("no module named 'redis'")), "ModuleNotFoundError"),
        (_factory_raising(_validation_error()), "ValidationError"),
    ],
    ids=["settings", "factory-import", "import-error", "module-not-found", "validation"],
)
async def test_attack_activation_error_category_invalid_for_config_or_code_causes(
    make_manager: Any, resolver: Resolver, tmp_path: Path, setup: Any, cause: str
) -> None:
    """Wrong configuration or code is 'invalid' on the error itself: no cause table needed."""
    manager: LifecycleManager = make_manager(**setup(resolver, tmp_path))
    with pytest.raises(ActivationError) as info:
        await manager.activate("adapter", "bad")
    error = info.value
    assert error.error_type == cause  # type: ignore[attr-defined]
    assert vars(error).get("category") == "invalid"  # declared at construction
    assert exit_code_for(error) == EXIT_CODES["invalid"]
    await manager.shutdown()


@pytest.mark.parametrize(
    "exc", [RuntimeError("connection refused"), OSError("network unreachable")],
    ids=["runtime", "oserror"],
)
async def test_attack_activation_error_category_stays_unavailable_for_outages(
    make_manager: Any, resolver: Resolver, exc: BaseException
) -> None:
    resolver.register(Candidate("adapter", "bad", "main", _raises(exc)))
    manager: LifecycleManager = make_manager()
    with pytest.raises(ActivationError) as info:
        await manager.activate("adapter", "bad")
    assert "category" not in vars(info.value)
    assert exit_code_for(info.value) == EXIT_CODES["unavailable"]
    await manager.shutdown()


def _times(doc: dict[str, Any]) -> list[str]:
    entry = doc["keys"][0]
    return [
        doc["started_at"], doc["written_at"], entry["bound_at"],
        entry["recent_failures"][0]["at"], entry["activity"]["at"],
    ]


async def test_status_times_use_the_one_timestamp_format(
    make_manager: Any, resolver: Resolver, ledger: Any, state: Path
) -> None:
    ledger.behaviour["a"] = {"health": False}
    state.mkdir(parents=True, exist_ok=True)
    store = ActivityStore(state / "activity.sqlite", clock=lambda: NOW)
    manager: LifecycleManager = make_manager(clock=lambda: NOW, activity_store=store)
    await manager.activate("adapter", "cache")
    with pytest.raises(Exception, match="health check"):
        await manager.swap("adapter", "cache", "a")
    store.pause("adapter", "cache", note="maintenance")
    await apoll_until(lambda: manager.activity("adapter", "cache") == "paused")
    doc = manager.status()
    for text in _times(dict(doc)):
        assert text == "2023-11-14T22:13:20.250Z", doc
        parse_timestamp(text)
    assert store.get("adapter", "cache").as_dict()["at"] == "2023-11-14T22:13:20.250Z"
    assert store.get("adapter", "cache").at == NOW  # the record and the file keep seconds
    path = manager.write_status()
    assert path is not None
    assert _times(json.loads(path.read_text())) == _times(dict(doc))
    await manager.shutdown()
    store.close()


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
async def test_attack_snapshot_temp_name_planted_symlink_is_not_followed(
    make_manager: Any, state: Path, tmp_path: Path
) -> None:
    """A fixed temp name let anything that could write the status dir redirect the write."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    path = snapshot_path(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    planted = path.with_name(f".{path.name}.tmp")
    planted.symlink_to(victim)
    manager: LifecycleManager = make_manager()
    await manager.activate("adapter", "cache")
    assert manager.write_status() == path
    assert victim.read_text() == "keep me\n"
    assert not path.is_symlink() and json.loads(path.read_text())["keys"][0]["bound"] == "b"
    await manager.shutdown()
