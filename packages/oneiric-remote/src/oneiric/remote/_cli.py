"""``oneiric manifest ...`` and ``oneiric remote ...``: click commands, imported only by the CLI.

click is the CLI's dependency, not oneiric-remote's: ``_plugin.oneiric_cli_commands``
imports this module when the CLI asks.  Commands raise; the error reaches the
one path from error to exit code (``oneiric.core.exit_code_for``, from each
error's ``category``): under ``oneiric`` its main prints the one line, and when
a group runs on its own (``StandaloneGroup``: tests, an embedding tool) the group
does the same.  Results go to stdout (``--json`` for machines).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from oneiric.core import ConfigError
from oneiric.core.helpers import exit_code_for, one_line, scrub_text

from ._errors import ManifestFormatError, RemoteError

if TYPE_CHECKING:
    from ._config import RemoteSource
    from ._verify import TrustedKey

__all__ = ["StandaloneGroup", "manifest", "remote"]


class StandaloneGroup(click.Group):
    """A group that, when it is the root command, turns an error into one line and its code.

    Under ``oneiric`` (the group has a parent context) errors propagate to the
    CLI's main, which does exactly this (plus ``--debug``); click's own
    exceptions (usage 2, ``Exit``, ``Abort``) keep click's handling either way.
    """

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            click.echo(f"Error: {scrub_text(one_line(exc))}", err=True)
            ctx.exit(exit_code_for(exc))


def _emit(data: object, as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text)


# ================================================================= manifest


@click.group(name="manifest", cls=StandaloneGroup)
def manifest() -> None:
    """Author, sign and verify remote manifests (publisher side)."""


@manifest.command("keygen")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private key file (created 0600).")
@click.option("--json", "as_json", is_flag=True, help="Print the public part as JSON.")
def keygen(out: Path, as_json: bool) -> None:
    """Create an Ed25519 signing key; print its keyid and public key for trusted_keys."""
    from nacl.signing import SigningKey

    from ._envelope import b64encode
    from ._verify import keyid_of

    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite a key - choose another path")
    key = SigningKey.generate()
    public = bytes(key.verify_key)
    doc = {"keyid": keyid_of(public), "public_key": b64encode(public),
           "private_key": b64encode(bytes(key))}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=1)
    public_doc = {"keyid": doc["keyid"], "public_key": doc["public_key"],
                  "private_key_file": str(out)}
    _emit(public_doc, as_json,
          f'trusted_keys = [{{ keyid = "{doc["keyid"]}", public_key = "{doc["public_key"]}" }}]')


def _load_key_file(path: Path, *, private: bool) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"{path} is not a key file written by 'oneiric manifest keygen'")
    needed = {"keyid", "public_key"} | ({"private_key"} if private else set())
    if not isinstance(doc, dict) or not needed <= set(doc):
        raise ConfigError(f"{path} lacks {', '.join(sorted(needed))}; use a keygen key file")
    return doc


def _yaml_load(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"{path}: YAML manifests need PyYAML; pip install 'oneiric-remote[yaml]' or use JSON"
        ) from None

    class Strict(yaml.SafeLoader):
        """SafeLoader refusing duplicate keys."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in result:
                raise ManifestFormatError(f"{path}: duplicate key {key!r}; keep one")
            result[key] = loader.construct_object(value_node, deep=deep)
        return result

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Strict)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ManifestFormatError(
            f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}; fix the file"
        ) from None


