"""``workflow.notify`` (webhook, slack, teams) against a real HTTPS receiver on 127.0.0.1.

The route URL reaches the provider the real way: ``${secret:NAME}`` in the
settings file, answered by core's built-in ``ONEIRIC_SECRET_<NAME>`` source.
Its path holds a marker (``SECRETPATH``) that must never appear in an error,
a ``repr`` or a log record.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest
import trustme

from oneiric.actions import ActionContext, ActionFailed, ActionInputError, ActionTimeout
from oneiric.actions._kits.notify import NotifyFailed, NotifySettings, WebhookNotify
from oneiric.core import ConfigError, OneiricError, RetryPolicy
from oneiric.lifecycle import DomainBridge

pytestmark = pytest.mark.anyio

KEY = "workflow.notify"
MARK = "SECRETPATH"
HOOK = f"/services/T0000/B0000/{MARK}x9"
PROVIDERS = ["webhook", "slack", "teams"]


# ----------------------------------------------------------------- receiver


class Seen(NamedTuple):
    path: str
    headers: dict[str, str]
    body: Any


Answer = Callable[["_Handler", int], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append(
                Seen(self.path, {k.lower(): v for k, v in self.headers.items()},
                     json.loads(raw) if raw else None)
            )
            count = len(self.server.seen)
        try:
            self.server.answer(self, count)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass


def answer(status: int = 200, body: bytes = b"ok",
           headers: dict[str, str] | None = None) -> Answer:
    def send(handler: _Handler, _count: int) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ctx: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if ctx is not None:
            self.socket = ctx.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.answer: Answer = answer()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class Receiver:
    def __init__(self, ca: trustme.CA | None) -> None:
        ctx = None
        if ca is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self.server = _Server(ctx)
        port = self.server.server_address[1]
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{port}{HOOK}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen

    def close(self) -> None:
        self.server.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def receiver(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver(ca)
    monkeypatch.setenv("ONEIRIC_SECRET_NOTIFY_ALERTS_URL", server.url)
    try:
        yield server
    finally:
        server.close()


def settings_toml(provider: str, ca_path: str, route_extra: str = "", extra: str = "") -> str:
    return (
        f'[action.selections]\n"{KEY}" = "{provider}"\n'
        f'[action.provider_settings."{KEY}".{provider}]\n'
        f'verify = "{ca_path}"\n{extra}'
        f'routes.alerts = {{ url = "${{secret:NOTIFY_ALERTS_URL}}"{route_extra} }}\n'
        f'routes.audit = {{ url = "https://127.0.0.1:9/other/{MARK}y" }}\n'
    )


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


def no_secret(text: str) -> None:
    assert MARK not in text, text


def context(seconds: float = 30.0) -> ActionContext:
    return ActionContext(KEY, "webhook", 1, time.monotonic() + seconds, "idem-1")


# ------------------------------------------------------------------ shapes


async def test_webhook_posts_generic_json(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    actions = await make_actions(settings_toml("webhook", ca_path))
    result = await actions.invoke(
        KEY, {"route": "alerts", "text": "disk full", "title": "db-1",
              "fields": {"usage": 97.5, "host": "db-1", "paged": True}},
        idempotency_key="run-7/notify",
    )
    assert result.value == {"delivered": True, "status": 200}
    assert result.provider == "webhook"
    (seen,) = receiver.seen
    assert seen.path == HOOK
    assert seen.body == {"text": "disk full", "title": "db-1",
                         "fields": {"usage": "97.5", "host": "db-1", "paged": "true"}}
    assert seen.headers["idempotency-key"] == "run-7/notify"
    assert seen.headers["content-type"] == "application/json"


async def test_webhook_defaults_title_and_fields(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    actions = await make_actions(settings_toml("webhook", ca_path))
    await actions.invoke(KEY, {"route": "alerts", "text": "hi"})
    assert receiver.seen[0].body == {"text": "hi", "title": None, "fields": {}}


async def test_slack_incoming_webhook_shape(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    actions = await make_actions(settings_toml(
        "slack", ca_path, ', channel = "#ops", username = "oneiric", icon_emoji = ":bell:"'))
    fields = {f"f{i}": str(i) for i in range(12)}
    await actions.invoke(KEY, {"route": "alerts", "text": "disk *full*", "title": "db-1",
                               "fields": fields})
    body = receiver.seen[0].body
    assert body["text"] == "db-1: disk *full*"
    assert (body["channel"], body["username"], body["icon_emoji"]) == ("#ops", "oneiric",
                                                                        ":bell:")
    header, section, first, second = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "db-1"}}
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "disk *full*"}}
    assert len(first["fields"]) == 10 and len(second["fields"]) == 2  # Slack's 10 per section
    assert first["fields"][0] == {"type": "mrkdwn", "text": "*f0*\n0"}
    assert "idempotency-key" not in receiver.seen[0].headers


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<!channel> deploy failed", "&lt;!channel&gt; deploy failed"),
        ("<https://evil.example|click here>", "&lt;https://evil.example|click here&gt;"),
        ("<@U123> & co", "&lt;@U123&gt; &amp; co"),
    ],
    ids=["channel-mention", "hidden-link", "user-mention"],
)
async def test_attack_slack_mention_and_link_injection_is_escaped(
    make_actions: Any, receiver: Receiver, ca_path: str, text: str, escaped: str
) -> None:
    actions = await make_actions(settings_toml("slack", ca_path))
    await actions.invoke(KEY, {"route": "alerts", "text": text, "fields": {text: text}})
    body = receiver.seen[0].body
    assert body["text"] == escaped
    assert body["blocks"][0]["text"]["text"] == escaped
    assert body["blocks"][1]["fields"][0]["text"] == f"*{escaped}*\n{escaped}"


async def test_teams_adaptive_card_shape(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    actions = await make_actions(settings_toml("teams", ca_path, ', title = "Ops alerts"'))
    await actions.invoke(KEY, {"route": "alerts", "text": "disk full", "fields": {"host": "db"}})
    body = receiver.seen[0].body
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"] == [
        {"type": "TextBlock", "text": "Ops alerts", "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "TextBlock", "text": "disk full", "wrap": True},
        {"type": "FactSet", "facts": [{"title": "host", "value": "db"}]},
    ]


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_any_2xx_is_delivered(
    make_actions: Any, receiver: Receiver, ca_path: str, status: int
) -> None:
    receiver.server.answer = answer(status, b"" if status == 204 else b"1")
    actions = await make_actions(settings_toml("teams", ca_path))
    result = await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    assert result.value == {"delivered": True, "status": status}


# ------------------------------------------------------ the URL stays secret


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_attack_unknown_route_error_lists_names_not_urls(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str
) -> None:
    actions = await make_actions(settings_toml(provider, ca_path))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"route": "nope", "text": "x"})
    text = one_line(info.value)
    assert info.value.path == "route"
    assert "configured routes: alerts, audit" in text
    no_secret(text)
    assert MARK in receiver.url
    assert receiver.seen == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (500, b"boom", "answered HTTP 500: boom"),
        (403, b"invalid_token", "answered HTTP 403: invalid_token"),
        (404, HOOK.encode(), "answered HTTP 404;"),  # a body echoing the URL is left out
        (302, b"", "redirects are not followed"),
    ],
    ids=["500", "403", "echoes-url", "redirect"],
)
async def test_attack_failed_post_names_route_and_status_never_the_url(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str, status: int,
    body: bytes, words: str,
) -> None:
    receiver.server.answer = answer(status, body, {"Location": receiver.url + "/next"})
    actions = await make_actions(settings_toml(provider, ca_path))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    assert isinstance(info.value.cause, NotifyFailed)
    text = one_line(info.value)
    assert "route 'alerts'" in text and words in text
    no_secret(text)
    assert len(receiver.seen) == 1  # the redirect was not followed


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_attack_unreachable_route_error_has_no_url(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str
) -> None:
    actions = await make_actions(settings_toml(provider, ca_path))
    with pytest.raises(ActionFailed) as info:  # route audit: port 9, nothing listens
        await actions.invoke(KEY, {"route": "audit", "text": "x"})
    text = one_line(info.value)
    assert "route 'audit' could not be reached (ConnectError)" in text
    no_secret(text)
    no_secret(str(info.value.cause))
    assert info.value.cause.__cause__ is None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_attack_url_not_in_repr(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str
) -> None:
    actions = await make_actions(settings_toml(provider, ca_path))
    await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    instance = DomainBridge("action", actions.lifecycle).handle(KEY).instance
    settings = instance.settings
    for text in (repr(instance), str(instance), repr(settings), str(settings),
                 repr(settings.routes), settings.model_dump_json()):
        no_secret(text)
    assert "alerts" in repr(instance)
    status = actions.lifecycle.resolver.explain("action", KEY).as_dict()
    no_secret(json.dumps(status, default=str))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_attack_url_not_in_logs(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: httpx, httpcore, oneiric
    actions = await make_actions(settings_toml(provider, ca_path))
    await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    receiver.server.answer = answer(500, b"boom")
    with pytest.raises(ActionFailed):
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    with pytest.raises(ActionFailed):
        await actions.invoke(KEY, {"route": "audit", "text": "x"})
    messages = [record.getMessage() for record in caplog.records]
    assert any("<route alerts>" in m for m in messages), messages  # httpx's line, scrubbed
    for message in messages:
        no_secret(message)
    no_secret(caplog.text)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("routes", "extra", "words"),
    [
        (f'{{ url = "http://hooks.example.com/{MARK}" }}', "", "must be https"),
        (f'{{ url = "http://hooks.example.com/{MARK}" }}', "allow_insecure_loopback = true\n",
         "must be https"),
        (f'{{ url = "http://127.0.0.1:1/{MARK}" }}', "", "set allow_insecure_loopback"),
        (f'{{ url = "{MARK}" }}', "", "has no host"),
        (f'{{ url = "https://h:99999999/{MARK}" }}', "", "not a valid URL"),
        ("{ channel = \"#x\" }", "", "required setting is missing"),
        (f'{{ url = "https://h/{MARK}", colour = "red" }}', "", "unknown setting"),
        (f'{{ url = "https://h/{MARK}" }}', "verify = false\n", "cannot be turned off"),
        (f'{{ url = "https://h/{MARK}" }}', "timeout = 0\n", "greater than 0"),
    ],
    ids=["plain-http", "plain-http-not-loopback", "loopback-needs-flag", "no-host",
         "bad-port", "no-url", "unknown-route-field", "verify-off", "zero-timeout"],
)
async def test_bad_settings_name_the_route_not_the_url(
    make_actions: Any, routes: str, extra: str, words: str
) -> None:
    text = f'[action.provider_settings."{KEY}".webhook]\n{extra}routes.alerts = {routes}\n'
    with pytest.raises(ConfigError) as info:
        await make_actions(text)
    message = one_line(info.value)
    assert words in message
    if not extra.startswith(("verify", "timeout")):  # errors about a route name it
        assert "alerts" in message
    no_secret(message)


@pytest.mark.parametrize(
    ("provider", "route_extra", "unused"),
    [("webhook", ', channel = "#x"', "channel"), ("teams", ', username = "u"', "username"),
     ("slack", ', title = "T"', "title")],
)
async def test_route_fields_another_provider_uses_are_refused(
    make_actions: Any, receiver: Receiver, ca_path: str, provider: str, route_extra: str,
    unused: str,
) -> None:
    actions = await make_actions(settings_toml(provider, ca_path, route_extra))
    with pytest.raises(OneiricError) as info:
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    text = one_line(info.value)
    assert f"sets {unused}, which {provider} does not use" in text
    no_secret(text)


async def test_insecure_loopback_allowed_when_asked(
    make_actions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = Receiver(None)
    try:
        monkeypatch.setenv("ONEIRIC_SECRET_LOCAL_RELAY", plain.url)
        actions = await make_actions(
            f'[action.selections]\n"{KEY}" = "webhook"\n'
            f'[action.provider_settings."{KEY}".webhook]\nallow_insecure_loopback = true\n'
            'routes.relay = { url = "${secret:LOCAL_RELAY}" }\n'
        )
        result = await actions.invoke(KEY, {"route": "relay", "text": "x"})
        assert result.value["delivered"] is True
        assert len(plain.seen) == 1
    finally:
        plain.close()


async def test_untrusted_certificate_is_not_delivered(
    make_actions: Any, receiver: Receiver
) -> None:
    actions = await make_actions(
        f'[action.selections]\n"{KEY}" = "webhook"\n'
        f'[action.provider_settings."{KEY}".webhook]\n'
        'routes.alerts = { url = "${secret:NOTIFY_ALERTS_URL}" }\n'
    )
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    assert "could not be reached (ConnectError)" in one_line(info.value)
    assert receiver.seen == []


async def test_no_routes_configured(make_actions: Any) -> None:
    actions = await make_actions("")
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    assert "no routes are configured" in one_line(info.value)


# ----------------------------------------------------------------- payloads


@pytest.mark.parametrize(
    ("payload", "path", "words"),
    [
        ("text", "<payload>", "must be an object"),
        ({"route": "alerts", "text": "x", "url": "https://evil"}, "url",
         "unknown payload field"),
        ({"text": "x"}, "route", "is required"),
        ({"route": 1, "text": "x"}, "route", "must be a string"),
        ({"route": "alerts"}, "text", "is required"),
        ({"route": "alerts", "text": "  "}, "text", "is empty"),
        ({"route": "alerts", "text": 3}, "text", "must be a string"),
        ({"route": "alerts", "text": "x", "title": ["t"]}, "title", "must be a string"),
        ({"route": "alerts", "text": "x", "fields": [1]}, "fields", "must be an object"),
        ({"route": "alerts", "text": "x", "fields": {"a": {"b": 1}}}, "fields.a",
         "string, number or boolean"),
        ({"route": "alerts", "text": "x", "fields": {"a": None}}, "fields.a",
         "string, number or boolean"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_bad_input(
    make_actions: Any, receiver: Receiver, ca_path: str, payload: Any, path: str, words: str
) -> None:
    actions = await make_actions(settings_toml("slack", ca_path))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, payload)
    assert info.value.path == path
    assert words in one_line(info.value)
    assert receiver.seen == []


# --------------------------------------------------------- retries, timeouts


async def test_webhook_retry_carries_the_same_idempotency_key(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    ok = answer(200)
    fail = answer(503, b"busy")
    receiver.server.answer = lambda handler, n: (fail if n == 1 else ok)(handler, n)
    actions = await make_actions(settings_toml("webhook", ca_path))
    result = await actions.invoke(KEY, {"route": "alerts", "text": "x"},
                                  retry=RetryPolicy(max_attempts=2, initial=0.01, jitter=0.0))
    assert result.attempts == 2
    keys = [s.headers["idempotency-key"] for s in receiver.seen]
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_failed_delivery_is_not_retried_without_a_policy(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    receiver.server.answer = answer(503, b"busy")
    actions = await make_actions(settings_toml("slack", ca_path))
    with pytest.raises(ActionFailed) as info:
        await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    assert info.value.attempts == 1
    assert len(receiver.seen) == 1


def _slow(handler: _Handler, _n: int) -> None:
    handler.server.release.wait(30)  # set at teardown
    answer()(handler, _n)


async def test_slow_route_times_out(make_actions: Any, receiver: Receiver, ca_path: str) -> None:
    receiver.server.answer = _slow
    actions = await make_actions(settings_toml("teams", ca_path))
    with pytest.raises(ActionTimeout):
        await actions.invoke(KEY, {"route": "alerts", "text": "x"}, timeout=0.3)


@pytest.mark.parametrize("which", ["deadline", "setting"])
async def test_delivery_timeout_bounded_by_deadline_and_setting(
    receiver: Receiver, ca_path: str, which: str
) -> None:
    receiver.server.answer = _slow
    timeout, seconds = (300.0, 0.3) if which == "deadline" else (0.3, 300.0)
    provider = WebhookNotify(NotifySettings.model_validate(
        {"verify": ca_path, "timeout": timeout, "routes": {"alerts": {"url": receiver.url}}}))
    try:
        with pytest.raises(ActionTimeout) as info:
            await provider.invoke({"route": "alerts", "text": "x"}, context(seconds))
        text = one_line(info.value)
        assert "route 'alerts' did not answer within 0.3s" in text
        no_secret(text)
    finally:
        await provider.cleanup()


# ----------------------------------------------------------- lifecycle, imports


async def test_cleanup_closes_the_client_and_forgets_the_url(
    make_actions: Any, receiver: Receiver, ca_path: str
) -> None:
    from oneiric.actions._kits.notify import _scrubber

    actions = await make_actions(settings_toml("slack", ca_path))
    await actions.invoke(KEY, {"route": "alerts", "text": "x"})
    instance = DomainBridge("action", actions.lifecycle).handle(KEY).instance
    assert any(MARK in url for url, _ in _scrubber._urls)
    await actions.lifecycle.shutdown()
    assert instance._client.is_closed
    assert not any(MARK in url for url, _ in _scrubber._urls)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_spec_is_not_retried_by_default(provider: str) -> None:
    from oneiric.actions._kits import notify

    cls = {"webhook": notify.WebhookNotify, "slack": notify.SlackNotify,
           "teams": notify.TeamsNotify}[provider]
    assert (cls.spec.idempotent, cls.spec.side_effects, cls.spec.retry) == (False, True, None)


def test_importing_the_kit_does_not_import_httpx() -> None:
    code = (
        "import sys, oneiric.actions._kits.notify\n"
        "assert 'httpx' not in sys.modules, 'httpx imported at module level'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
