"""``workflow.notify``: post a message to a named route (``webhook``, ``slack``, ``teams``).

Routes live in provider settings, their URLs usually ``${secret:...}``::

    [action.provider_settings."workflow.notify".slack]
    routes.alerts = { url = "${secret:SLACK_ALERTS_URL}", channel = "#ops" }

A webhook URL *is* the credential (anyone holding a Slack incoming-webhook URL
can post), so it never leaves this module: errors name the route and the
status, never the URL; ``repr`` of settings and providers shows route names
only; httpx's own request log line (logger ``httpx``, INFO) has the URL
replaced by ``<route NAME>`` while a provider holding it is alive.

Payload ``{"route", "text", "title"?, "fields"?}`` (``fields``: name → string,
number or boolean) → ``{"delivered": true, "status": int}``.  Message shapes:

- ``webhook``: ``{"text", "title", "fields"}`` as JSON (title ``null`` and
  fields ``{}`` when not given), with the invocation's ``Idempotency-Key``;
- ``slack`` (incoming webhook): ``{"text", "blocks"}`` (a header block for the
  title, a mrkdwn section for the text, sections of at most 10 fields), plus
  the route's ``channel``/``username``/``icon_emoji`` when set.  ``&``, ``<``
  and ``>`` are escaped, so a payload cannot ping ``<!channel>`` or hide a link;
- ``teams``: an Adaptive Card (1.4) in a ``message`` envelope, the shape Teams'
  Workflows webhooks take (Office 365 connector MessageCards are retired):
  a bold title TextBlock (payload title, else the route's ``title``), the text,
  and a FactSet of the fields.

Delivery: one POST, TLS verified (``verify``), redirects not followed, at most
``timeout`` seconds cut to ``context.remaining()`` (expiry: ``ActionTimeout``).
A 2xx answer is delivered; anything else raises ``NotifyFailed`` naming the
route and the status.  Route URLs must be https; ``allow_insecure_loopback``
admits ``http://127.0.0.1``/``[::1]``/``localhost`` (local relays and tests).
Not idempotent, with side effects: a message is never re-sent unless the
caller passes a ``RetryPolicy``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from oneiric.core.helpers import one_line

from .._errors import ActionInputError, ActionTimeout
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, require, take
from ._fence import check_verify, ssl_context

if TYPE_CHECKING:
    import httpx

__all__ = [
    "NotifyFailed",
    "NotifyRoute",
    "NotifySettings",
    "SlackNotify",
    "TeamsNotify",
    "WebhookNotify",
]

_KEY = "workflow.notify"
_FIELDS = frozenset({"route", "text", "title", "fields"})
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_SNIPPET = 200  # characters of a failed answer's body put in the error
_READ_CAP = 64 * 1024  # bytes of an answer read at most (it is only looked at on failure)


class NotifyFailed(Exception):
    """The route answered something other than 2xx, or could not be reached (route named)."""


# ------------------------------------------------------------------ settings


class NotifyRoute(BaseModel):
    """One destination.  ``channel``/``username``/``icon_emoji`` are Slack's; ``title`` Teams'."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    title: str | None = None


class NotifySettings(BaseModel):
    """``[action.provider_settings."workflow.notify".<webhook|slack|teams>]``."""

    model_config = ConfigDict(extra="forbid")

    routes: dict[str, NotifyRoute] = Field(default_factory=dict)
    #: Seconds per delivery (cut to the attempt's deadline).
    timeout: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    #: ``true`` (system CAs) or a CA bundle path; ``false`` is refused.
    verify: bool | str = True
    #: Admit ``http://`` route URLs to 127.0.0.1, ::1 and localhost (never another host).
    allow_insecure_loopback: bool = False

    @field_validator("verify")
    @classmethod
    def _verify(cls, value: bool | str) -> bool | str:
        return check_verify(value)

    @model_validator(mode="after")
    def _urls(self) -> NotifySettings:
        for name, route in self.routes.items():
            problem = _url_problem(route.url.get_secret_value(), self.allow_insecure_loopback)
            if problem:  # names the route, never the URL
                raise ValueError(f"route {name!r}: the url {problem}")
        return self


