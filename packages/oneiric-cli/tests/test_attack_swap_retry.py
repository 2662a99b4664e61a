"""Issue 11: a failed swap can be retried from the CLI by re-issuing the selection.

The operator ran ``oneiric swap notify mailer sendgrid``; sendgrid failed to
start, the application kept serving smtp.  After sendgrid recovered, the same
command printed ``(was sendgrid)``, exited 0 and changed nothing: the overlay
already said sendgrid, so no selection changed.  Here a real ``oneiric``
process writes the overlay, and this process runs the application's
``LifecycleManager`` + ``SelectionWatcher``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import DomainBridge, LifecycleConfig, LifecycleManager, SelectionWatcher
from oneiric.testing import apoll_until


def _app(flag: Path) -> Resolver:
    """The application's candidates (same names as ``cliapp:register``); sendgrid needs ``flag``."""

    class Smtp:
        name = "smtp"

    class Sendgrid:
        name = "sendgrid"

        def init(self) -> None:
            if not flag.exists():
                raise ConnectionError("sendgrid API unreachable")

    resolver = Resolver()
    resolver.register(Candidate("notify", "mailer", "smtp", Smtp, priority=20))
    resolver.register(Candidate("notify", "mailer", "sendgrid", Sendgrid))
    return resolver


def _application(
    workspace: Any, resolver: Resolver
) -> tuple[LifecycleManager, SelectionWatcher]:
    """The application's lifecycle and watcher on the workspace's dirs (fast polling)."""
    lifecycle = LifecycleManager(
        resolver, state_dir=workspace.state,
        config=LifecycleConfig(grace_period=0.0, watch_poll_interval=0.05,
                               status_interval=0.05, activity_poll_interval=0.05),
    )
    watcher = SelectionWatcher(workspace.config, None, resolver, lifecycle=lifecycle,
                               state_dir=workspace.state, use_watchfiles=False)
    return lifecycle, watcher


def _key(lifecycle: LifecycleManager) -> dict[str, Any]:
    return next(
        dict(k) for k in lifecycle.status()["keys"]
        if (k["domain"], k["key"]) == ("notify", "mailer")
    )


def test_attack_failed_swap_retried_by_reissuing_the_selection(
    workspace: Any, oneiric_proc: Callable[..., Any]
) -> None:
    flag = workspace.root / "sendgrid-up"
    resolver = _app(flag)

    async def scenario() -> None:
        lifecycle, watcher = _application(workspace, resolver)
        bridge = DomainBridge("notify", lifecycle)
        async with watcher:
            await lifecycle.activate("notify", "mailer")
            assert bridge.handle("mailer").instance.name == "smtp"

            first = await asyncio.to_thread(oneiric_proc, "swap", "notify", "mailer", "sendgrid")
            assert first.code == 0, first.err
            await apoll_until(lambda: _key(lifecycle)["failures"] >= 1,
                              message="the first swap to sendgrid to fail")
            assert bridge.handle("mailer").instance.name == "smtp"  # still serving
            assert _key(lifecycle)["winner"] == "sendgrid"

            flag.touch()  # sendgrid recovered
            again = await asyncio.to_thread(oneiric_proc, "swap", "notify", "mailer", "sendgrid")
            assert again.code == 0, again.err
            assert "(was sendgrid)" not in again.out
            assert "re-issued" in again.out, again.out
            await apoll_until(lambda: bridge.handle("mailer").instance.name == "sendgrid",
                              message="the re-issued selection to swap to sendgrid")
            assert _key(lifecycle)["bound"] == "sendgrid"
        await lifecycle.shutdown()

    asyncio.run(scenario())


def test_attack_reissue_does_not_swap_a_sticky_key_without_selection(
    workspace: Any, oneiric_proc: Callable[..., Any]
) -> None:
    """Reconciling touches only selected keys: a sticky key keeps its provider."""
    resolver = _app(workspace.root / "unused")

    async def scenario() -> None:
        lifecycle, watcher = _application(workspace, resolver)
        async with watcher:
            await lifecycle.activate("notify", "mailer")
            # a better candidate arrives; sticky (default) keeps smtp
            resolver.register(Candidate("notify", "mailer", "fast", lambda: "fast", priority=90))
            await apoll_until(lambda: _key(lifecycle)["winner"] == "fast")
            reloads = watcher.reloads
            other = await asyncio.to_thread(oneiric_proc, "swap", "notify", "sms", "twilio")
            assert other.code == 0, other.err
            await apoll_until(lambda: watcher.reloads > reloads, message="the overlay reload")
            await asyncio.sleep(0)  # let a (wrongly) scheduled swap start
            assert _key(lifecycle)["bound"] == "smtp"
            assert _key(lifecycle)["swaps"] == 0
        await lifecycle.shutdown()

    asyncio.run(scenario())
