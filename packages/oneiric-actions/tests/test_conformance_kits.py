"""Every first-party provider of the catalog passes the action conformance suite.

One ``TestConformance_<key>_<provider>`` class per ``(key, provider)`` in
``_catalog.KITS``, generated from the table below: the provider is built from
the catalog's own factory and settings-model strings (``import_reference``)
exactly as the resolver builds it, then run through ``ActionConformance`` via a
real resolver, ``LifecycleManager`` and ``Actions``.  The network kits talk to
a real HTTP server on 127.0.0.1 started by this module (``/ok`` answers, a
``/hang`` request is held until the server closes: the slow payload).

A test checks the table covers the catalog exactly, so a new provider cannot
be added without its conformance class.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import inspect
import json
import lzma
import math
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oneiric.actions import ActionContext, ActionInputError
from oneiric.actions._catalog import KITS
from oneiric.actions.testing import ActionConformance
from oneiric.core import import_reference

pytest_plugins = ["oneiric.actions.testing"]

# ------------------------------------------------------------ local server


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/hang"):
            self.server.release.wait(60)  # never answers while the test runs
            return
        if self.path.startswith("/redirect-with-credentials"):
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://user:{URL_PASSWORD}@127.0.0.1:{port}/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"ok": True, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # concurrent tests connect at once; 5 would drop SYNs
    release: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: ``/ok...`` answers JSON, ``/hang...`` never answers."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


# ------------------------------------------------------------------ inputs

URL_PASSWORD = "pw-in-the-url-0451"
LONE_SURROGATE = "\ud800"  # what JSON "\\ud800" decodes to: text that has no UTF-8 form

HELLO = b"hello " * 50
BASE64_HELLO = {"base64": base64.b64encode(HELLO).decode("ascii")}
NOT_JSON = {1, 2}  # a set: never JSON-compatible


def _compressed(codec: str) -> bytes | None:
    """``HELLO`` in ``codec``'s format, made by the codec's library (``None`` if absent)."""
    if codec == "gzip":
        return gzip.compress(HELLO, mtime=0)
    if codec == "zlib":
        return zlib.compress(HELLO)
    if codec == "lzma":
        return lzma.compress(HELLO)
    module = {"zstd": "zstandard", "brotli": "brotli"}[codec]
    if importlib.util.find_spec(module) is None:
        return None
    if codec == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(write_checksum=True).compress(HELLO))
    import brotli

    return bytes(brotli.compress(HELLO))


NOT_A_PAYLOAD: tuple[Any, ...] = (None, [], "data", 3)

MODEL = "oneiric.actions._kits.compression:GzipSettings"  # a real pydantic model: level 0..9


@dataclass(frozen=True)
class Kit:
    """How to exercise one provider: settings values and payloads."""

    valid: tuple[Any, ...]
    invalid: tuple[Any, ...]
    #: settings values, from (server url, tmp dir)
    settings: Callable[[str, Path], dict[str, Any]] = field(default=lambda url, tmp: {})
    slow: Callable[[str], Any] | None = None
    deterministic: bool = False


def _codec_kits() -> dict[tuple[str, str], Kit]:
    kits: dict[tuple[str, str], Kit] = {}
    for codec in KITS["compression.encode"]:
        kits["compression.encode", codec] = Kit(
            valid=({"data": HELLO}, {"data": "text", "encoding": "base64"}, {"data": b""},
                   {"data": BASE64_HELLO}),
            invalid=(*NOT_A_PAYLOAD, {}, {"data": 3}, {"data": None},
                     {"data": "x", "encoding": "hex"}, {"data": "x", "encoding": 64},
                     {"data": "x", "level": 9}, {"data": {"base64": "!!"}},
                     {"data": LONE_SURROGATE}),
            deterministic=True,
        )
        packed = _compressed(codec) or b""
        kits["compression.decode", codec] = Kit(
            valid=({"data": packed}, {"data": packed, "encoding": "base64"},
                   {"data": base64.b64encode(packed).decode("ascii")}),
            invalid=(*NOT_A_PAYLOAD, {}, {"data": 3}, {"data": "not base64 at all!"},
                     {"data": b"garbage, not compressed"}, {"data": packed[: len(packed) // 2]},
                     {"data": packed + b"trailing"}, {"data": packed, "encoding": "hex"},
                     {"data": packed, "codec": "gzip"}, {"data": LONE_SURROGATE}),
            deterministic=True,
        )
    return kits


def _hash_kit() -> Kit:
    return Kit(
        valid=({"data": b"hello"}, {"data": "text"}, {"data": ""}, {"data": BASE64_HELLO}),
        invalid=(*NOT_A_PAYLOAD, {}, {"data": 3}, {"data": ["a"]}, {"data": "x", "algo": "md5"},
                 {"data": {"base64": 3}}, {"data": LONE_SURROGATE}),
        deterministic=True,
    )


ENCODE_VALUE = {"a": [1, 2.5, "x", None, True], "nested": {"b": {}}}
SERIALIZED = {
    "json": b'{"a":[1,2.5,"x",null,true],"nested":{"b":{}}}',
    "msgpack": bytes.fromhex("82a16195 01cb4004000000000000 a178 c0 c3 a66e6573746564 81a162 80"
                             .replace(" ", "")),
    "yaml": b"a: [1, 2.5, x, null, true]\nnested: {b: {}}\n",
}
GARBAGE = {"json": b"{not json", "msgpack": b"\xc1", "yaml": b"a: [1, 2"}


def _serialization_kits() -> dict[tuple[str, str], Kit]:
    kits: dict[tuple[str, str], Kit] = {}
    for fmt in KITS["serialization.encode"]:
        kits["serialization.encode", fmt] = Kit(
            valid=({"value": ENCODE_VALUE}, {"value": "text"}, {"value": None},
                   {"value": [b"\x00bytes"]}),
            invalid=(*NOT_A_PAYLOAD, {}, {"value": NOT_JSON}, {"value": float("nan")},
                     {"value": {1: "non-string key"}}, {"value": 1, "format": "json"},
                     {"value": object()},
                     *(({"value": 2**64}, {"value": [LONE_SURROGATE]}) if fmt == "msgpack"
                       else ())),
            deterministic=True,
        )
        kits["serialization.decode", fmt] = Kit(
            valid=({"data": SERIALIZED[fmt]},
                   {"data": {"base64": base64.b64encode(SERIALIZED[fmt]).decode("ascii")}}),
            invalid=(*NOT_A_PAYLOAD, {}, {"data": 3}, {"data": GARBAGE[fmt]},
                     {"data": SERIALIZED[fmt], "extra": 1}, {"data": LONE_SURROGATE}),
            deterministic=True,
        )
    return kits


TRANSFORM = Kit(
    valid=({"data": {"user": {"name": "Ada", "password": "x"}},
            "spec": {"drop": ["user.password"], "rename": {"user.name": "full"},
                     "defaults": {"plan": "free"}, "flatten": True}},
           {"data": [{"a": 1}, {"a": 2, "b": 3}], "spec": {"select": ["a"]}},
           {"data": {}, "spec": {}}),
    invalid=(*NOT_A_PAYLOAD, {"data": {}}, {"spec": {}}, {"data": 3, "spec": {}},
             {"data": {}, "spec": {"explode": []}}, {"data": {}, "spec": {"select": "a"}},
             {"data": [1], "spec": {}}, {"data": {}, "spec": {}, "mode": "x"},
             {"data": {"a": 1, "b": 2}, "spec": {"rename": {"a": "b"}}}),
    deterministic=True,
)

SANITIZE = Kit(
    valid=({"data": {"mail": "ada@example.com", "card": "4111 1111 1111 1111",
                     "auth": "Bearer abc.def"}},
           {"data": {"id": "u1", "n": [1, 2]},
            "rules": [{"path": "id", "action": "hash"}, {"regex": "EMP-\\d{4}"}]},
           {"data": "plain text"}, {"data": None}),
    invalid=(*NOT_A_PAYLOAD, {}, {"data": NOT_JSON}, {"data": "x", "rules": 3},
             {"data": "x", "rules": [{"path": "a", "action": "explode"}]},
             {"data": "x", "rules": [{"regex": "(a+)+"}]},
             {"data": "x", "rules": [{"regex": "("}]},
             {"data": "x", "rules": [{"pattern": "phone"}]},
             {"data": "x", "extra": 1}),
    settings=lambda url, tmp: {"salt": "conformance-salt"},
    deterministic=True,
)

PYDANTIC = Kit(
    valid=({"data": {"level": 3}, "model": MODEL},
           {"data": {"level": 99, "nosuch": 1}, "model": MODEL}),
    invalid=(*NOT_A_PAYLOAD, {"data": {}}, {"model": MODEL}, {"data": {}, "model": 3},
             {"data": {}, "model": "not a reference"},
             {"data": {}, "model": "oneiric.actions._kits.nosuch:Model"},
             {"data": {}, "model": "oneiric.actions._catalog:KITS"},
             {"data": {}, "model": "json:loads"},  # outside allowed_models
             {"data": {"level": 99}, "model": MODEL, "raise": True},
             {"data": {}, "model": MODEL, "raise": "yes"}),
    settings=lambda url, tmp: {"allowed_models": ["oneiric.actions"]},
    deterministic=True,
)

JSONSCHEMA = Kit(
    valid=({"data": {"n": 1}, "schema": {"properties": {"n": {"type": "integer"}}}},
           {"data": {"n": "x"}, "schema": {"properties": {"n": {"type": "integer"}}}},
           {"data": "ada@example.com", "schema": {"format": "email"}}),
    invalid=(*NOT_A_PAYLOAD, {"data": 1}, {"schema": {}}, {"data": 1, "schema": 3},
             {"data": 1, "schema": {"type": "nosuch"}},
             {"data": 1, "schema": {"$ref": "https://example.com/schema.json"}},
             {"data": "x", "schema": {"type": "integer"}, "raise": True},
             {"data": 1, "schema": {}, "model": MODEL}),
    deterministic=True,
)

SIGNATURE = Kit(
    valid=({"op": "sign", "data": "hello"}, {"op": "sign", "data": b"hi", "key": "other"},
           {"op": "verify", "data": "hello", "signature": "sha256=00"},
           {"op": "verify", "data": "hello", "signature": ""}),
    invalid=(*NOT_A_PAYLOAD, {}, {"op": "encrypt", "data": "x"}, {"op": 1, "data": "x"},
             {"op": "sign"}, {"op": "verify", "data": "x"},
             {"op": "verify", "data": "x", "signature": 3},
             {"op": "sign", "data": "x", "signature": "ab"}, {"op": "sign", "data": 3},
             {"op": "sign", "data": "x", "key": 5}, {"op": "sign", "data": LONE_SURROGATE}),
    settings=lambda url, tmp: {"key": "conformance-key"},
    deterministic=True,
)


def _secure_kit(cheap: dict[str, Any], own_hash: str, other_hash: str) -> Kit:
    return Kit(
        valid=({"op": "token"}, {"op": "token", "bytes": 16}, {"op": "hash", "password": "pw"},
               {"op": "verify", "password": "pw", "hash": own_hash}),
        invalid=(*NOT_A_PAYLOAD, {}, {"op": "encrypt"}, {"op": "token", "bytes": 8},
                 {"op": "token", "bytes": 2048}, {"op": "token", "bytes": "32"},
                 {"op": "hash"}, {"op": "hash", "password": ""}, {"op": "hash", "password": 3},
                 {"op": "hash", "password": "x", "hash": "y"},
                 {"op": "verify", "password": "x", "hash": "malformed"},
                 {"op": "verify", "password": "x", "hash": other_hash},
                 {"op": "hash", "password": "x" * 5000},
                 {"op": "hash", "password": LONE_SURROGATE}),
        settings=lambda url, tmp: cheap,
    )


SCRYPT_HASH = "scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="
ARGON2_HASH = "$argon2id$v=19$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


def _http_kit() -> Kit:
    return Kit(
        valid=({"url": "{url}/ok"}, {"method": "POST", "url": "{url}/ok", "json": {"a": 1}},
               {"method": "PUT", "url": "{url}/ok", "body": b"raw"},
               {"method": "HEAD", "url": "{url}/ok", "headers": {"X-Test": "1"}}),
        invalid=(*NOT_A_PAYLOAD, {}, {"url": 3}, {"url": "http://example.com/"},
                 {"url": "ftp://127.0.0.1/x"}, {"url": "not a url"},
                 {"url": "{url}/ok", "method": "TRACE"}, {"url": "{url}/ok", "method": 1},
                 {"url": "{url}/ok", "json": {}, "body": "x"},
                 {"url": "{url}/ok", "headers": {"Host": "evil"}},
                 {"url": "{url}/ok", "headers": {"Idempotency-Key": "mine"}},
                 {"url": "{url}/ok", "headers": ["X-A"]},
                 {"url": "{url}/ok", "timeout": 5}, {"url": "http://127.0.0.1:99999/ok"},
                 {"url": f"http://user:{URL_PASSWORD}@127.0.0.1/ok"},
                 {"method": "POST", "url": "{url}/ok", "body": LONE_SURROGATE}),
        settings=lambda url, tmp: {"allowed_hosts": ["127.0.0.1"], "allow_http": True},
        slow=lambda url: {"url": f"{url}/hang"},
    )


def _notify_kit() -> Kit:
    return Kit(
        valid=({"route": "ok", "text": "hello"},
               {"route": "ok", "text": "disk <!channel> & 97%", "title": "db-1",
                "fields": {"host": "db-1", "usage": 97, "critical": True}}),
        invalid=(*NOT_A_PAYLOAD, {}, {"route": "ok"}, {"text": "x"},
                 {"route": "nosuch", "text": "x"}, {"route": 1, "text": "x"},
                 {"route": "ok", "text": 3}, {"route": "ok", "text": "x", "title": 3},
                 {"route": "ok", "text": "x", "fields": {"a": [1]}},
                 {"route": "ok", "text": "x", "fields": []},
                 {"route": "ok", "text": "x", "channel": "#ops"},
                 {"route": "ok", "text": "x", "fields": {"usage": math.nan}}),
        settings=lambda url, tmp: {
            "routes": {"ok": {"url": f"{url}/ok"}, "slow": {"url": f"{url}/hang"}},
            "allow_insecure_loopback": True,
        },
        slow=lambda url: {"route": "slow", "text": "x"},
    )


CONSOLE = Kit(
    valid=({"message": "hi"}, {"message": "calling", "data": {"token": "t", "n": 3}}, {},
           {"data": [1, "two", None]}),
    invalid=(*NOT_A_PAYLOAD, {"message": 3}, {"msg": "hi"}, {"message": "x", "level": "info"}),
    deterministic=True,
)

AUDIT = Kit(
    valid=({"event": "deploy"}, {"event": "deploy", "actor": "ada", "data": {"v": "1.4.2"}},
           {"event": "login", "data": {"password": "hunter2", "raw": b"\x00"}}),
    invalid=(*NOT_A_PAYLOAD, {}, {"actor": "ada"}, {"event": ""}, {"event": 3},
             {"event": "x" * 300}, {"event": "x", "actor": 3}, {"event": "x", "data": NOT_JSON},
             {"event": "x", "at": "now"}),
    settings=lambda url, tmp: {"path": str(tmp / "audit.jsonl")},
)

TABLE: dict[tuple[str, str], Kit] = {
    **_codec_kits(),
    **{("compression.hash", p): _hash_kit() for p in KITS["compression.hash"]},
    **_serialization_kits(),
    ("data.transform", "builtin"): TRANSFORM,
    ("data.sanitize", "builtin"): SANITIZE,
    ("validation.schema", "pydantic"): PYDANTIC,
    ("validation.schema", "jsonschema"): JSONSCHEMA,
    ("security.signature", "hmac"): SIGNATURE,
    ("security.secure", "scrypt"): _secure_kit(
        {"n": 1024, "r": 8, "p": 1}, SCRYPT_HASH, ARGON2_HASH),
    ("security.secure", "argon2"): _secure_kit(
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}, ARGON2_HASH, SCRYPT_HASH),
    ("http.fetch", "httpx"): _http_kit(),
    ("debug.console", "builtin"): CONSOLE,
    **{("workflow.notify", p): _notify_kit() for p in KITS["workflow.notify"]},
    ("workflow.audit", "jsonl"): AUDIT,
}


def _with_url(value: Any, url: str) -> Any:
    """Payloads name the local server as ``{url}``."""
    if isinstance(value, str):
        return value.replace("{url}", url)
    if isinstance(value, dict):
        return {k: _with_url(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_url(v, url) for v in value]
    return value


class _KitConformance(ActionConformance):
    """The conformance suite for one catalog provider (``key``/``provider`` set per class)."""

    key: str
    provider: str

    @pytest.fixture
    def action_factory(self, server_url: str, tmp_path: Path) -> Callable[[], Any]:
        entry = KITS[self.key][self.provider]
        if entry.requires and importlib.util.find_spec(entry.requires) is None:
            pytest.skip(f"extra {entry.extra!r} ({entry.requires}) is not installed")
        kit = TABLE[self.key, self.provider]
        # Payloads naming the server are filled in per test (the port is per module).
        self.valid_payloads = _with_url(list(kit.valid), server_url)
        self.invalid_payloads = _with_url(list(kit.invalid), server_url)
        self.slow_payload = kit.slow(server_url) if kit.slow else None
        factory = import_reference(entry.factory, what="factory")
        if entry.settings_model is None:
            return factory  # type: ignore[no-any-return]
        settings = import_reference(entry.settings_model, what="settings model")(
            **kit.settings(server_url, tmp_path)
        )
        return lambda: factory(settings)


def _class_name(key: str, provider: str) -> str:
    return f"TestConformance_{key.replace('.', '_')}_{provider}"


for (_key, _provider), _kit in TABLE.items():
    globals()[_class_name(_key, _provider)] = type(
        _class_name(_key, _provider),
        (_KitConformance,),
        {"key": _key, "provider": _provider, "deterministic": _kit.deterministic,
         "valid_payloads": _kit.valid, "invalid_payloads": _kit.invalid,
         # "{url}" placeholders: a test that ran without action_factory's values fails
         "slow_payload": _kit.slow("{url}") if _kit.slow else None,
         "__doc__": f"{_key} / {_provider} through the conformance suite."},
    )


def test_every_catalog_provider_has_a_conformance_class() -> None:
    catalog = {(key, provider) for key, providers in KITS.items() for provider in providers}
    assert set(TABLE) == catalog
    for key, provider in catalog:
        assert issubclass(globals()[_class_name(key, provider)], ActionConformance)


# ---------------------------------------------- attacks found by the table
#
# Each was a raw exception (or a leaked credential) from a first-party provider
# before its fix; the payloads are also in the providers' invalid_payloads above.

def build(key: str, provider: str, url: str, tmp: Path) -> Any:
    """The provider as the catalog builds it, with this module's settings values."""
    entry = KITS[key][provider]
    if entry.requires and importlib.util.find_spec(entry.requires) is None:
        pytest.skip(f"extra {entry.extra!r} ({entry.requires}) is not installed")
    factory = import_reference(entry.factory)
    if entry.settings_model is None:
        return factory()
    settings = import_reference(entry.settings_model)(**TABLE[key, provider].settings(url, tmp))
    return factory(settings)