def _url_problem(url: str, loopback_ok: bool) -> str | None:
    """Why ``url`` cannot be a route (worded without the URL), or ``None``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "is not a valid URL; give https://host/path"
    if not host:
        return "has no host; give https://host/path"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and loopback_ok and host in _LOOPBACK:
        return None
    if parts.scheme == "http" and host in _LOOPBACK:
        return "is plain http; set allow_insecure_loopback = true for a loopback relay"
    return "must be https (plain http only to 127.0.0.1/::1 with allow_insecure_loopback)"


# ----------------------------------------------------------- log scrubbing


class _ScrubRouteUrls(logging.Filter):
    """Replaces route URLs in httpx's log records by ``<route NAME>``.

    httpx logs every request at INFO with its full URL; an application that
    turns INFO on would print every webhook credential.  The filter sits on
    the ``httpx`` logger (where the records are made, so it runs before any
    handler) and knows the URLs of the live providers only.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._owners: dict[int, dict[str, str]] = {}
        self._urls: tuple[tuple[str, str], ...] = ()

    def add(self, owner: object, urls: Mapping[str, str]) -> None:
        with self._lock:
            self._owners[id(owner)] = dict(urls)
            self._rebuild()

    def remove(self, owner: object) -> None:
        with self._lock:
            self._owners.pop(id(owner), None)
            self._rebuild()

    def _rebuild(self) -> None:
        merged = {url: label for urls in self._owners.values() for url, label in urls.items()}
        self._urls = tuple(sorted(merged.items(), key=lambda item: -len(item[0])))

    def filter(self, record: logging.LogRecord) -> bool:
        urls = self._urls
        if not urls:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        changed = False
        for url, label in urls:
            if url in text:
                text = text.replace(url, label)
                changed = True
        if changed:
            record.msg, record.args = text, None
        return True


_scrubber = _ScrubRouteUrls()
_installed = False
_install_lock = threading.Lock()


def _install_scrubber() -> _ScrubRouteUrls:
    global _installed
    with _install_lock:
        if not _installed:
            logging.getLogger("httpx").addFilter(_scrubber)
            _installed = True
    return _scrubber


def _spellings(url: str, lib: Any) -> set[str]:
    """The forms a route URL may take in a log line: as written, as httpx prints it, its path."""
    forms = {url}
    try:
        parsed = lib.URL(url)
        forms.add(str(parsed))
        path = parsed.raw_path.decode("ascii", "replace")
        if len(path) > 1:
            forms.add(path)
    except Exception:
        pass
    return {f for f in forms if len(f) >= 4}


# ----------------------------------------------------------------- provider


