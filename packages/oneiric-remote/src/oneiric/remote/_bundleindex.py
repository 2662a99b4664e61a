"""A bundle's layout and its ``index.json``: the one description its writer and reader share.

::

    <bundle>/
      index.json               format, sources, per-file sha256 (written last)
      envelopes/<sha256>.json  each source's last-good envelope, named by its bytes
      blobs/<sha256>           each verified archive, named by content
      vendor/<sha256>/         its importable files, put on sys.path in place

The index is *not* trusted: it only says which envelope belongs to which
configured source.  Authenticity comes from the envelope's signatures, checked
with the keys of the loading process's settings; the blobs are anchored by the
signed sha256 and the vendor dirs compared file by file with their blob.  The
per-file hashes are for deployment tooling (and a quick look at what changed).
A missing or garbled index is a ``ConfigError`` naming the path: the setting
points at something that is not a bundle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from oneiric.core import ConfigError

__all__ = [
    "BLOBS",
    "ENVELOPES",
    "FORMAT",
    "INDEX",
    "VENDOR",
    "BundleIndex",
    "BundledSource",
    "read_index",
]

FORMAT = 1
INDEX = "index.json"
ENVELOPES = "envelopes"
BLOBS = "blobs"
VENDOR = "vendor"
#: an index larger than this is not one ``oneiric remote bundle`` wrote
MAX_INDEX_BYTES = 64 * 1024 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENVELOPE = re.compile(rf"{ENVELOPES}/[0-9a-f]{{64}}\.json")


@dataclass(frozen=True)
class BundledSource:
    """One source's entry: which envelope, which artifacts.

    ``keyids`` and ``threshold`` record the trust the bundle was built with,
    for people reading the index; the loader never verifies with them.
    """

    repository: str
    version: int
    digest: str
    url: str
    envelope: str
    artifacts: tuple[str, ...]
    keyids: tuple[str, ...] = ()
    threshold: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "version": self.version,
            "digest": self.digest,
            "url": self.url,
            "envelope": self.envelope,
            "artifacts": list(self.artifacts),
            "keyids": list(self.keyids),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class BundleIndex:
    """What ``index.json`` holds."""

    created_at: str
    sources: Mapping[str, BundledSource]
    files: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "created_at": self.created_at,
            "sources": {name: s.as_dict() for name, s in sorted(self.sources.items())},
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def _garbled(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"remote bundle index {path} {why}; point [remote] bundle (or ONEIRIC_REMOTE_BUNDLE) "
        "at a directory written by 'oneiric remote bundle', or build it again"
    )


def _relative(text: object) -> bool:
    if not isinstance(text, str) or not text or "\\" in text or "\x00" in text:
        return False
    path = PurePosixPath(text)
    return not path.is_absolute() and all(p not in ("", ".", "..") for p in text.split("/"))


def _source(doc: Any) -> BundledSource:
    if not isinstance(doc, dict):
        raise ValueError("a source entry is not a mapping")
    artifacts = doc.get("artifacts")
    keyids = doc.get("keyids", [])
    checks = [
        isinstance(doc.get("repository"), str),
        type(doc.get("version")) is int,
        isinstance(doc.get("digest"), str) and _SHA256.fullmatch(doc["digest"]) is not None,
        isinstance(doc.get("url"), str),
        isinstance(doc.get("envelope"), str) and _ENVELOPE.fullmatch(doc["envelope"]) is not None,
        isinstance(artifacts, list)
        and all(isinstance(a, str) and _SHA256.fullmatch(a) for a in artifacts),
        isinstance(keyids, list) and all(isinstance(k, str) for k in keyids),
        type(doc.get("threshold", 1)) is int,
    ]
    if not all(checks):
        raise ValueError("a source entry has missing or mistyped fields")
    assert isinstance(artifacts, list)
    return BundledSource(
        doc["repository"], doc["version"], doc["digest"], doc["url"], doc["envelope"],
        tuple(artifacts), tuple(keyids), doc.get("threshold", 1),
    )


def read_index(bundle_dir: Path) -> BundleIndex:
    """Parse ``<bundle_dir>/index.json``; a ``ConfigError`` naming the path if it is not one."""
    path = bundle_dir / INDEX
    if not bundle_dir.is_dir():
        raise ConfigError(
            f"remote bundle {bundle_dir} is not a directory; build it with 'oneiric remote "
            "bundle OUT' and point [remote] bundle (or ONEIRIC_REMOTE_BUNDLE) at OUT"
        )
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_INDEX_BYTES + 1)
    except OSError as exc:
        raise _garbled(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_INDEX_BYTES:
        raise _garbled(path, f"is above {MAX_INDEX_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise _garbled(path, "is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise _garbled(path, f"has format {found!r}, this version reads format {FORMAT}")
    sources, files = doc.get("sources"), doc.get("files")
    if not isinstance(sources, dict) or not isinstance(files, dict):
        raise _garbled(path, "lacks its 'sources' or 'files' mapping")
    try:
        parsed = {str(name): _source(entry) for name, entry in sources.items()}
    except ValueError as exc:
        raise _garbled(path, str(exc)) from None
    if not all(_relative(k) and isinstance(v, str) and _SHA256.fullmatch(v)
               for k, v in files.items()):
        raise _garbled(path, "lists a file that is not a relative path with a sha256")
    created = doc.get("created_at")
    return BundleIndex(created if isinstance(created, str) else "", parsed, dict(files))
