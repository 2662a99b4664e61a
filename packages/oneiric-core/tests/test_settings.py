"""Settings: files, domains, interpolation, secrets, validation, overlay and ``apply``.

Every invalid input must fail with a ``ConfigError`` whose one-line message
names the file, the line when it is known, the key path, and what to do.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from oneiric.core import (
    Candidate,
    ConfigError,
    FactoryError,
    InvalidCandidateError,
    Resolver,
    Settings,
    Source,
    configure_logging,
    get_plugin_manager,
    hookimpl,
    load_settings,
    read_overlay,
    redact,
    write_overlay,
)

_counter = itertools.count()


class RedisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    port: int = 6379
    password: SecretStr | None = None
    dsn: SecretStr | None = None


class MemorySettings(BaseModel):
    max_items: int = 100
    token: str = ""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient configuration: own state dir, no secrets, cwd without ./settings."""
    for name in list(os.environ):
        if name.startswith("ONEIRIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ONEIRIC_SECRETS_DIR", str(tmp_path / "secrets"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def config_error(*fragments: str, call: Any, **kwargs: Any) -> str:
    """Assert ``call(**kwargs)`` raises a one-line ConfigError containing ``fragments``."""
    with pytest.raises(ConfigError) as error:
        call(**kwargs)
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def redis(**kw: Any) -> Candidate:
    return Candidate("adapter", "cache", "redis", "json:loads", settings_model=RedisSettings, **kw)


def memory(**kw: Any) -> Candidate:
    return Candidate(
        "adapter", "cache", "memory", "json:loads", settings_model=MemorySettings, **kw
    )


# ------------------------------------------------------------ which directory


def test_no_directory_means_empty_settings() -> None:
    settings = load_settings()
    assert settings.config_dir is None
    assert settings.files == ()
    assert settings.domains == {}
    assert settings.selections("adapter") == {}
    assert settings.swap_policy("adapter", "cache") == "sticky"


def test_explicit_path(cfg: Path) -> None:
    write(cfg, "oneiric.toml", '[adapter]\nselections = { cache = "redis" }\n')
    settings = load_settings(cfg)
    assert settings.config_dir == cfg
    assert settings.files == (cfg / "oneiric.toml",)
    assert settings.selections("adapter") == {"cache": "redis"}


def test_oneiric_config_env(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(cfg, "oneiric.toml", '[adapter]\nselections = { cache = "env" }\n')
    monkeypatch.setenv("ONEIRIC_CONFIG", str(cfg))
    assert load_settings().selections("adapter") == {"cache": "env"}


def test_local_settings_directory() -> None:
    Path("settings").mkdir()  # in the test's own working directory
    write(Path("settings"), "oneiric.toml", '[adapter]\nselections = { cache = "local" }\n')
    settings = load_settings()
    assert settings.config_dir == Path("settings")
    assert settings.selections("adapter") == {"cache": "local"}


def test_precedence_path_then_env_then_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, provider in (("arg", "from-arg"), ("env", "from-env"), ("cwd/settings", "local")):
        (tmp_path / name).mkdir(exist_ok=True)
        write(
            tmp_path / name, "oneiric.toml", f'[adapter]\nselections = {{ cache = "{provider}" }}\n'
        )
    monkeypatch.setenv("ONEIRIC_CONFIG", str(tmp_path / "env"))
    assert load_settings(tmp_path / "arg").selections("adapter") == {"cache": "from-arg"}
    assert load_settings().selections("adapter") == {"cache": "from-env"}
    monkeypatch.delenv("ONEIRIC_CONFIG")
    assert load_settings().selections("adapter") == {"cache": "local"}


def test_missing_explicit_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    config_error(
        f"config directory {str(missing)!r} does not exist",
        "create it",
        call=load_settings,
        path=missing,
    )


def test_missing_env_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_CONFIG", str(tmp_path / "nope"))
    config_error("ONEIRIC_CONFIG points to", "unset ONEIRIC_CONFIG", call=load_settings)


def test_path_may_be_one_file(cfg: Path) -> None:
    file = write(cfg, "custom.toml", '[service]\nselections = { mail = "smtp" }\n')
    assert load_settings(file).selections("service") == {"mail": "smtp"}
    other = write(cfg, "custom.ini", "")
    config_error(str(other), "expected a .toml, .yaml or .yml", call=load_settings, path=other)


# ------------------------------------------------------------ files and domains


def test_sections_per_domain_singular_plural_and_custom(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [services]
        selections = { mail = "smtp" }

        [widget]
        selections = { clock = "digital" }
        """,
    )
    settings = load_settings(cfg)
    assert set(settings.domains) == {"adapter", "service", "widget"}
    assert settings.selections("service") == {"mail": "smtp"}
    assert settings.selections("widget") == {"clock": "digital"}


def test_singular_and_plural_section_together(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapters]
        selections = { cache = "memory" }
        """,
    )
    config_error(
        f"{cfg / 'oneiric.toml'}:4:",
        "domain 'adapter' appears as both [adapter] and [adapters]",
        "keep one",
        call=load_settings,
        path=cfg,
    )


def test_per_domain_files(cfg: Path) -> None:
    write(cfg, "adapters.toml", 'selections = { cache = "redis" }\n')
    write(cfg, "services.yaml", "selections:\n  mail: smtp\n")
    write(cfg, "tasks.yml", "selections:\n  cron: local\n")
    write(cfg, "widget.toml", 'selections = { clock = "digital" }\n')
    write(cfg, "README.md", "not a settings file")
    settings = load_settings(cfg)
    assert settings.selections("adapter") == {"cache": "redis"}
    assert settings.selections("service") == {"mail": "smtp"}
    assert settings.selections("task") == {"cron": "local"}
    assert settings.selections("widget") == {"clock": "digital"}
    assert {p.name for p in settings.files} == {
        "adapters.toml",
        "services.yaml",
        "tasks.yml",
        "widget.toml",
    }


def test_per_domain_file_overrides_the_section(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "memory", storage = "local" }
        swap_policy = { cache = "greedy" }

        [service]
        selections = { mail = "smtp" }
        """,
    )
    write(cfg, "adapters.yaml", "selections:\n  cache: redis\n")
    settings = load_settings(cfg)
    # The whole domain comes from the file; nothing is merged from the section.
    assert settings.selections("adapter") == {"cache": "redis"}
    assert settings.swap_policy("adapter", "cache") == "sticky"
    assert settings.selections("service") == {"mail": "smtp"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("adapters.toml", "adapters.yaml"),
        ("adapters.yml", "adapters.yaml"),
        ("adapter.toml", "adapters.toml"),
    ],
)
def test_two_files_for_one_domain(cfg: Path, first: str, second: str) -> None:
    write(cfg, first, "")
    write(cfg, second, "")
    config_error(
        "domain 'adapter' is also configured by",
        "keep one file per domain",
        call=load_settings,
        path=cfg,
    )


def test_main_file_must_be_toml(cfg: Path) -> None:
    write(cfg, "oneiric.yaml", "adapter: {}\n")
    config_error(
        str(cfg / "oneiric.yaml"),
        "the main settings file must be oneiric.toml",
        call=load_settings,
        path=cfg,
    )


def test_reserved_sections(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMOTE_URL", "https://manifests.example")
    write(
        cfg,
        "oneiric.toml",
        """
        [remote]
        url = "${env:REMOTE_URL}/acme.json"
        repository = "acme"

        [lifecycle]
        grace_seconds = 5

        [adapter]
        selections = { cache = "redis" }
        """,
    )
    settings = load_settings(cfg)
    assert settings.remote == {"url": "https://manifests.example/acme.json", "repository": "acme"}
    assert settings.lifecycle == {"grace_seconds": 5}
    assert set(settings.domains) == {"adapter"}


def test_reserved_section_must_be_a_table(cfg: Path) -> None:
    write(cfg, "oneiric.toml", 'remote = "https://x"\n')
    config_error(
        f"{cfg / 'oneiric.toml'}:1: [remote] must be a table",
        "write it as a [remote] section",
        call=load_settings,
        path=cfg,
    )


def test_reserved_name_is_not_a_per_domain_file(cfg: Path) -> None:
    write(cfg, "remote.toml", 'url = "https://x"\n')
    config_error(
        str(cfg / "remote.toml"),
        "'remote' is a reserved section, not a domain",
        "move it to [remote] in oneiric.toml",
        call=load_settings,
        path=cfg,
    )


def test_domain_must_be_a_table(cfg: Path) -> None:
    write(cfg, "oneiric.toml", 'adapter = "redis"\n')
    config_error(
        f"{cfg / 'oneiric.toml'}:1: adapter: a domain must be a table, got str",
        "write it as a [adapter] section",
        call=load_settings,
        path=cfg,
    )


# --------------------------------------------------- selections, tenants, policy


def test_selections_tenants_and_swap_policy(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis", storage = "s3@entry_point:oneiric-adapters-storage" }
        swap_policy = { cache = "greedy", storage = "sticky" }

        [adapter.tenants.acme]
        selections = { cache = "memory" }

        [adapter.tenants.globex]
        selections = {}
        """,
    )
    settings = load_settings(cfg)
    assert settings.selections("adapter") == {
        "cache": "redis",
        "storage": "s3@entry_point:oneiric-adapters-storage",
    }
    assert settings.selections("adapter", tenant="acme") == {"cache": "memory"}
    assert settings.selections("adapter", tenant="nobody") == {}
    assert settings.tenants("adapter") == ("acme", "globex")
    assert settings.swap_policy("adapter", "cache") == "greedy"
    assert settings.swap_policy("adapter", "storage") == "sticky"
    assert settings.swap_policy("adapter", "other") == "sticky"
    assert settings.swap_policy("service", "x") == "sticky"


def test_invalid_swap_policy(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.swap_policy]
        cache = "eager"
        """,
    )
    config_error(
        f"{cfg / 'oneiric.toml'}:5: adapter.swap_policy.cache:",
        "'sticky' or 'greedy'",
        "fix the value",
        call=load_settings,
        path=cfg,
    )


# ----------------------------------------------------------- invalid input


def test_malformed_toml(cfg: Path) -> None:
    write(cfg, "oneiric.toml", '[adapter]\nselections = { cache = "redis" }\nbroken = \n')
    config_error(
        f"{cfg / 'oneiric.toml'}:3: invalid TOML", "fix the file", call=load_settings, path=cfg
    )


def test_malformed_yaml(cfg: Path) -> None:
    write(cfg, "adapters.yaml", "selections:\n  cache: redis\n  storage: [unclosed\n")
    config_error(
        f"{cfg / 'adapters.yaml'}:", "invalid YAML", "fix the file", call=load_settings, path=cfg
    )


def test_yaml_duplicate_keys(cfg: Path) -> None:
    write(cfg, "adapters.yaml", "selections:\n  cache: redis\n  cache: memory\n")
    config_error(
        f"{cfg / 'adapters.yaml'}:3: invalid YAML: duplicate key 'cache'; fix the file",
        call=load_settings,
        path=cfg,
    )


def test_yaml_merge_keys_still_work(cfg: Path) -> None:
    write(
        cfg,
        "adapters.yaml",
        """
        provider_settings:
          cache:
            redis: &base
              url: redis://a
            memory:
              <<: *base
              port: 1
        """,
    )
    settings = load_settings(cfg)
    assert settings.raw_provider_settings("adapter", "cache", "memory") == {
        "url": "redis://a",
        "port": 1,
    }


def test_yaml_must_be_a_mapping_and_may_be_empty(cfg: Path) -> None:
    write(cfg, "adapters.yaml", "")
    assert load_settings(cfg).selections("adapter") == {}
    write(cfg, "adapters.yaml", "- cache\n- redis\n")
    config_error(
        str(cfg / "adapters.yaml"),
        "expected a mapping at the top level, got list",
        call=load_settings,
        path=cfg,
    )


def test_yaml_without_pyyaml(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oneiric.core import _safeload

    write(cfg, "adapters.yaml", "selections: {}\n")
    _safeload.strict_yaml_loader.cache_clear()
    monkeypatch.setitem(sys.modules, "yaml", None)
    try:
        config_error(
            "YAML settings need PyYAML",
            "pip install",
            "or use TOML",
            call=load_settings,
            path=cfg,
        )
    finally:
        _safeload.strict_yaml_loader.cache_clear()


@pytest.mark.parametrize(
    ("text", "where", "keypath", "hint"),
    [
        (
            '[adapter]\nselection = { cache = "redis" }\n',
            2,
            "adapter.selection",
            "expected selections, provider_settings, tenants or swap_policy",
        ),
        (
            '[adapter]\nselections = {}\n\n[adapter.tenants.eu]\nselection = { cache = "x" }\n',
            5,
            "adapter.tenants.eu.selection",
            "remove it or check the spelling",
        ),
        (
            "[adapter]\nselections = { cache = 5 }\n",
            2,
            "adapter.selections.cache",
            "fix the value",
        ),
    ],
)
def test_unknown_or_wrong_fields(cfg: Path, text: str, where: int, keypath: str, hint: str) -> None:
    write(cfg, "oneiric.toml", text)
    config_error(f"{cfg / 'oneiric.toml'}:{where}: {keypath}: ", hint, call=load_settings, path=cfg)


def test_unknown_field_in_yaml(cfg: Path) -> None:
    write(cfg, "adapters.yaml", "selections:\n  cache: redis\nswap_polcy:\n  cache: greedy\n")
    config_error(
        f"{cfg / 'adapters.yaml'}:3: adapter.swap_polcy: unknown setting",
        "expected selections, provider_settings, tenants or swap_policy",
        call=load_settings,
        path=cfg,
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[Adapter]\nselections = {}\n", (":1:", "invalid domain name 'Adapter'")),
        (
            '[adapter]\nselections = { Cache = "redis" }\n',
            (":2:", "adapter.selections.Cache", "invalid key name 'Cache'"),
        ),
        (
            '[adapter]\nselections = { cache = "Redis!" }\n',
            (":2:", "adapter.selections.cache", "invalid provider name 'Redis!'"),
        ),
        (
            '[adapter]\nselections = { cache = "redis@entry_point" }\n',
            ("adapter.selections.cache", "expected 'provider' or 'provider@kind:name'"),
        ),
        (
            '[adapter.tenants.acme]\nselections = { cache = "No Way" }\n',
            (":2:", "adapter.tenants.acme.selections.cache", "invalid provider name"),
        ),
        (
            '[adapter.provider_settings.cache."Bad Provider"]\nurl = "x"\n',
            (":1:", "adapter.provider_settings.cache.Bad Provider", "invalid provider name"),
        ),
    ],
)
def test_invalid_names(cfg: Path, text: str, fragments: tuple[str, ...]) -> None:
    write(cfg, "oneiric.toml", text)
    message = config_error(str(cfg / "oneiric.toml"), *fragments, call=load_settings, path=cfg)
    assert "use 1-64 characters" in message or "expected 'provider'" in message


def test_invalid_per_domain_file_name(cfg: Path) -> None:
    write(cfg, "My Widgets.toml", "")
    config_error(
        str(cfg / "My Widgets.toml"),
        "invalid domain name 'My Widgets'",
        call=load_settings,
        path=cfg,
    )


# ------------------------------------------------------------- interpolation


def test_env_interpolation(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_PROVIDER", "redis")
    monkeypatch.setenv("REDIS_HOST", "cache.internal")
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "${env:CACHE_PROVIDER}" }

        [adapter.provider_settings.cache.redis]
        url = "redis://${env:REDIS_HOST}:${env:REDIS_PORT:-6380}/0"
        hosts = ["${env:REDIS_HOST}", "${env:EMPTY_DEFAULT:-}"]
        literal = "costs $5 {not a reference}"
        """,
    )
    settings = load_settings(cfg)
    assert settings.selections("adapter") == {"cache": "redis"}
    assert settings.raw_provider_settings("adapter", "cache", "redis") == {
        "url": "redis://cache.internal:6380/0",
        "hosts": ["cache.internal", ""],
        "literal": "costs $5 {not a reference}",
    }


def test_environ_argument(cfg: Path) -> None:
    write(cfg, "oneiric.toml", '[adapter]\nselections = { cache = "${env:PICK}" }\n')
    settings = load_settings(cfg, environ={"PICK": "memory"})
    assert settings.selections("adapter") == {"cache": "memory"}


def test_missing_env_is_an_error(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.provider_settings.cache.redis]
        port = 1
        url = "${env:ONEIRIC_TEST_UNSET_VARIABLE}"
        """,
    )
    config_error(
        f"{cfg / 'oneiric.toml'}:6: adapter.provider_settings.cache.redis.url: "
        "environment variable ONEIRIC_TEST_UNSET_VARIABLE is not set",
        "${env:ONEIRIC_TEST_UNSET_VARIABLE:-default}",
        call=load_settings,
        path=cfg,
    )


@pytest.mark.parametrize(
    ("reference", "hint"),
    [
        ("${env:}", "write ${env:NAME}, ${env:NAME:-default} or ${secret:NAME}"),
        ("${ENV:HOME}", "malformed reference '${ENV:HOME}'"),
        ("${env:HOME", "malformed reference"),
        ("${secret:a:-b}", "takes no default; a missing secret is always an error"),
    ],
)
def test_malformed_reference(cfg: Path, reference: str, hint: str) -> None:
    write(
        cfg,
        "adapters.yaml",
        f"provider_settings:\n  cache:\n    redis:\n      url: '{reference}'\n",
    )
    config_error(
        f"{cfg / 'adapters.yaml'}:4: adapter.provider_settings.cache.redis.url: ",
        hint,
        call=load_settings,
        path=cfg,
    )


# ------------------------------------------------------------------- secrets


def secret_config(cfg: Path, name: str = "db-password") -> None:
    write(
        cfg,
        "oneiric.toml",
        f"""
        [adapter.provider_settings.cache.redis]
        url = "redis://cache"
        password = "${{secret:{name}}}"
        dsn = "redis://:${{secret:{name}}}@cache"
        """,
    )


def test_secret_from_environment(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "hunter2")
    secret_config(cfg)
    raw = load_settings(cfg).raw_provider_settings("adapter", "cache", "redis")
    assert isinstance(raw["password"], SecretStr)
    assert raw["password"].get_secret_value() == "hunter2"
    assert isinstance(raw["dsn"], SecretStr)
    assert raw["dsn"].get_secret_value() == "redis://:hunter2@cache"
    assert raw["url"] == "redis://cache"
    assert "hunter2" not in repr(raw)


def test_secret_from_secrets_directory(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db-password").write_text("from-file\n")
    secret_config(cfg)
    raw = load_settings(cfg).raw_provider_settings("adapter", "cache", "redis")
    assert raw["password"].get_secret_value() == "from-file"


def test_environment_beats_secrets_directory(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db-password").write_text("from-file")
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "from-env")
    secret_config(cfg)
    raw = load_settings(cfg).raw_provider_settings("adapter", "cache", "redis")
    assert raw["password"].get_secret_value() == "from-env"


class VaultPlugin:
    """A secrets plugin: answers for some names, None for the others."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def oneiric_secret(self, name: str) -> str | None:
        self.asked.append(name)
        return "from-vault" if name == "db-password" else None


@pytest.fixture
def vault() -> Iterator[VaultPlugin]:
    plugin = VaultPlugin()
    manager = get_plugin_manager()
    manager.register(plugin, name="test-vault")
    yield plugin
    manager.unregister(name="test-vault")


def test_secret_plugin_answers_before_builtins(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, vault: VaultPlugin
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "from-env")
    monkeypatch.setenv("ONEIRIC_SECRET_OTHER", "other-from-env")
    secret_config(cfg)
    write(
        cfg,
        "services.toml",
        '[provider_settings.mail.smtp]\npassword = "${secret:other}"\n',
    )
    settings = load_settings(cfg)
    raw = settings.raw_provider_settings("adapter", "cache", "redis")
    assert raw["password"].get_secret_value() == "from-vault"
    # The plugin returned None for "other": the built-in environment source answered.
    other = settings.raw_provider_settings("service", "mail", "smtp")["password"]
    assert other.get_secret_value() == "other-from-env"
    assert "other" in vault.asked


def test_failing_secret_plugin(cfg: Path) -> None:
    class Broken:
        @hookimpl
        def oneiric_secret(self, name: str) -> str | None:
            raise RuntimeError("vault sealed\nsecond line")

    manager = get_plugin_manager()
    manager.register(Broken(), name="test-broken-vault")
    try:
        secret_config(cfg)
        config_error(
            f"{cfg / 'oneiric.toml'}:3: adapter.provider_settings.cache.redis.password",
            "secret source failed for 'db-password': RuntimeError: vault sealed second line",
            "check the secrets plugin",
            call=load_settings,
            path=cfg,
        )
    finally:
        manager.unregister(name="test-broken-vault")


def test_missing_secret(cfg: Path, tmp_path: Path) -> None:
    secret_config(cfg)
    config_error(
        f"{cfg / 'oneiric.toml'}:3: adapter.provider_settings.cache.redis.password",
        "secret 'db-password' not found",
        "set ONEIRIC_SECRET_DB_PASSWORD",
        f"create {tmp_path / 'secrets' / 'db-password'}",
        call=load_settings,
        path=cfg,
    )


def test_secret_names_cannot_walk_the_file_system(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "secrets" / "sub").mkdir(parents=True)
    (tmp_path / "outside").write_text("leaked")
    write(cfg, "oneiric.toml", '[remote]\ntoken = "${secret:../outside}"\n')
    config_error("malformed reference '${secret:../outside}'", call=load_settings, path=cfg)
    write(cfg, "oneiric.toml", '[remote]\ntoken = "${secret:..}"\n')
    config_error("secret '..' not found", call=load_settings, path=cfg)


def test_secrets_are_redacted_everywhere(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_DB_PASSWORD", "hunter2")
    monkeypatch.setenv("ONEIRIC_SECRET_TOKEN", "t0ken")
    secret_config(cfg)
    with (cfg / "oneiric.toml").open("a") as fh:
        fh.write('\n[remote]\ntoken = "${secret:token}"\n')
    settings = load_settings(cfg)

    view = settings.as_dict()
    text = json.dumps(view)
    assert "hunter2" not in text and "t0ken" not in text
    redis_view = view["domains"]["adapter"]["provider_settings"]["cache"]["redis"]
    assert redis_view == {
        "url": "redis://cache",
        "password": "**********",
        "dsn": "**********",
    }
    assert view["remote"] == {"token": "**********"}
    assert redact(settings.settings_for(redis())) == {
        "url": "redis://cache",
        "port": 6379,
        "password": "**********",
        "dsn": "**********",
    }
    assert "hunter2" not in repr(settings)

    # ... and in logs, including nested mappings.
    stream = io.StringIO()
    root = logging.getLogger("oneiric")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        configure_logging(json=True, stream=stream)
        from oneiric.core import get_logger

        get_logger("oneiric.test.settings").warning(
            "provider settings",
            raw=settings.raw_provider_settings("adapter", "cache", "redis"),
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]
    assert "hunter2" not in stream.getvalue()
    assert json.loads(stream.getvalue())["raw"]["password"] == "**********"


# -------------------------------------------------------- provider settings


def test_settings_for_validates_with_the_model(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter.provider_settings.cache.redis]
        url = "redis://cache"
        port = "6380"
        """,
    )
    settings = load_settings(cfg)
    value = settings.settings_for(redis())
    assert isinstance(value, RedisSettings)
    assert (value.url, value.port, value.password) == ("redis://cache", 6380, None)
    # No settings in the files: the model's defaults.
    assert settings.settings_for(memory()) == MemorySettings()
    # No model: None.
    assert settings.settings_for(Candidate("adapter", "cache", "plain", "json:loads")) is None


def test_settings_model_by_reference(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"oneiric_test_settings_models{next(_counter)}"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{name}.py").write_text(
        "import pydantic\n\nclass Model(pydantic.BaseModel):\n    size: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    try:
        write(cfg, "oneiric.toml", "[adapter.provider_settings.cache.lru]\nsize = 3\n")
        candidate = Candidate(
            "adapter", "cache", "lru", "json:loads", settings_model=f"{name}:Model"
        )
        assert load_settings(cfg).settings_for(candidate).size == 3
        missing = candidate.evolve(settings_model=f"{name}:Nope")
        with pytest.raises(FactoryError, match="has no attribute 'Nope'"):
            load_settings(cfg).settings_for(missing)
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("body", "line", "keypath", "hint"),
    [
        ('url = "x"\nport = "not a port"\n', 6, "port", "fix the value"),
        ('url = "x"\nbogus = 1\n', 6, "bogus", "unknown setting; remove it or check the spelling"),
        # A missing key points at its table.
        ("port = 1\n", 4, "url", "required setting is missing; add it under"),
    ],
)
def test_invalid_provider_settings(
    cfg: Path, body: str, line: int, keypath: str, hint: str
) -> None:
    write(
        cfg,
        "oneiric.toml",
        '[adapter]\nselections = { cache = "redis" }\n\n'
        "[adapter.provider_settings.cache.redis]\n" + body,
    )
    settings = load_settings(cfg)
    config_error(
        f"{cfg / 'oneiric.toml'}:{line}: adapter.provider_settings.cache.redis.{keypath}: ",
        hint,
        call=settings.settings_for,
        candidate=redis(),
    )


def test_invalid_provider_settings_in_yaml_point_at_the_right_provider(cfg: Path) -> None:
    write(
        cfg,
        "adapters.yaml",
        """
        provider_settings:
          cache:
            memory:
              max_items: 5
              port: 1
            redis:
              url: redis://x
              port: nope
        """,
    )
    settings = load_settings(cfg)
    config_error(
        f"{cfg / 'adapters.yaml'}:8: adapter.provider_settings.cache.redis.port: ",
        "fix the value",
        call=settings.settings_for,
        candidate=redis(),
    )


def test_model_errors_without_a_file() -> None:
    config_error(
        "settings: adapter.provider_settings.cache.redis.url: required setting is missing",
        call=Settings().settings_for,
        candidate=redis(),
    )


def test_settings_model_must_be_a_pydantic_model() -> None:
    candidate = Candidate("adapter", "cache", "x", "json:loads", settings_model=dict)
    with pytest.raises(FactoryError, match="not a pydantic model class"):
        Settings().settings_for(candidate)


# ---------------------------------------------------------------------- apply


def test_apply_sets_selections_in_one_batch(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.tenants.acme]
        selections = { cache = "memory" }

        [service]
        selections = { mail = "smtp" }
        """,
    )
    resolver = Resolver()
    resolver.register(redis())
    resolver.register(memory())
    notifications: list[object] = []
    resolver.subscribe(notifications.append)

    warnings = load_settings(cfg).apply(resolver)

    assert warnings == []
    assert len(notifications) == 1
    assert resolver.resolve("adapter", "cache").provider == "redis"
    assert resolver.resolve("adapter", "cache", tenant="acme").provider == "memory"
    assert resolver.selections("service") == {"mail": "smtp"}


def test_apply_validates_provider_settings_first(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.provider_settings.cache.redis]
        url = "redis://x"
        port = "many"
        """,
    )
    resolver = Resolver()
    resolver.register(redis())
    resolver.register(memory())
    resolver.set_selections("adapter", {"cache": "memory"})
    notifications: list[object] = []
    resolver.subscribe(notifications.append)

    config_error(
        f"{cfg / 'oneiric.toml'}:6: adapter.provider_settings.cache.redis.port",
        call=load_settings(cfg).apply,
        resolver=resolver,
    )

    assert resolver.selections("adapter") == {"cache": "memory"}
    assert notifications == []


def test_apply_validates_every_origin_of_a_provider(cfg: Path) -> None:
    write(cfg, "oneiric.toml", '[adapter.provider_settings.cache.redis]\nurl = "x"\nport = 1\n')

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str

    resolver = Resolver()
    resolver.register(redis())
    resolver.register(
        Candidate(
            "adapter",
            "cache",
            "redis",
            "json:loads",
            settings_model=Strict,
            source=Source("entry_point", "oneiric-redis-strict"),
        )
    )
    config_error(
        "adapter.provider_settings.cache.redis.port: unknown setting",
        call=load_settings(cfg).apply,
        resolver=resolver,
    )


def test_settings_for_an_unknown_provider_is_a_warning(
    cfg: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.provider_settings.cache.memcached]
        servers = ["a:11211"]
        """,
    )
    resolver = Resolver()
    resolver.register(redis())
    resolver.register(memory())

    with caplog.at_level(logging.WARNING, logger="oneiric"):
        warnings = load_settings(cfg).apply(resolver)

    assert warnings == [
        "settings for adapter/cache/memcached but no such provider is registered "
        "(registered: memory, redis); check the provider name or install its plugin"
    ]
    assert resolver.selections("adapter") == {"cache": "redis"}
    assert any("adapter/cache/memcached" in str(r.msg) for r in caplog.records)