def _field_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Notify:
    """The delivery every provider shares; subclasses shape the message."""

    spec: ClassVar[ActionSpec]
    provider: ClassVar[str]
    #: Route settings that mean something to this provider.
    route_fields: ClassVar[frozenset[str]] = frozenset()
    send_idempotency_key: ClassVar[bool] = False

    def __init__(self, settings: NotifySettings) -> None:
        lib = require("httpx", provider=self.provider, extra="http")
        from oneiric.core import ConfigError

        for name, route in settings.routes.items():
            unused = sorted(
                f for f in ("channel", "username", "icon_emoji", "title")
                if getattr(route, f) is not None and f not in self.route_fields
            )
            if unused:
                raise ConfigError(
                    f"workflow.notify provider {self.provider!r}: route {name!r} sets "
                    f"{', '.join(unused)}, which {self.provider} does not use; remove it"
                )
        self.settings = settings
        self._client: httpx.AsyncClient = lib.AsyncClient(
            verify=ssl_context(settings.verify),
            trust_env=False,
            follow_redirects=False,
        )
        urls: dict[str, str] = {}
        for name, route in settings.routes.items():
            for form in _spellings(route.url.get_secret_value(), lib):
                urls[form] = f"<route {name}>"
        _install_scrubber().add(self, urls)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(routes={sorted(self.settings.routes)!r})"

    async def cleanup(self) -> None:
        _scrubber.remove(self)
        await self._client.aclose()

    def message(self, route: NotifyRoute, text: str, title: str | None,
                fields: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    # ------------------------------------------------------------- invoke

    def _payload(self, payload: Any) -> tuple[str, NotifyRoute, str, str | None, dict[str, str]]:
        fields = fields_of(payload, _KEY, _FIELDS)
        name = take(fields, _KEY, "route", str)
        route = self.settings.routes.get(name)
        if route is None:
            known = ", ".join(sorted(self.settings.routes))
            hint = (
                f"configured routes: {known}" if known else
                f'no routes are configured; add [action.provider_settings."{_KEY}".'
                f"{self.provider}.routes.<name>] with a url"
            )
            raise ActionInputError(
                f"action {_KEY!r}: unknown route {name[:80]!r}; {hint}", path="route"
            )
        text = take(fields, _KEY, "text", str)
        if not text.strip():
            raise ActionInputError(
                f"action {_KEY!r}: payload field text is empty; send the message text",
                path="text",
            )
        title = take(fields, _KEY, "title", str, default=None)
        raw = take(fields, _KEY, "fields", dict, default={})
        values: dict[str, str] = {}
        for key, value in raw.items():
            if not isinstance(value, str | int | float | bool):
                raise ActionInputError(
                    f"action {_KEY!r}: fields.{key} must be a string, number or boolean, "
                    f"got {type(value).__name__}",
                    path=f"fields.{key}",
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ActionInputError(
                    f"action {_KEY!r}: fields.{key} must be a finite number, got {value}",
                    path=f"fields.{key}",
                )
            values[str(key)] = _field_text(value)
        return name, route, text, title, values

    async def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        name, route, text, title, fields = self._payload(payload)
        body = self.message(route, text, title, fields)
        budget = min(self.settings.timeout, context.remaining())
        if budget <= 0:
            raise ActionTimeout(
                f"action {_KEY!r}: no time left before the deadline to notify route {name!r}"
            )
        headers = {"Idempotency-Key": context.idempotency_key} if (
            self.send_idempotency_key
        ) else {}
        limit = asyncio.timeout(budget)
        try:
            async with limit:
                status, answer = await self._post(name, route, body, headers, budget)
        except TimeoutError:
            raise ActionTimeout(
                f"action {_KEY!r}: route {name!r} did not answer within {budget:.3g}s; "
                "raise the timeout or check the service"
            ) from None
        if not 200 <= status < 300:
            raise NotifyFailed(
                f"route {name!r} answered HTTP {status}{self._snippet(route, answer, status)}; "
                "check the route's URL and the service"
            )
        return {"delivered": True, "status": status}

    async def _post(self, name: str, route: NotifyRoute, body: dict[str, Any],
                    headers: dict[str, str], budget: float) -> tuple[int, bytes]:
        import httpx

        try:
            request = self._client.build_request(
                "POST", route.url.get_secret_value(), json=body, headers=headers,
                timeout=httpx.Timeout(budget),
            )
            response = await self._client.send(request, stream=True)
            try:
                answer = bytearray()
                async for chunk in response.aiter_raw():
                    answer += chunk
                    if len(answer) >= _READ_CAP:
                        break
            finally:
                await response.aclose()
            return response.status_code, bytes(answer)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # its text may hold the URL
            raise NotifyFailed(
                f"route {name!r} could not be reached ({type(exc).__name__}); "
                "check the route's URL, the network and TLS"
            ) from None

    @staticmethod
    def _snippet(route: NotifyRoute, answer: bytes, status: int) -> str:
        if 300 <= status < 400:
            return " (a redirect; redirects are not followed)"
        text = one_line(answer[:_SNIPPET].decode("utf-8", "replace")).strip()
        url = route.url.get_secret_value()
        path = urlsplit(url).path
        if not text or url in text or (len(path) > 1 and path in text):
            return ""
        return f": {text}"


class WebhookNotify(_Notify):
    """A generic JSON webhook: ``{"text", "title", "fields"}`` with an ``Idempotency-Key``."""

    provider = "webhook"
    send_idempotency_key = True
    spec = ActionSpec(
        description="POST a JSON message to a webhook route",
        idempotent=False, side_effects=True, timeout=30.0,
    )

    def message(self, route: NotifyRoute, text: str, title: str | None,
                fields: dict[str, str]) -> dict[str, Any]:
        return {"text": text, "title": title, "fields": fields}


def _slack_escape(text: str) -> str:
    """Slack's three control characters, so text cannot mention ``<!channel>`` or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class SlackNotify(_Notify):
    """A Slack incoming webhook: ``{"text", "blocks"}`` (+ channel/username/icon_emoji)."""

    provider = "slack"
    route_fields = frozenset({"channel", "username", "icon_emoji"})
    spec = ActionSpec(
        description="post a message to a Slack incoming webhook route",
        idempotent=False, side_effects=True, timeout=30.0,
    )

    def message(self, route: NotifyRoute, text: str, title: str | None,
                fields: dict[str, str]) -> dict[str, Any]:
        safe = _slack_escape(text)
        blocks: list[dict[str, Any]] = []
        if title:  # header blocks are plain_text (no mrkdwn, no mentions), at most 150
            blocks.append({"type": "header",
                           "text": {"type": "plain_text", "text": _cut(title, 150)}})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(safe, 3000)}})
        items = [
            {"type": "mrkdwn",
             "text": _cut(f"*{_slack_escape(k)}*\n{_slack_escape(v)}", 2000)}
            for k, v in fields.items()
        ]
        for start in range(0, len(items), 10):  # Slack takes 10 fields per section
            blocks.append({"type": "section", "fields": items[start:start + 10]})
        fallback = f"{_slack_escape(title)}: {safe}" if title else safe
        message: dict[str, Any] = {"text": _cut(fallback, 40000), "blocks": blocks[:50]}
        for extra in ("channel", "username", "icon_emoji"):
            value = getattr(route, extra)
            if value is not None:
                message[extra] = value
        return message


class TeamsNotify(_Notify):
    """A Teams Workflows webhook: an Adaptive Card 1.4 in a ``message`` envelope."""

    provider = "teams"
    route_fields = frozenset({"title"})
    spec = ActionSpec(
        description="post a message to a Microsoft Teams webhook route",
        idempotent=False, side_effects=True, timeout=30.0,
    )

    def message(self, route: NotifyRoute, text: str, title: str | None,
                fields: dict[str, str]) -> dict[str, Any]:
        body: list[dict[str, Any]] = []
        heading = title or route.title
        if heading:
            body.append({"type": "TextBlock", "text": heading, "weight": "Bolder",
                         "size": "Medium", "wrap": True})
        body.append({"type": "TextBlock", "text": text, "wrap": True})
        if fields:
            body.append({"type": "FactSet",
                         "facts": [{"title": k, "value": v} for k, v in fields.items()]})
        return {
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }],
        }
