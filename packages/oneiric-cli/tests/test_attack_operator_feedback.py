"""Issue 11: the CLI tells the operator when a filter names nothing or a decision reaches no one.

* ``status --domain nosuch`` exited 0 with an empty table: now 3 (not found);
  ``health`` gained ``--key`` and an unknown ``--domain``/``--key`` exits 3.
* ``swap``/``pause`` with no running application (or for a tenant nobody
  knows) wrote silently: now exit 0 with one warning line on stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleManager

NO_APP = "no running application publishes status in"


def _running_app(workspace: Any, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` while this process publishes a live status snapshot (domain ``appdom``)."""

    class Thing:
        def health(self) -> bool:
            return True

    resolver = Resolver()
    resolver.register(Candidate("appdom", "worker", "local", Thing))
    resolver.register(Candidate("notify", "mailer", "smtp", Thing))
    # a tenant with its own selection has its own instance, shown in status
    resolver.set_selections("notify", {"mailer": "smtp"}, tenant="acme")

    async def scenario() -> None:
        lifecycle = LifecycleManager(resolver, state_dir=workspace.state)
        try:
            await lifecycle.activate("appdom", "worker")
            await lifecycle.activate("notify", "mailer", tenant="acme")
            await lifecycle.probe("appdom", "worker")
            assert lifecycle.write_status() is not None
            await body()
        finally:
            await lifecycle.shutdown()

    asyncio.run(scenario())


# ------------------------------------------------------------ filters: exit 3


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--domain", "nosuch"),
        ("health", "--domain", "nosuch"),
        ("health", "--key", "nosuch"),
        ("health", "--domain", "notify", "--key", "nosuch"),
        ("health", "--probe", "--domain", "nosuch"),
        ("health", "--probe", "--domain", "notify", "--key", "nosuch"),
    ],
    ids=["status-domain", "health-domain", "health-key", "health-domain-key", "probe-domain",
         "probe-key"],
)
def test_attack_status_or_health_filter_naming_nothing_exits_not_found(
    oneiric: Callable[..., Any], args: tuple[str, ...]
) -> None:
    result = oneiric(*args)
    assert result.code == 3, (result.code, result.out, result.err)
    line = result.error_line()
    assert "nosuch" in line and "known" in line
    assert result.out == ""


def test_attack_status_filter_known_only_to_a_running_application(
    workspace: Any, oneiric: Callable[..., Any]
) -> None:
    """``appdom`` is not registered in the CLI (not in cliapp): the snapshot makes it known."""

    async def body() -> None:
        status = await asyncio.to_thread(oneiric, "status", "--domain", "appdom", "--json")
        assert status.code == 0, status.err
        keys = [k for p in status.json()["processes"] for k in p["keys"]]
        assert [(k["domain"], k["key"]) for k in keys] == [("appdom", "worker")]
        health = await asyncio.to_thread(oneiric, "health", "--key", "worker", "--json")
        assert health.code == 0, health.err
        assert [(c["domain"], c["key"]) for c in health.json()["checks"]] == [
            ("appdom", "worker")
        ]
        other = await asyncio.to_thread(oneiric, "health", "--domain", "appdom", "--key", "mailer")
        assert other.code == 3, other.err
        assert "mailer" in other.error_line()

    _running_app(workspace, body)


def test_health_probe_key_filter_probes_only_that_key(oneiric: Callable[..., Any]) -> None:
    result = oneiric("health", "--probe", "--domain", "notify", "--key", "sms", "--json")
    assert result.code == 0, result.err
    assert [(c["domain"], c["key"]) for c in result.json()["checks"]] == [("notify", "sms")]


def test_attack_invalid_filter_name_is_invalid(oneiric: Callable[..., Any]) -> None:
    result = oneiric("status", "--domain", "bad domain!")
    assert result.code == 4, (result.code, result.err)
    result.error_line()


# ------------------------------------------------- decisions nobody can apply


@pytest.mark.parametrize(
    "args",
    [
        ("swap", "notify", "mailer", "sendgrid"),
        ("swap", "notify", "mailer", "sendgrid", "--json"),
        ("pause", "notify", "mailer"),
        ("drain", "notify", "mailer", "--json"),
        ("resume", "notify", "mailer"),
    ],
    ids=["swap", "swap-json", "pause", "drain-json", "resume"],
)
def test_attack_decision_with_no_running_application_warns(
    workspace: Any, oneiric: Callable[..., Any], args: tuple[str, ...]
) -> None:
    result = oneiric(*args)
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: ") and NO_APP in lines[0]
    assert str(workspace.state) in lines[0] and "applies when one starts" in lines[0]


def test_attack_decision_seen_by_a_running_application_does_not_warn(
    workspace: Any, oneiric: Callable[..., Any]
) -> None:
    async def body() -> None:
        for args in (("swap", "notify", "mailer", "sendgrid"), ("pause", "notify", "mailer"),
                     ("swap", "notify", "mailer", "smtp", "--tenant", "acme", "--defer")):
            result = await asyncio.to_thread(oneiric, *args)
            assert result.code == 0, result.err
            assert result.err.strip() == "", (args, result.err)

    _running_app(workspace, body)


def test_attack_swap_for_an_unknown_tenant_warns(
    workspace: Any, oneiric: Callable[..., Any]
) -> None:
    async def body() -> None:
        result = await asyncio.to_thread(
            oneiric, "swap", "notify", "mailer", "sendgrid", "--tenant", "acmee"
        )
        assert result.code == 0, result.err
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0].startswith("warning: ") and "tenant 'acmee'" in lines[0]
        # the write happened: the warning is not a refusal
        again = await asyncio.to_thread(
            oneiric, "swap", "notify", "mailer", "sendgrid", "--tenant", "acmee", "--json"
        )
        assert again.json()["previous"] == "sendgrid"
        assert "tenant 'acmee'" in again.err  # an earlier overlay write does not make it known

    _running_app(workspace, body)


def test_swap_for_a_tenant_in_the_settings_does_not_warn_about_it(
    workspace: Any, oneiric: Callable[..., Any]
) -> None:
    (workspace.config / "oneiric.toml").write_text(
        '[notify.tenants.beta.selections]\nmailer = "smtp"\n', encoding="utf-8"
    )
    result = oneiric("swap", "notify", "mailer", "sendgrid", "--tenant", "beta")
    assert result.code == 0, result.err
    assert "tenant 'beta'" not in result.err and NO_APP in result.err


# ------------------------------------------------ messages name no user/host/pid


def test_attack_messages_name_no_user_host_or_pid(
    workspace: Any, oneiric: Callable[..., Any]
) -> None:
    import getpass
    import socket

    paused = oneiric("pause", "notify", "mailer", "--note", "maintenance")
    assert paused.code == 0, paused.err
    refused = oneiric("swap", "notify", "mailer", "sendgrid")
    assert refused.code == 5
    line = refused.error_line()
    assert "paused (maintenance)" in line
    host = socket.gethostname()
    for text in (paused.out, paused.err, line):
        assert host not in text and " pid " not in text, text
        assert f"{getpass.getuser()}@" not in text, text
    # the actor stays available as data
    data = oneiric("activity", "--json").json()
    assert data["records"][0]["actor"]
