"""An event handler delivered by a signed manifest (REMOTE.md spec 1.1 metadata) is routed.

Cross-package: oneiric-remote verifies the manifest and checks the
subscription's topics against the source's ``allowed_actions`` at sync;
oneiric-runtime routes events to the delivered handler from its candidate
metadata, exactly as to a plugin's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oneiric.core import Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager

pytestmark = pytest.mark.anyio

HANDLER_MODULE = '''
SEEN = []


class Audit:
    def handle(self, event, context):
        SEEN.append((event.topic, context.provider))
'''


def _oneiric(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def _signed_source(tmp_path: Path, topics: list[str], allowed: list[str]) -> object:
    """Sign a manifest delivering ``event/audit``; the ``RemoteSource`` a client configures."""
    from oneiric.remote import RemoteSource, TrustedKey

    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env["ONEIRIC_STATE_DIR"] = str(tmp_path / "publisher-state")
    key = tmp_path / "publisher.key"
    keygen = _oneiric("manifest", "keygen", "--out", str(key), "--json", env=env)
    assert keygen.returncode == 0, keygen.stderr
    public = json.loads(keygen.stdout)
    component = {"domain": "event", "key": "audit", "provider": "edge",
                 "factory": "remote_handlers:Audit", "metadata": {"topics": topics}}
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"repository": "acme-events", "version": 1, "spec_version": "1.1",
         "components": [component]}))
    signed = tmp_path / "www" / "manifest.json"
    signed.parent.mkdir(exist_ok=True)
    sign = _oneiric("manifest", "sign", str(tmp_path / "manifest.json"), "--key", str(key),
                    "--out", str(signed), env=env)
    assert sign.returncode == 0, sign.stderr
    return RemoteSource(
        str(signed), repository="acme-events", factory_allowlist=["remote_handlers"],
        allowed_actions=allowed, cache_dir=tmp_path / "state" / "remote",
        trusted_keys=[TrustedKey(public["keyid"], public["public_key"])],
    )


async def test_a_delivered_handler_is_routed_within_its_allowed_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oneiric.remote import RemoteSync
    from oneiric.runtime import EventDispatcher

    (tmp_path / "remote_handlers.py").write_text(HANDLER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = _signed_source(tmp_path, ["orders.*"], ["event:orders.*"])
    resolver = Resolver()
    result = await RemoteSync(resolver, source).sync()  # type: ignore[arg-type]
    assert result.registered == 1
    lifecycle = LifecycleManager(resolver, activity_store=False, write_status=False,
                                 config=LifecycleConfig(grace_period=0, health_interval=0))
    dispatcher = EventDispatcher(lifecycle, dead_letters=False)
    try:
        plan = dispatcher.route("orders.created", {"id": 1})
        assert plan.handlers == ("audit",)
        report = await dispatcher.emit("orders.created", {"id": 1})
        assert [(o.handler, o.provider, o.status) for o in report.outcomes] == [
            ("audit", "edge", "ok")]
        import remote_handlers

        assert remote_handlers.SEEN == [("orders.created", "edge")]
        assert dispatcher.route("refunds.created", {}).handlers == ()
    finally:
        await dispatcher.aclose()
        await lifecycle.shutdown()


async def test_a_delivered_subscription_outside_allowed_actions_is_refused_at_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oneiric.remote import RemoteSync, ScopeError

    (tmp_path / "remote_handlers.py").write_text(HANDLER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = _signed_source(tmp_path, ["payments.#"], ["event:orders.*"])
    resolver = Resolver()
    with pytest.raises(ScopeError) as info:
        await RemoteSync(resolver, source).sync()  # type: ignore[arg-type]
    assert "payments" in str(info.value) and "\n" not in str(info.value)
    assert resolver.keys("event") == ()  # nothing of the manifest was registered
