"""Every first-party kit and provider, as strings only (what discovery registers).

One table is the whole catalog: the entry point registers it, ``oneiric action
list`` shows it, docs/actions.md documents it, and a test checks that every
string imports.  Nothing here imports a kit module, so ``load_plugins`` pays
for a dict literal, not for zstandard, httpx or argon2.

Per provider: the factory, the settings model (or ``None``), the module its
extra installs (``None`` for stdlib-backed providers), the extra's name and a
description.  The first provider of a key is its default (declared priority
1, like the memory cache): for most keys a stdlib-backed one, so a fresh
install with no extras and no selection works; where every provider needs an
extra (``workflow.notify``), the generic one (``webhook``) wins once it is in.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DOMAIN", "EMBEDDED_PRIORITY", "KITS", "ProviderEntry"]

#: The resolver domain of actions (ARCHITECTURE §10): the key is the action.
DOMAIN = "action"

#: The embedded default's declared priority (providers needing an extra keep 0).
EMBEDDED_PRIORITY = 1

_K = "oneiric.actions._kits"


class ProviderEntry(NamedTuple):
    factory: str
    settings_model: str | None
    requires: str | None  # top-level module the extra installs
    extra: str | None
    description: str


def _p(
    factory: str,
    description: str,
    *,
    settings: str | None = None,
    requires: str | None = None,
    extra: str | None = None,
) -> ProviderEntry:
    return ProviderEntry(f"{_K}.{factory}", f"{_K}.{settings}" if settings else None,
                         requires, extra, description)


def _codecs(direction: str) -> dict[str, ProviderEntry]:
    cls = "Encode" if direction == "encode" else "Decode"
    verb = "compress" if direction == "encode" else "decompress"
    return {
        "gzip": _p(f"compression:Gzip{cls}", f"{verb} with gzip (stdlib)",
                   settings="compression:GzipSettings"),
        "zlib": _p(f"compression:Zlib{cls}", f"{verb} with zlib (stdlib)",
                   settings="compression:ZlibSettings"),
        "lzma": _p(f"compression:Lzma{cls}", f"{verb} with lzma/xz (stdlib)",
                   settings="compression:LzmaSettings"),
        "zstd": _p(f"compression:Zstd{cls}", f"{verb} with Zstandard",
                   settings="compression:ZstdSettings", requires="zstandard", extra="zstd"),
        "brotli": _p(f"compression:Brotli{cls}", f"{verb} with Brotli",
                     settings="compression:BrotliSettings", requires="brotli", extra="brotli"),
    }


def _serializers(direction: str) -> dict[str, ProviderEntry]:
    cls = "Encode" if direction == "encode" else "Decode"
    return {
        "json": _p(f"serialization:Json{cls}", f"JSON {direction} (stdlib)"),
        "msgpack": _p(f"serialization:Msgpack{cls}", f"MessagePack {direction}",
                      requires="msgpack", extra="msgpack"),
        "yaml": _p(f"serialization:Yaml{cls}", f"YAML {direction} (safe loader/dumper only)",
                   requires="yaml", extra="yaml"),
    }


#: key -> provider -> entry.  Dict order: the embedded default first.
KITS: dict[str, dict[str, ProviderEntry]] = {
    "compression.encode": _codecs("encode"),
    "compression.decode": _codecs("decode"),
    "compression.hash": {
        "sha256": _p("hashing:Sha256", "SHA-256 hex digest (hashlib)"),
        "sha512": _p("hashing:Sha512", "SHA-512 hex digest (hashlib)"),
        "blake2b": _p("hashing:Blake2b", "BLAKE2b hex digest (hashlib)",
                      settings="hashing:Blake2bSettings"),
        "blake3": _p("hashing:Blake3", "BLAKE3 hex digest", requires="blake3", extra="blake3"),
    },
    "serialization.encode": _serializers("encode"),
    "serialization.decode": _serializers("decode"),
    "data.transform": {
        "builtin": _p("transform:Transform",
                      "select, rename, defaults, drop, flatten by a declarative spec"),
    },
    "data.sanitize": {
        "builtin": _p("sanitize:Sanitize",
                      "mask/hash/drop by field path and pattern (e-mail, cards, bearer tokens)",
                      settings="sanitize:SanitizeSettings"),
    },
    "validation.schema": {
        "pydantic": _p("schema:PydanticSchema", "validate against a pydantic model reference",
                       settings="schema:PydanticSchemaSettings"),
        "jsonschema": _p("schema:JsonSchema", "validate against a JSON Schema",
                         requires="jsonschema", extra="jsonschema"),
    },
    "security.signature": {
        "hmac": _p("signature:HmacSignature", "HMAC sign/verify, constant-time comparison",
                   settings="signature:HmacSettings"),
    },
    "security.secure": {
        "scrypt": _p("secure:ScryptSecure", "password hash/verify with scrypt; random tokens",
                     settings="secure:ScryptSettings"),
        "argon2": _p("secure:Argon2Secure", "password hash/verify with Argon2id; random tokens",
                     settings="secure:Argon2Settings", requires="argon2", extra="argon2"),
    },
    "http.fetch": {
        "httpx": _p("http:HttpFetch",
                    "HTTP request with size cap, host allowlist, no https->http redirect",
                    settings="http:FetchSettings", requires="httpx", extra="http"),
    },
    "debug.console": {
        "builtin": _p("console:Console", "echo and log a payload, secrets redacted",
                      settings="console:ConsoleSettings"),
    },
    "workflow.notify": {
        "webhook": _p("notify:WebhookNotify", "POST a JSON message to a webhook route",
                      settings="notify:NotifySettings", requires="httpx", extra="http"),
        "slack": _p("notify:SlackNotify", "post a message to a Slack incoming webhook route",
                    settings="notify:NotifySettings", requires="httpx", extra="http"),
        "teams": _p("notify:TeamsNotify", "post a message to a Microsoft Teams webhook route",
                    settings="notify:NotifySettings", requires="httpx", extra="http"),
    },
    "workflow.audit": {
        "jsonl": _p("audit:JsonlAudit",
                    "append-only, hash-chained, redacted audit records in a JSON-lines file",
                    settings="audit:AuditSettings"),
    },
}