def test_apply_clears_scopes_that_disappeared(cfg: Path) -> None:
    write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "redis" }

        [adapter.tenants.acme]
        selections = { cache = "memory" }

        [service]
        selections = { mail = "smtp" }
        """,
    )
    resolver = Resolver()
    resolver.set_selections("task", {"cron": "app-chosen"})  # the application's, not ours
    load_settings(cfg).apply(resolver)
    assert resolver.selections("adapter", tenant="acme") == {"cache": "memory"}

    write(cfg, "oneiric.toml", '[adapter]\nselections = { cache = "memory" }\n')
    load_settings(cfg).apply(resolver)

    assert resolver.selections("adapter") == {"cache": "memory"}
    assert resolver.selections("adapter", tenant="acme") == {}
    assert resolver.selections("service") == {}
    assert resolver.selections("task") == {"cron": "app-chosen"}

    (cfg / "oneiric.toml").unlink()
    load_settings(cfg).apply(resolver)
    assert resolver.selections("adapter") == {}
    assert resolver.selections("task") == {"cron": "app-chosen"}


# -------------------------------------------------------------------- overlay


def test_overlay_takes_precedence_over_user_files(cfg: Path, state: Path) -> None:
    user_file = write(
        cfg,
        "oneiric.toml",
        """
        [adapter]
        selections = { cache = "memory", storage = "local" }

        [adapter.tenants.acme]
        selections = { cache = "memory" }
        """,
    )
    before = user_file.read_bytes()

    write_overlay(state, "adapter", "cache", "redis")
    write_overlay(state, "adapter", "cache", "redis@entry_point:oneiric-redis", tenant="acme")
    write_overlay(state, "service", "mail", "smtp")
    settings = load_settings(cfg)  # ONEIRIC_STATE_DIR points at `state`

    assert settings.selections("adapter") == {"cache": "redis", "storage": "local"}
    assert settings.selections("adapter", tenant="acme") == {
        "cache": "redis@entry_point:oneiric-redis"
    }
    assert settings.selections("service") == {"mail": "smtp"}
    assert user_file.read_bytes() == before
    assert read_overlay(state) == {
        "selections": {"adapter": {"cache": "redis"}, "service": {"mail": "smtp"}},
        "tenants": {"adapter": {"acme": {"cache": "redis@entry_point:oneiric-redis"}}},
    }

    resolver = Resolver()
    settings.apply(resolver)
    assert resolver.selections("adapter") == {"cache": "redis", "storage": "local"}
    assert resolver.selections("service") == {"mail": "smtp"}

    write_overlay(state, "adapter", "cache", None)
    assert load_settings(cfg).selections("adapter") == {"cache": "memory", "storage": "local"}


def test_overlay_state_dir_argument(cfg: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-state"
    write_overlay(str(other), "adapter", "cache", "redis")
    assert load_settings(cfg).selections("adapter") == {}
    assert load_settings(cfg, state_dir=other).selections("adapter") == {"cache": "redis"}


def test_absent_overlay(state: Path) -> None:
    assert read_overlay(state) == {"selections": {}, "tenants": {}}
    assert not state.exists()  # reading never creates the state dir


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '{"selections": {"adapter": {"cache": "redis"}}\n',
            ("selections.json:2:", "invalid JSON"),
        ),
        ('["adapter"]', ("must be an object with 'selections' and 'tenants'",)),
        ('{"selections": {"adapter": "redis"}}', ("selections.adapter must be an object",)),
        (
            '{"selections": {"adapter": {"cache": "Bad!"}}}',
            ("selections.adapter.cache", "invalid provider name"),
        ),
        ('{"selections": {"Adapter": {"cache": "x"}}}', ("invalid domain name 'Adapter'",)),
        ('{"tenants": {"adapter": {"acme": "x"}}}', ("tenants.adapter.acme must be an object",)),
    ],
)
def test_malformed_overlay(state: Path, text: str, fragments: tuple[str, ...]) -> None:
    state.mkdir()
    (state / "selections.json").write_text(text)
    message = config_error(str(state / "selections.json"), *fragments, call=load_settings)
    assert "fix" in message


def test_write_overlay_rejects_bad_input(state: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidCandidateError):
        write_overlay(state, "adapter", "Cache", "redis")
    with pytest.raises(ConfigError, match="expected 'provider' or 'provider@kind:name'"):
        write_overlay(state, "adapter", "cache", "redis@nowhere")
    with pytest.raises(ConfigError, match="invalid tenant ''"):
        write_overlay(state, "adapter", "cache", "redis", tenant="")
    blocker = tmp_path / "file"
    blocker.write_text("")
    config_error(
        "selection overlay: Not a directory",
        "set ONEIRIC_STATE_DIR",
        call=write_overlay,
        state_dir=blocker / "state",
        domain="adapter",
        key="cache",
        provider="redis",
    )
