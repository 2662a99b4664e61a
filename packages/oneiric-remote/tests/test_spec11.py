"""REMOTE.md spec 1.1: component ``metadata``, the never-delivered ``control`` domain and
``allowed_actions`` (what delivered subscriptions, workflows, schedules and automations may
reference).  Every envelope is really signed; every refusal leaves everything unchanged."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oneiric.core import ConfigError
from oneiric.remote import (
    ManifestFormatError,
    RemoteSync,
    ScopeError,
    verify_envelope,
)
from oneiric.remote._envelope import PAYLOAD_TYPE, pae

pytestmark = pytest.mark.anyio


def _comp(**kw: Any) -> dict[str, Any]:
    base = {"domain": "adapter", "key": "cache", "provider": "p1", "factory": "json:loads"}
    base.update(kw)
    return base


SUBSCRIPTION = _comp(domain="event", key="order-mailer", metadata={
    "topics": ["orders.created"], "priority": 3, "group": "mail", "idempotent": True,
    "filter": {"order.region": {"equals": "us"}}, "retry": {"max_attempts": 2},
})
WORKFLOW = _comp(domain="workflow", key="nightly", metadata={
    "id": "nightly", "version": 1, "max_concurrency": 2, "nodes": [
        {"id": "fetch", "action": "http.fetch", "input": {"url": "https://x.example/"}},
        {"id": "mask", "action": "data.sanitize", "needs": ["fetch"],
         "input": {"data": "${nodes.fetch.output.body}"}, "timeout": 5},
    ],
})
SCHEDULE = _comp(domain="task", key="hourly", metadata={
    "every": "1h", "run": "workflow:nightly", "coalesce": "latest", "max_instances": 1,
})
AUTOMATION = _comp(domain="automation", key="on-order", metadata={
    "on": {"topics": ["orders.created"]}, "run": "action:http.fetch",
})
# what each one references, and patterns that admit exactly that
KINDS = {
    "subscription": (SUBSCRIPTION, ["event:orders.*"]),
    "workflow": (WORKFLOW, ["http.fetch", "data.*"]),
    "schedule": (SCHEDULE, ["workflow:nightly"]),
    "automation": (AUTOMATION, ["http.*", "event:orders.created"]),
}


def _v11(kit, *components: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return kit.payload(version, spec_version="1.1", components=list(components))


async def _run(kit, resolver, h, payload, **source):
    path = kit.write(kit.envelope(payload))
    return await RemoteSync(resolver, kit.source(str(path), **source), now=h.fixed_now).sync()


# ----------------------------------------------------------- spec versions


@pytest.mark.parametrize("spec", ["1.0", "1.1"])
async def test_spec_1_0_and_1_1_both_accepted(kit, resolver, h, spec) -> None:
    result = await _run(kit, resolver, h, kit.payload(spec_version=spec))
    assert result.registered == 1
    assert resolver.resolve("adapter", "cache").source.name == "acme"


async def test_metadata_on_spec_1_0_refused(kit, resolver, h, unchanged) -> None:
    payload = kit.payload(components=[_comp(metadata={"note": "x"})])
    with pytest.raises(ManifestFormatError, match=r"metadata.*spec_version 1\.1"):
        await _run(kit, resolver, h, payload)
    unchanged()


@pytest.mark.parametrize("value", [["topics"], "topics", 3, True, None],
                         ids=["list", "string", "int", "bool", "null"])
async def test_metadata_not_an_object_refused(kit, resolver, h, unchanged, value) -> None:
    with pytest.raises(ManifestFormatError, match="metadata must be a JSON object"):
        await _run(kit, resolver, h, _v11(kit, _comp(metadata=value)))
    unchanged()


def _sized(total: int) -> dict[str, Any]:
    """Metadata whose canonical JSON is exactly ``total`` bytes."""
    return {"blob": "x" * (total - len('{"blob":""}'))}


async def test_metadata_over_64_kib_refused(kit, resolver, h, unchanged) -> None:
    with pytest.raises(ManifestFormatError, match="65537 bytes"):
        await _run(kit, resolver, h, _v11(kit, _comp(metadata=_sized(64 * 1024 + 1))))
    unchanged()


async def test_metadata_of_exactly_64_kib_accepted(kit, resolver, h) -> None:
    result = await _run(kit, resolver, h, _v11(kit, _comp(metadata=_sized(64 * 1024))))
    assert result.registered == 1
    assert len(resolver.resolve("adapter", "cache").metadata["blob"]) > 65000


def _sign_raw(kit, body: bytes) -> bytes:
    sig = kit.keys[0].sign(pae(PAYLOAD_TYPE, body)).signature
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(),
                       "signatures": [{"keyid": kit.trusted[0].keyid,
                                       "sig": base64.b64encode(sig).decode()}]}).encode()


@pytest.mark.parametrize("value", ["1.5", "NaN", "Infinity", "1e3", str(2**53)])
async def test_metadata_with_float_nan_or_huge_int_refused(kit, resolver, h, unchanged,
                                                           value) -> None:
    payload = _v11(kit, _comp(metadata={"n": 0}))
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).replace(
        '"n":0', f'"n":{value}').encode()
    path = kit.write(_sign_raw(kit, body))
    with pytest.raises(ManifestFormatError):
        await RemoteSync(resolver, kit.source(str(path)), now=h.fixed_now).sync()
    unchanged()


@pytest.mark.parametrize("key", ["manifest_url", "artifact", "sha256", "unavailable"])
async def test_metadata_cannot_spoof_provenance_keys(kit, resolver, h, unchanged, key) -> None:
    with pytest.raises(ManifestFormatError, match=f"reserved.*{key}"):
        await _run(kit, resolver, h, _v11(kit, _comp(metadata={key: "forged"})))
    unchanged()


# ------------------------------------------------------------ control domain


@pytest.mark.parametrize("spec", ["1.0", "1.1"])
@pytest.mark.parametrize("scope", [{}, {"allowed_keys": ["*"]}, {"allowed_keys": ["control.*"]},
                                   {"allowed_keys": ["control.plane"], "max_priority": 1000}],
                         ids=["no-scope", "star", "control-star", "control-plane"])
async def test_control_domain_never_delivered(kit, resolver, h, unchanged, spec, scope) -> None:
    payload = kit.payload(spec_version=spec, components=[
        _comp(provider="ok"), _comp(domain="control", key="plane", provider="evil", priority=999),
    ])
    with pytest.raises(ScopeError, match="domain control can never be delivered"):
        await _run(kit, resolver, h, payload, **scope)
    unchanged()
    with pytest.raises(Exception):  # noqa: B017 - nothing of the manifest was registered
        resolver.resolve("adapter", "cache")


# ---------------------------------------------------------- allowed_actions


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_reference_inside_allowed_actions_registered_with_metadata(
    kit, resolver, h, kind
) -> None:
    comp, allowed = KINDS[kind]
    result = await _run(kit, resolver, h, _v11(kit, comp), allowed_actions=allowed)
    assert result.registered == 1
    got = resolver.resolve(comp["domain"], comp["key"]).metadata
    for name, value in comp["metadata"].items():
        assert json.loads(json.dumps(got[name], default=_plain)) == value
    assert got["manifest_url"]  # provenance is kept next to the delivered metadata


def _plain(value: Any) -> Any:
    return dict(value) if hasattr(value, "keys") else list(value)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("allowed", [["nothing.here"], ["workflow:other", "event:payments.*"]],
                         ids=["unrelated", "other-workflow-and-topic"])
async def test_reference_outside_allowed_actions_is_scope_error(
    kit, resolver, h, unchanged, kind, allowed
) -> None:
    comp, _ = KINDS[kind]
    payload = _v11(kit, _comp(provider="ok"), comp)
    with pytest.raises(ScopeError, match=f"{comp['domain']}/{comp['key']}.*allowed_actions"):
        await _run(kit, resolver, h, payload, allowed_actions=allowed)
    unchanged()


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_default_allowed_actions_refuses_any_reference(kit, resolver, h, unchanged,
                                                             kind) -> None:
    comp, _ = KINDS[kind]
    with pytest.raises(ScopeError, match=r"allowed_actions \(none\)"):
        await _run(kit, resolver, h, _v11(kit, comp))
    unchanged()


async def test_scope_error_names_component_reference_and_patterns(kit, resolver, h) -> None:
    with pytest.raises(ScopeError) as info:
        await _run(kit, resolver, h, _v11(kit, WORKFLOW), allowed_actions=["http.fetch"])
    text = str(info.value)
    assert "workflow/nightly/p1" in text and "data.sanitize" in text and "http.fetch" in text
    assert "nodes[1].action" in text and "\n" not in text


@pytest.mark.parametrize("action", ["workflow.orchestrate", "event.dispatch", "task.schedule",
                                    "automation.trigger"])
async def test_dispatching_action_needs_exact_pattern(kit, resolver, h, unchanged,
                                                      action) -> None:
    """These kits take their target (any workflow, topic, schedule) in the input."""
    wf = _comp(domain="workflow", key="w", metadata={
        "nodes": [{"id": "a", "action": action, "input": {"id": "admin-wipe"}}]})
    prefix = action.split(".")[0] + ".*"
    with pytest.raises(ScopeError, match=action):
        await _run(kit, resolver, h, _v11(kit, wf), allowed_actions=[prefix, "*"])
    unchanged()
    result = await _run(kit, resolver, h, _v11(kit, wf), allowed_actions=[action])
    assert result.registered == 1


@pytest.mark.parametrize(("topic", "admitted"), [
    ("orders.created", True), ("orders.*", True), ("orders.eu.#", True), ("orders.#", True),
    ("*.created", False), ("#", False), ("ordersx.created", False), ("orders", False),
])
async def test_subscription_topic_patterns_within_allowed_topics(kit, resolver, h, topic,
                                                                 admitted) -> None:
    sub = _comp(domain="event", key="h", metadata={"topics": ["orders.created", topic]})
    if admitted:
        assert (await _run(kit, resolver, h, _v11(kit, sub),
                           allowed_actions=["event:orders.*"])).registered == 1
    else:
        with pytest.raises(ScopeError, match="topic"):
            await _run(kit, resolver, h, _v11(kit, sub), allowed_actions=["event:orders.*"])


async def test_star_admits_every_plain_reference(kit, resolver, h) -> None:
    payload = _v11(kit, *(comp for comp, _ in KINDS.values()))
    assert (await _run(kit, resolver, h, payload, allowed_actions=["*"])).registered == 4


async def test_metadata_without_references_needs_no_allowed_actions(kit, resolver, h) -> None:
    payload = _v11(kit, _comp(metadata={"note": "any shape", "nested": {"a": [1, "b"]}}))
    assert (await _run(kit, resolver, h, payload)).registered == 1


async def test_delivered_metadata_is_read_only(kit, resolver, h) -> None:
    await _run(kit, resolver, h, _v11(kit, WORKFLOW), allowed_actions=["*"])
    meta = resolver.resolve("workflow", "nightly").metadata
    with pytest.raises(TypeError):
        meta["nodes"][0]["action"] = "os.system"  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        meta["nodes"].append({})  # type: ignore[union-attr]


async def test_narrowed_allowed_actions_refuses_the_same_manifest_again(kit, resolver, h,
                                                                         ) -> None:
    """Scope is checked on every path, also re-registering the active version."""
    payload = _v11(kit, WORKFLOW)
    await _run(kit, resolver, h, payload, allowed_actions=["*"])
    fresh = type(resolver)()
    with pytest.raises(ScopeError):
        await _run(kit, fresh, h, payload, allowed_actions=["http.fetch"])
    assert fresh.candidates("workflow", "nightly") == ()


# ------------------------------------------------------ shapes §11 defines


@pytest.mark.parametrize(("comp", "needle"), [
    (_comp(domain="event", key="h", metadata={"topics": ["a.b"], "surprise": 1}), "surprise"),
    (_comp(domain="event", key="h", metadata={"topics": "orders.created"}), "topics"),
    (_comp(domain="event", key="h", metadata={"topics": ["Orders.Created"]}), "topics"),
    (_comp(domain="event", key="h", metadata={"topics": ["a.#.b"]}), "topics"),
    (_comp(domain="event", key="h", metadata={"priority": 1}), "topics"),
    (_comp(domain="event", key="h", metadata={"topics": ["a"], "filter": {"x": {"like": 1}}}),
     "filter"),
    (_comp(domain="event", key="h", metadata={"topics": ["a"], "retry": {"tries": 1}}), "tries"),
    (_comp(domain="workflow", key="w", metadata={"nodes": [{"id": "a", "action": "x.y",
                                                            "shell": "rm"}]}), "shell"),
    (_comp(domain="workflow", key="w", metadata={"nodes": [{"id": "a"}]}), "action"),
    (_comp(domain="workflow", key="w", metadata={"nodes": [{"id": "a", "action": "X Y"}]}),
     "action"),
    (_comp(domain="workflow", key="w", metadata={"nodes": {}}), "nodes"),
    (_comp(domain="workflow", key="w", metadata={"id": "other", "nodes": []}), "id"),
    (_comp(domain="workflow", key="w", metadata={"nodes": [], "extra": 1}), "extra"),
    (_comp(domain="task", key="t", metadata={"every": "1h", "run": "shell:rm"}), "run"),
    (_comp(domain="task", key="t", metadata={"every": "1h", "run": "action:"}), "run"),
    (_comp(domain="task", key="t", metadata={"every": "1h", "run": "event:a.*"}), "run"),
    (_comp(domain="task", key="t", metadata={"every": "1h", "command": "x"}), "command"),
    (_comp(domain="task", key="t", metadata={"every": "1h", "coalesce": "most"}), "coalesce"),
], ids=lambda v: v if isinstance(v, str) else v["domain"])
async def test_malformed_metadata_of_a_defined_domain_refused(kit, resolver, h, unchanged, comp,
                                                              needle) -> None:
    with pytest.raises(ManifestFormatError, match=needle):
        await _run(kit, resolver, h, _v11(kit, comp), allowed_actions=["*"])
    unchanged()


def test_verify_envelope_checks_metadata_schema(kit) -> None:
    with pytest.raises(ManifestFormatError):
        verify_envelope(kit.envelope(kit.payload(components=[_comp(metadata={})])),
                        trusted_keys=kit.trusted[:1])
    payload = _v11(kit, WORKFLOW)
    assert verify_envelope(kit.envelope(payload), trusted_keys=kit.trusted[:1]) == payload


# ------------------------------------------------------------- configuration


@pytest.mark.parametrize("pattern", ["", "HTTP.fetch", "http.*.x", "bogus:x", "action:",
                                     "http.fetch\n", "event:orders.#", "**", "http*", 3])
def test_allowed_actions_patterns_validated(kit, pattern) -> None:
    with pytest.raises(ConfigError, match="allowed_actions pattern"):
        kit.source("/nonexistent.json", allowed_actions=[pattern])


@pytest.mark.parametrize("pattern", ["http.fetch", "workflow.*", "*", "action:http.fetch",
                                     "workflow:nightly", "workflow:*", "event:orders.*",
                                     "event:orders.created", "event:*"])
def test_allowed_actions_valid_patterns_kept(kit, pattern) -> None:
    assert kit.source("/nonexistent.json", allowed_actions=[pattern]).allowed_actions == (
        pattern,)


def test_allowed_actions_default_is_none_and_string_is_one_pattern(kit) -> None:
    assert kit.source("/x.json").allowed_actions == ()
    assert kit.source("/x.json", allowed_actions="http.fetch").allowed_actions == ("http.fetch",)


def _settings(kit, extra: str) -> dict[str, Any]:
    key = kit.trusted[0]
    return {"sources": {"s": {"url": "m.json", "repository": "acme",
                              "trusted_keys": [key.as_dict()], **json.loads(extra)}}}


def test_settings_remote_section_reads_allowed_actions(kit, tmp_path: Path) -> None:
    from oneiric.remote._sources import sources_from_settings

    sources = sources_from_settings(_settings(kit, '{"allowed_actions": ["http.*"]}'), tmp_path)
    assert sources["s"].allowed_actions == ("http.*",)
    assert sources_from_settings(_settings(kit, "{}"), tmp_path)["s"].allowed_actions == ()
    with pytest.raises(ConfigError, match=r"remote\.sources\.s: allowed_actions pattern"):
        sources_from_settings(_settings(kit, '{"allowed_actions": ["HTTP"]}'), tmp_path)


def test_settings_file_with_allowed_actions_end_to_end(kit, tmp_path: Path) -> None:
    from oneiric.core import load_settings
    from oneiric.remote._sources import sources_from_settings

    key = kit.trusted[0]
    (tmp_path / "oneiric.toml").write_text(
        "[remote.sources.s]\nurl = \"m.json\"\nrepository = \"acme\"\n"
        f'trusted_keys = [{{ keyid = "{key.keyid}", public_key = "{key.public_key}" }}]\n'
        'allowed_actions = ["http.fetch", "event:orders.*"]\n')
    settings = load_settings(tmp_path)
    (source,) = sources_from_settings(settings.remote, settings.config_dir).values()
    assert source.allowed_actions == ("http.fetch", "event:orders.*")


# ----------------------------------------------------------------------- CLI


def test_cli_signs_yaml_1_1_manifest_with_metadata(kit, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from oneiric.remote._cli import manifest

    key_file = tmp_path / "k.json"
    assert CliRunner().invoke(manifest, ["keygen", "--out", str(key_file)]).exit_code == 0
    doc = json.loads(key_file.read_text())
    (tmp_path / "m.yaml").write_text(
        "spec_version: '1.1'\nrepository: acme\nversion: 3\ncomponents:\n"
        "  - domain: workflow\n    key: nightly\n    provider: p1\n    factory: json:loads\n"
        "    metadata:\n      id: nightly\n      nodes:\n"
        "        - id: fetch\n          action: http.fetch\n"
        "          input: {url: 'https://x.example/', when: 2030-01-01}\n"
        "        - {id: note, action: workflow.notify, needs: [fetch]}\n"
        "  - domain: event\n    key: mailer\n    provider: p1\n    factory: json:loads\n"
        "    metadata: {topics: [orders.created, 'orders.*']}\n")
    out = CliRunner().invoke(manifest, ["sign", str(tmp_path / "m.yaml"), "--key", str(key_file)])
    assert out.exit_code == 0, out.output
    from oneiric.remote import TrustedKey

    trusted = [TrustedKey(doc["keyid"], doc["public_key"])]
    payload = verify_envelope((tmp_path / "m.signed.json").read_bytes(), trusted_keys=trusted)
    assert payload["spec_version"] == "1.1"
    nodes = payload["components"][0]["metadata"]["nodes"]
    assert nodes[0]["input"]["when"] == "2030-01-01T00:00:00Z"
    assert nodes[1]["action"] == "workflow.notify"


@pytest.mark.parametrize(("body", "needle"), [
    ("spec_version: '1.0'\n", "spec_version 1.1"),
    ("spec_version: '1.1'\n", "timeout"),
])
def test_cli_sign_refuses_invalid_metadata(tmp_path: Path, body: str, needle: str) -> None:
    pytest.importorskip("yaml")
    from oneiric.remote._cli import manifest

    key_file = tmp_path / "k.json"
    assert CliRunner().invoke(manifest, ["keygen", "--out", str(key_file)]).exit_code == 0
    (tmp_path / "m.yaml").write_text(
        body + "repository: acme\nversion: 1\ncomponents:\n"
        "  - {domain: event, key: h, provider: p, factory: 'json:loads',\n"
        "     metadata: {topics: [a.b], timeout: 1.5}}\n")
    out = CliRunner().invoke(manifest, ["sign", str(tmp_path / "m.yaml"), "--key", str(key_file)])
    assert out.exit_code == 4 and needle in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