async def call(key: str, provider: str, payload: Any, url: str, tmp: Path) -> Any:
    instance = build(key, provider, url, tmp)
    context = ActionContext(key, provider, 1, math.inf, "idem-1")
    try:
        result = instance.invoke(payload, context)
        return await result if inspect.isawaitable(result) else result
    finally:
        cleanup = getattr(instance, "cleanup", None)
        if cleanup is not None:
            await cleanup()


def _one_line_input_error(exc: pytest.ExceptionInfo[ActionInputError], path: str) -> str:
    message = str(exc.value)
    assert exc.value.path == path, message
    assert "\n" not in message and message
    return message


SURROGATE_CASES = [
    *[pytest.param("compression.encode", p, {"data": LONE_SURROGATE}, "data",
                   id=f"compression.encode-{p}") for p in KITS["compression.encode"]],
    *[pytest.param("compression.hash", p, {"data": LONE_SURROGATE}, "data",
                   id=f"compression.hash-{p}") for p in KITS["compression.hash"]],
    *[pytest.param("serialization.decode", p, {"data": LONE_SURROGATE}, "data",
                   id=f"serialization.decode-{p}") for p in KITS["serialization.decode"]],
    pytest.param("serialization.encode", "msgpack", {"value": {"a": [LONE_SURROGATE]}}, "value",
                 id="serialization.encode-msgpack"),
    pytest.param("security.signature", "hmac", {"op": "sign", "data": LONE_SURROGATE}, "data",
                 id="security.signature-data"),
    pytest.param("security.signature", "hmac", {"op": "sign", "data": "x",
                                                "key": LONE_SURROGATE}, "key",
                 id="security.signature-key"),
    *[pytest.param("security.secure", p, {"op": "hash", "password": LONE_SURROGATE},
                   "password", id=f"security.secure-{p}") for p in KITS["security.secure"]],
    pytest.param("http.fetch", "httpx", {"method": "POST", "url": "{url}/ok",
                                         "body": LONE_SURROGATE}, "body", id="http.fetch-body"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("key", "provider", "payload", "path"), SURROGATE_CASES)
async def test_attack_lone_surrogate_text_is_an_input_error(
    key: str, provider: str, payload: Any, path: str, server_url: str, tmp_path: Path
) -> None:
    """Text read as UTF-8 that cannot be UTF-8: one line naming the field, no UnicodeEncodeError."""
    with pytest.raises(ActionInputError) as exc:
        await call(key, provider, _with_url(payload, server_url), server_url, tmp_path)
    assert "not valid Unicode" in _one_line_input_error(exc, path)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", list(KITS["serialization.encode"]))
async def test_lone_surrogate_value_encodes_where_the_format_can_escape_it(
    provider: str, server_url: str, tmp_path: Path
) -> None:
    """json and yaml write ``\\ud800`` as an escape (valid UTF-8 that decodes back); msgpack,
    whose strings are UTF-8, refuses it (above)."""
    if provider == "msgpack":
        pytest.skip("msgpack strings are UTF-8: refused (test_attack_lone_surrogate_...)")
    value = {"a": [LONE_SURROGATE, "é"]}
    data = (await call("serialization.encode", provider, {"value": value},
                       server_url, tmp_path))["data"]
    data.decode("utf-8")  # valid UTF-8
    back = await call("serialization.decode", provider, {"data": data}, server_url, tmp_path)
    assert back == {"value": value}


@pytest.mark.anyio
@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**400],
                         ids=["2**64", "-2**63-1", "10**400"])
