"""Activation, handles, leases, factories, settings and every bad input on the way in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest

from oneiric.core import (
    Candidate,
    InvalidCandidateError,
    NotRegisteredError,
    Resolver,
    SelectionUnavailableError,
    load_settings,
)
from oneiric.lifecycle import (
    ActivationError,
    DomainBridge,
    HealthReport,
    LifecycleManager,
    NotActiveError,
)

pytestmark = pytest.mark.anyio


class CacheSettings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    size: int = 10
    password: pydantic.SecretStr | None = None


class Sized:
    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings


async def test_activate_binds_the_winner_and_handle_reads_it(
    make_manager: Any, ledger: Any
) -> None:
    manager: LifecycleManager = make_manager()
    instance = await manager.activate("adapter", "cache")
    assert instance.provider == "b"  # priority 2 beats 1
    assert instance.inited
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    handle = bridge.handle("cache")
    assert handle.instance is instance
    async with bridge.lease("cache") as leased:
        assert leased is instance
        assert manager._slots[("adapter", "cache", None)].bound.leases == 1  # type: ignore[union-attr]
    assert manager._slots[("adapter", "cache", None)].bound.leases == 0  # type: ignore[union-attr]
    with bridge.lease_sync("cache") as leased_sync:
        assert leased_sync is instance
    # a second activate returns the bound instance, builds nothing
    assert await manager.activate("adapter", "cache") is instance
    assert len(ledger.built) == 1
    await manager.shutdown()
    assert ledger.all_cleaned_once()
    with pytest.raises(NotActiveError, match="shut down"):
        handle.instance.call()


async def test_activate_named_provider(make_manager: Any) -> None:
    manager = make_manager()
    instance = await manager.activate("adapter", "cache", "a")
    assert instance.provider == "a"
    status = manager.status()["keys"][0]
    assert status["bound"] == "a" and status["winner"] == "b"
    assert status["differs"] and status["reason"].startswith("manual swap to a")
    await manager.shutdown()


async def test_sync_component_and_async_factory(
    make_manager: Any, resolver: Resolver, kit: Any
) -> None:
    made: list[Any] = []

    async def build() -> Any:
        made.append(kit.SyncComponent())
        return made[-1]

    resolver.register(Candidate("service", "mailer", "smtp", build))
    manager = make_manager()
    instance = await manager.activate("service", "mailer")
    assert instance is made[0] and instance.events == ["init"]
    report = await manager.probe("service", "mailer")
    assert report == HealthReport(True, "fine")
    assert manager.status("service")["keys"][0]["last_health"]["ok"] is True
    await manager.shutdown()
    assert instance.events == ["init", "cleanup"]


async def test_component_without_optional_methods(make_manager: Any, resolver: Resolver) -> None:
    resolver.register(Candidate("task", "clock", "plain", object))
    manager = make_manager()
    instance = await manager.activate("task", "clock")
    assert type(instance) is object
    report = await manager.probe("task", "clock")
    assert report.ok and "no health()" in report.detail
    await manager.shutdown()


async def test_factory_receives_validated_settings(
    make_manager: Any, resolver: Resolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "oneiric.toml").write_text(
        '[adapter.provider_settings.sized.main]\nsize = 42\npassword = "${secret:CACHE_PW}"\n'
    )
    monkeypatch.setenv("ONEIRIC_SECRET_CACHE_PW", "hunter2")
    resolver.register(Candidate("adapter", "sized", "main", Sized, settings_model=CacheSettings))
    settings = load_settings(config_dir)
    manager = make_manager(settings=settings)
    instance = await manager.activate("adapter", "sized")
    assert instance.settings.size == 42
    assert instance.settings.password.get_secret_value() == "hunter2"
    status = manager.status()
    entry = next(k for k in status["keys"] if k["key"] == "sized")
    assert entry["settings"] == {"size": 42, "password": "**********"}
    assert "hunter2" not in repr(status)
    await manager.shutdown()


async def test_factory_with_model_and_no_settings_gets_defaults(
    make_manager: Any, resolver: Resolver
) -> None:
    resolver.register(Candidate("adapter", "sized", "main", Sized, settings_model=CacheSettings))
    manager = make_manager()
    instance = await manager.activate("adapter", "sized")
    assert instance.settings == CacheSettings()
    await manager.shutdown()


async def test_tenant_without_selection_shares_global_instance(
    make_manager: Any, resolver: Resolver, ledger: Any
) -> None:
    resolver.set_selections("adapter", {"cache": "a"}, tenant="acme")
    manager = make_manager()
    shared = await manager.activate("adapter", "cache", tenant="globex")
    glob = await manager.activate("adapter", "cache")
    assert shared is glob and shared.provider == "b"
    own = await manager.activate("adapter", "cache", tenant="acme")
    assert own.provider == "a"
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    assert bridge.handle("cache", tenant="acme").instance is own
    assert bridge.handle("cache", tenant="globex").instance is glob
    async with bridge.lease("cache", tenant="acme") as leased:
        assert leased is own
    assert len(ledger.built) == 2
    await manager.shutdown()


# ------------------------------------------------------------------ bad inputs


async def test_unknown_key(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    with pytest.raises(NotRegisteredError, match=r"adapter/nope.*known adapter keys: cache, queue"):
        await manager.activate("adapter", "nope")
    assert manager.status()["keys"] == [] and ledger.built == []
    await manager.shutdown()


async def test_unknown_provider(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    with pytest.raises(
        SelectionUnavailableError,
        match=r"'zzz' for adapter/cache is unavailable: not registered; registered providers: a, b",
    ):
        await manager.activate("adapter", "cache", "zzz")
    assert manager.status()["keys"] == [] and ledger.built == []
    await manager.activate("adapter", "cache")
    with pytest.raises(SelectionUnavailableError, match=r"'zzz'.*registered providers: a, b"):
        await manager.swap("adapter", "cache", "zzz")
    assert manager.status()["keys"][0]["bound"] == "b"
    assert len(ledger.built) == 1
    await manager.shutdown()


async def test_invalid_names(make_manager: Any) -> None:
    manager = make_manager()
    with pytest.raises(InvalidCandidateError, match="invalid key name 'Bad Key'"):
        await manager.activate("adapter", "Bad Key")
    with pytest.raises(InvalidCandidateError, match="invalid domain name"):
        DomainBridge("Adapter!", manager)
    assert manager.status()["keys"] == []
    await manager.shutdown()


async def test_factory_that_fails_to_import_is_recorded_for_that_component_alone(
    make_manager: Any, resolver: Resolver
) -> None:
    resolver.register(Candidate("adapter", "broken", "ghost", "oneiric_no_such_module:Factory"))
    manager = make_manager()
    with pytest.raises(ActivationError) as info:
        await manager.activate("adapter", "broken")
    message = str(info.value)
    assert "cannot build adapter/broken/ghost" in message
    assert "oneiric_no_such_module" in message and "nothing was bound" in message
    assert "\n" not in message
    # the other keys are unaffected
    assert (await manager.activate("adapter", "queue")).provider == "x"
    keys = {k["key"]: k for k in manager.status()["keys"]}
    assert keys["broken"]["bound"] is None
    assert keys["broken"]["recent_failures"][0]["error_type"] == "FactoryError"
    assert keys["broken"]["reason"].startswith("not bound: activation failed")
    assert keys["queue"]["bound"] == "x" and keys["queue"]["failures"] == 0
    with pytest.raises(NotActiveError, match="its last activation failed"):
        DomainBridge("adapter", manager).handle("broken")
    await manager.shutdown()


async def test_settings_failing_validation(
    make_manager: Any, resolver: Resolver, tmp_path: Path, ledger: Any
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "oneiric.toml").write_text(
        '[adapter.provider_settings.sized.main]\nsize = "big"\n'
    )
    resolver.register(Candidate("adapter", "sized", "main", Sized, settings_model=CacheSettings))
    manager = make_manager(settings=load_settings(config_dir))
    with pytest.raises(ActivationError) as info:
        await manager.activate("adapter", "sized")
    message = str(info.value)
    assert "invalid settings for adapter/sized/main" in message
    assert "adapter.provider_settings.sized.main.size" in message
    assert "oneiric.toml" in message
    with pytest.raises(NotActiveError):
        DomainBridge("adapter", manager).handle("sized")
    entry = manager.status()["keys"][0]
    assert entry["bound"] is None and entry["recent_failures"][0]["error_type"] == "ConfigError"
    await manager.shutdown()


async def test_handle_lease_swap_probe_before_activate(make_manager: Any) -> None:
    manager = make_manager()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    with pytest.raises(
        NotActiveError, match=r"adapter/cache is not active; active adapter keys: none"
    ):
        bridge.handle("cache")
    with pytest.raises(NotActiveError, match=r"call 'await lifecycle\.activate"):
        async with bridge.lease("cache"):
            pass
    with pytest.raises(NotActiveError, match="adapter/cache is not active"), bridge.lease_sync(
        "cache"
    ):
        pass
    with pytest.raises(NotActiveError, match="adapter/cache is not active"):
        await manager.swap("adapter", "cache", "a")
    with pytest.raises(NotActiveError, match="adapter/cache is not active"):
        await manager.probe("adapter", "cache")
    assert manager.status()["keys"] == []
    await manager.shutdown()


async def test_activate_after_shutdown_is_refused(make_manager: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    await manager.shutdown()
    await manager.shutdown()  # idempotent
    with pytest.raises(NotActiveError, match="shut down; create a new one"):
        await manager.activate("adapter", "cache")


async def test_override_for_tests(make_manager: Any, ledger: Any) -> None:
    manager = make_manager()
    fake = object()
    bridge: DomainBridge[Any] = DomainBridge("adapter", manager)
    with manager.override("adapter", "cache", fake):
        assert bridge.handle("cache").instance is fake
        async with bridge.lease("cache") as leased:
            assert leased is fake
        assert manager.status()["keys"][0]["reason"].startswith("override in force")
    with pytest.raises(NotActiveError):
        bridge.handle("cache")
    real = await manager.activate("adapter", "cache")
    with manager.override("adapter", "cache", fake):
        assert bridge.handle("cache").instance is fake
    assert bridge.handle("cache").instance is real
    await manager.shutdown()
    assert ledger.all_cleaned_once() and len(ledger.built) == 1


async def test_swap_for_a_tenant_sharing_the_global_instance(make_manager: Any) -> None:
    manager = make_manager()
    await manager.activate("adapter", "cache")
    with pytest.raises(NotActiveError, match="no instance of its own for tenant 'acme'"):
        await manager.swap("adapter", "cache", "a", tenant="acme")
    assert manager.status()["keys"][0]["bound"] == "b" and len(manager.status()["keys"]) == 1
    await manager.shutdown()


def test_manager_on_two_loops_is_refused(make_manager: Any) -> None:
    import asyncio

    manager = make_manager()
    asyncio.run(manager.activate("adapter", "cache"))
    with pytest.raises(RuntimeError, match="belongs to another event loop"):
        asyncio.run(manager.activate("adapter", "queue"))
    manager._closed = True  # its loop is gone; nothing left to clean up asynchronously