def _timestamps(value: Any) -> Any:
    from ._models import manifest_timestamp

    if isinstance(value, datetime):
        return manifest_timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return manifest_timestamp(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, dict):
        return {k: _timestamps(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_timestamps(v) for v in value]
    return value


def _artifact_from_file(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
            size += len(chunk)
    kind = "wheel" if path.suffix == ".whl" else "zip"
    return {"sha256": digest.hexdigest(), "size": size, "kind": kind}


def author_payload(path: Path, *, expires_in_days: float, now: datetime | None = None
                   ) -> dict[str, Any]:
    """Turn an authoring file (YAML or JSON) into a payload ready to sign.

    Conveniences: ``_type`` and ``spec_version`` default; ``issued_at`` defaults to
    now and ``expires`` to now + ``expires_in_days``; an artifact with ``path:``
    (relative to the file) gets ``sha256``, ``size`` and ``kind`` computed.
    """
    from ._canonical import parse_strict
    from ._models import manifest_timestamp, parse_manifest

    text = path.read_text(encoding="utf-8")
    raw = (parse_strict(text.encode(), what=str(path)) if path.suffix == ".json"
           else _yaml_load(text, path))
    if not isinstance(raw, dict):
        raise ManifestFormatError(f"{path}: expected a mapping at the top level")
    doc: dict[str, Any] = _timestamps(raw)
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    doc.setdefault("_type", "oneiric.manifest")
    doc.setdefault("spec_version", "1.0")
    doc.setdefault("issued_at", manifest_timestamp(moment))
    doc.setdefault("expires", manifest_timestamp(moment + timedelta(days=expires_in_days)))
    for artifact_id, spec in dict(doc.get("artifacts") or {}).items():
        if isinstance(spec, dict) and "path" in spec:
            file = Path(spec.pop("path"))
            if not file.is_absolute():
                file = path.parent / file
            computed = _artifact_from_file(file)
            for name, value in computed.items():
                spec.setdefault(name, value)
            doc["artifacts"][artifact_id] = spec
    parse_manifest(doc)  # refuse to sign what a client would refuse
    return doc


@manifest.command("sign")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "keys", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Private key file from keygen; repeat to sign with several keys.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Envelope file (default: SOURCE with .json, next to it).")
@click.option("--expires-in", "expires_in", type=float, default=7.0, show_default=True,
              help="Days until expiry when the manifest sets no 'expires'.")
@click.option("--json", "as_json", is_flag=True)
def sign(source: Path, keys: tuple[Path, ...], out: Path | None, expires_in: float,
         as_json: bool) -> None:
    """Sign a YAML (or JSON) manifest: canonical JSON payload in a DSSE envelope."""
    from ._envelope import b64decode_strict
    from ._verify import sign_payload

    payload = author_payload(source, expires_in_days=expires_in)
    seeds = [b64decode_strict(_load_key_file(k, private=True)["private_key"]) for k in keys]
    envelope = sign_payload(payload, seeds)
    target = out or source.with_name(source.stem + ".signed.json")
    target.write_bytes(envelope)
    info = {"out": str(target), "repository": payload["repository"],
            "version": payload["version"], "expires": payload["expires"],
            "signatures": len(seeds), "bytes": len(envelope)}
    _emit(info, as_json, f"signed {payload['repository']} version {payload['version']} "
                         f"with {len(seeds)} key(s) -> {target}")


def _trusted(values: tuple[str, ...]) -> list[TrustedKey]:
    from ._verify import TrustedKey

    keys = []
    for value in values:
        if "=" in value and not Path(value).exists():
            keyid, _, public = value.partition("=")
            keys.append(TrustedKey(keyid, public))
        else:
            doc = _load_key_file(Path(value), private=False)
            keys.append(TrustedKey(doc["keyid"], doc["public_key"]))
    return keys


@manifest.command("verify")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trusted-key", "trusted", multiple=True, required=True,
              help="A key file, or KEYID=PUBLIC_KEY; repeat for several.")
@click.option("--threshold", type=int, default=1, show_default=True)
@click.option("--repository", default=None, help="Also require this repository.")
@click.option("--json", "as_json", is_flag=True)
def verify(envelope: Path, trusted: tuple[str, ...], threshold: int, repository: str | None,
           as_json: bool) -> None:
    """Verify an envelope: signatures, canonical form, schema, repository, time."""
    from ._errors import WrongRepositoryError
    from ._models import check_time, parse_manifest
    from ._verify import Ed25519Verifier

    verified = Ed25519Verifier(_trusted(trusted), threshold).verify(envelope.read_bytes())
    parsed = parse_manifest(verified.data)
    if repository is not None and parsed.repository != repository:
        raise WrongRepositoryError(
            f"{envelope} is for repository {parsed.repository!r}, expected {repository!r}"
        )
    check_time(parsed, datetime.now(UTC), max_lifetime_days=3650)
    info = {"repository": parsed.repository, "version": parsed.version,
            "expires": parsed.expires, "signers": list(verified.signers),
            "components": len(parsed.components), "artifacts": len(parsed.artifacts),
            "digest": verified.digest}
    _emit(info, as_json, f"ok: {parsed.repository} version {parsed.version}, "
                         f"{len(verified.signers)} trusted signature(s), expires {parsed.expires}")


@manifest.command("pack")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url-prefix", required=True, help="https URL the files will be served under.")
@click.option("--json", "as_json", is_flag=True)
def pack(files: tuple[Path, ...], url_prefix: str, as_json: bool) -> None:
    """Print artifact entries (sha256, size, kind, urls) to paste under 'artifacts:'."""
    if not url_prefix.startswith("https://"):
        raise click.UsageError("--url-prefix must be an https URL")
    entries: dict[str, Any] = {}
    for file in files:
        spec = _artifact_from_file(file)
        spec["urls"] = [url_prefix.rstrip("/") + "/" + file.name]
        ident = file.name.split("-")[0].lower().replace("_", "-")
        entries[ident] = spec
    if as_json:
        _emit({"artifacts": entries}, True, "")
        return
    lines = ["artifacts:"]
    for ident, spec in entries.items():
        lines += [f"  {ident}:", f"    kind: {spec['kind']}", f"    sha256: {spec['sha256']}",
                  f"    size: {spec['size']}", "    urls:"]
        lines += [f"      - {u}" for u in spec["urls"]]
    click.echo("\n".join(lines))


# =================================================================== remote


def _sources(config: Path | None, only: str | None) -> dict[str, RemoteSource]:
    from oneiric.core import load_settings

    from ._sources import sources_from_settings

    settings = load_settings(config)
    sources = sources_from_settings(settings.remote, settings.config_dir)
    if only is not None:
        if only not in sources:
            missing = ConfigError(
                f"no remote source {only!r}; configured: {', '.join(sorted(sources)) or 'none'}"
                "; pass one of those to --source"
            )
            missing.category = "not_found"  # a name that does not exist, not a bad file
            raise missing
        return {only: sources[only]}
    if not sources:
        raise ConfigError(
            "no [remote.sources.<name>] in the settings; add one (see docs/remote.md)"
        )
    return sources


_config_option = click.option(
    "--config", "config", type=click.Path(path_type=Path), default=None,
    help="Config directory (default: ONEIRIC_CONFIG or ./settings).")


@click.group(name="remote", cls=StandaloneGroup)
def remote() -> None:
    """Sync signed remote manifests into the cache, show their status, bundle them."""


@remote.command("sync")
@_config_option
@click.option("--source", "only", default=None, help="Sync only this [remote.sources] entry.")
@click.option("--watch", "watch", type=float, default=None, metavar="SECONDS",
              help="Keep syncing every SECONDS until interrupted.")
@click.option("--json", "as_json", is_flag=True)
def sync_cmd(config: Path | None, only: str | None, watch: float | None, as_json: bool) -> None:
    """Fetch, verify and install every configured source (exit 4/5/6 on failure)."""
    ctx_config = config or _ctx_config()
    sources = _sources(ctx_config, only)
    worst = asyncio.run(_sync_all(sources, as_json))
    while watch is not None:
        asyncio.run(asyncio.sleep(watch))
        worst = asyncio.run(_sync_all(sources, as_json))
    if worst:
        sys.exit(worst)


def _ctx_config() -> Path | None:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(dict) if ctx is not None else None
    value = (obj or {}).get("config_dir") or (obj or {}).get("config")
    return Path(value) if value else None


async def _sync_all(sources: dict[str, RemoteSource], as_json: bool) -> int:
    from oneiric.core import Resolver

    from ._sync import RemoteSync

    worst = 0
    rows: list[dict[str, object]] = []
    for name, source in sources.items():
        runner = RemoteSync(Resolver(), source)
        try:
            result = await runner.sync()
        except RemoteError as exc:
            code = exit_code_for(exc)
            worst = max(worst, code)
            rows.append({"source": name, "ok": False, "error": str(exc),
                         "error_type": type(exc).__name__, "exit_code": code})
            if not as_json:
                click.echo(f"Error: {name}: {exc}", err=True)
            continue
        rows.append(
            {"source": name, "ok": True, "repository": source.repository, **result.as_dict()}
        )
        if not as_json:
            state = ("unchanged" if result.unchanged else "installed") + (
                " (offline: last-good cache)" if result.offline else "")
            extra = "; restart required" if result.restart_required else ""
            click.echo(f"{name}: {source.repository} version {result.version} {state}, "
                       f"{result.registered} component(s) registered{extra}")
            for line in result.unavailable:
                click.echo(f"  unavailable: {line}")
    if as_json:
        click.echo(json.dumps({"sources": rows}, indent=2, sort_keys=True))
    return worst


@remote.command("status")
@_config_option
@click.option("--source", "only", default=None)
@click.option("--watch", "watch", type=float, default=None, metavar="SECONDS",
              help="Print again every SECONDS until interrupted.")
@click.option("--json", "as_json", is_flag=True)
def status_cmd(config: Path | None, only: str | None, watch: float | None, as_json: bool) -> None:
    """Show each source's last attempt, last success, version, counts and last error."""
    import time

    from ._status import read_status

    sources = _sources(config or _ctx_config(), only)
    while True:
        rows: list[dict[str, Any]] = []
        for name, source in sources.items():
            found = [s for s in read_status(source.resolved_cache_dir())
                     if s.get("fingerprint") == source.fingerprint]
            row: dict[str, Any] = {"source": name, "repository": source.repository,
                                   "status": found[0] if found else None}
            rows.append(row)
        if as_json:
            click.echo(json.dumps({"sources": rows}, indent=2, sort_keys=True))
        else:
            for row in rows:
                st = row["status"]
                if st is None:
                    click.echo(f"{row['source']}: {row['repository']} never synced")
                    continue
                click.echo(
                    f"{row['source']}: {row['repository']} version {st.get('version')} "
                    f"last success {st.get('last_success') or 'never'}, last attempt "
                    f"{st.get('last_attempt')}, {st.get('counts', {}).get('registered', 0)} "
                    f"component(s), breaker {st.get('breaker')}"
                    + (f", last error: {st['last_error']}" if st.get("last_error") else "")
                )
        if watch is None:
            return
        time.sleep(watch)


@remote.command("bundle")
@click.argument("out", type=click.Path(path_type=Path))
@_config_option
@click.option("--source", "only", default=None, help="Bundle only this [remote.sources] entry.")
@click.option("--json", "as_json", is_flag=True)
def bundle_cmd(out: Path, config: Path | None, only: str | None, as_json: bool) -> None:
    """Copy each source's verified last-good envelope and artifacts into directory OUT.

    For read-only deployments (the serverless profile): point [remote] bundle or
    ONEIRIC_REMOTE_BUNDLE at OUT.  Written atomically; an existing OUT is replaced
    only when it is an earlier bundle or empty (anything else is refused, exit 6);
    a never-synced source exits 3, a cache failing verification 4 (or 6).
    """
    from ._bundle import write_bundle

    sources = _sources(config or _ctx_config(), only)
    index = asyncio.run(write_bundle(sources, out))
    rows = [{"source": name, "repository": entry.repository, "version": entry.version,
             "artifacts": len(entry.artifacts)} for name, entry in sorted(index.sources.items())]
    doc = {"out": str(out), "files": len(index.files), "sources": rows}
    lines = [f"{row['source']}: {row['repository']} version {row['version']}, "
             f"{row['artifacts']} artifact(s)" for row in rows]
    _emit(doc, as_json, "\n".join([*lines, f"bundle written to {out} ({len(index.files)} files)"]))