async def test_attack_msgpack_integer_out_of_range_is_an_input_error(
    number: int, server_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ActionInputError) as exc:
        await call("serialization.encode", "msgpack", {"value": {"n": [number]}},
                   server_url, tmp_path)
    assert "64-bit" in _one_line_input_error(exc, "value")


@pytest.mark.anyio
@pytest.mark.parametrize("port", ["0", "65536", "99999"])
async def test_attack_url_port_out_of_range_is_an_input_error(
    port: str, server_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ActionInputError) as exc:
        await call("http.fetch", "httpx", {"url": f"http://127.0.0.1:{port}/ok"},
                   server_url, tmp_path)
    assert "port" in _one_line_input_error(exc, "url")


@pytest.mark.anyio
@pytest.mark.parametrize("userinfo", [f"user:{URL_PASSWORD}", URL_PASSWORD, f":{URL_PASSWORD}"])
async def test_attack_url_credentials_are_refused_and_never_echoed(
    userinfo: str, server_url: str, tmp_path: Path
) -> None:
    """A password in the URL would be sent as Basic auth and printed in every error."""
    url = server_url.replace("http://", f"http://{userinfo}@") + "/ok"
    with pytest.raises(ActionInputError) as exc:
        await call("http.fetch", "httpx", {"url": url}, server_url, tmp_path)
    message = _one_line_input_error(exc, "url")
    assert "credentials" in message
    assert URL_PASSWORD not in message


@pytest.mark.anyio
async def test_attack_redirect_to_a_url_with_credentials_is_refused_and_not_echoed(
    server_url: str, tmp_path: Path
) -> None:
    from oneiric.actions._kits.http import RedirectRefused

    with pytest.raises(RedirectRefused) as exc:
        await call("http.fetch", "httpx", {"url": f"{server_url}/redirect-with-credentials"},
                   server_url, tmp_path)
    assert "credentials" in str(exc.value)
    assert URL_PASSWORD not in str(exc.value)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", list(KITS["workflow.notify"]))
@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
async def test_attack_notify_non_finite_field_is_an_input_error(
    provider: str, number: float, server_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ActionInputError) as exc:
        await call("workflow.notify", provider,
                   {"route": "ok", "text": "x", "fields": {"usage": number}}, server_url, tmp_path)
    assert "finite" in _one_line_input_error(exc, "fields.usage")
