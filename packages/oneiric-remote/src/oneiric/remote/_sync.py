"""``RemoteSync``: fetch, verify, stage, commit - and nothing changes unless all of it works.

One sync, under the cache dir's lock:

1. fetch the envelope from the source URL, then each mirror in order, until one
   passes every check: size cap, signatures, canonical payload, schema,
   repository, time, version/state (a verification failure moves on to the
   next mirror; it is never retried);
2. same version and digest as the active one: download nothing, change no
   state, (re-)register the last-good components into *this* resolver;
3. otherwise check URL policy, scope (never domain ``control``; ``allowed_keys``,
   ``max_priority``, what metadata references against ``allowed_actions``) and
   factory allowlist, persist the new
   highest version (rollback floor), stage every artifact (blob, then vendor
   dir), check shadowing and factories against what the artifacts ship, then
   persist the active version and swap the candidates in one resolver batch and
   the vendor dirs on ``sys.path``.

A sync never imports a factory.  When every URL is unreachable and this
resolver has nothing from the repository yet (a cold start), the last-good
envelope is re-verified (signatures, expiry) and its cached artifacts re-hashed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from oneiric.core import Candidate, Resolver, get_logger
from oneiric.core.helpers import format_timestamp, one_line, utc_now
from oneiric.core.telemetry import span

from . import _veto
from ._activate import activate_paths, needs_restart
from ._archive import ArchiveInfo
from ._authentic import verify_manifest
from ._candidates import build_candidates, install_candidates, registered_versions
from ._config import RemoteSource
from ._envelope import MAX_MANIFEST_BYTES
from ._errors import (
    DownloadTooLargeError,
    FetchError,
    RemoteError,
    StateError,
)
from ._fetch import (
    CircuitBreaker,
    Downloader,
    HttpsFetcher,
    MemorySink,
    pick_error,
    plugin_fetchers,
)
from ._install import Installer, Staged
from ._policy import check_factories, check_policy
from ._retention import prune
from ._shadowing import check_shadowing
from ._state import HISTORY, State, StateStore, check_version, last_good_text
from ._status import StatusFile, read_status
from ._verify import Ed25519Verifier, ManifestVerifier, VerifiedPayload

if TYPE_CHECKING:
    import pluggy

    from ._models import Manifest

__all__ = ["RemoteSync", "SyncResult", "read_status"]

_log = get_logger("oneiric.remote.sync")


@dataclass(frozen=True)
class SyncResult:
    """What a sync did.

    ``registered`` counts candidates written into the resolver by this call (0 when
    it already had exactly this version); ``unchanged`` is True when the version
    was already the active one; ``restart_required`` when a package of the new
    version is already imported from an older one (new code takes effect at the
    next start).  ``offline`` marks a cold start served from the last-good cache;
    ``unavailable`` lists ``domain/key/provider: reason`` of vetoed components.
    """

    version: int | None
    registered: int
    unchanged: bool
    restart_required: bool
    offline: bool = False
    unavailable: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, int | bool | list[str] | None]:
        data = asdict(self)
        data["unavailable"] = list(self.unavailable)
        return data


class RemoteSync:
    """Keeps ``resolver`` in sync with one ``RemoteSource``.

    ``clock`` (monotonic seconds: deadlines, breaker), ``now`` (wall time: expiry),
    ``sleep`` (backoff) and ``rng`` (jitter) are injectable so that tests and
    simulations never wait in real time.  ``verifier`` defaults to the Ed25519
    threshold verifier over the source's trusted keys.
    """

    def __init__(
        self,
        resolver: Resolver,
        source: RemoteSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        verifier: ManifestVerifier | None = None,
        hooks: pluggy.PluginManager | None = None,
    ) -> None:
        self.resolver = resolver
        self.source = source
        self.clock = clock
        self.now = now or utc_now
        self.sleep = sleep
        self.verifier: ManifestVerifier = verifier or Ed25519Verifier(
            source.trusted_keys, source.threshold
        )
        self.hooks = hooks or resolver.hooks
        _veto.ensure_registered(self.hooks)
        self.breaker = CircuitBreaker(
            source.retry.breaker_threshold, source.retry.breaker_cooldown, clock
        )
        self.downloader = Downloader(
            https=HttpsFetcher(
                verify=source.ssl_context(),
                timeouts=source.timeouts,
                max_redirects=source.limits.max_redirects,
            ),
            retry=source.retry,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )
        self._verified: dict[str, ArchiveInfo] = {}
        self._status = StatusFile(source)
        self._active_count = 0

    # ------------------------------------------------------------ public

    async def sync(self) -> SyncResult:
        """Run one sync; raises a ``RemoteError`` (nothing changed) or returns what it did.

        Hostile input is classified into the documented ``RemoteError`` subclasses;
        anything else that escapes (a bug, or input nobody classified yet) is wrapped
        in a plain ``RemoteError`` - recorded in status like any failure - so callers
        and ``watch()`` only ever see the documented types.
        """
        cache = self.source.resolved_cache_dir()
        status = self._status.load(cache)
        started = self.clock()
        # Asked each cycle: plugins may be loaded after this RemoteSync was built.
        self.downloader.plugins = plugin_fetchers(self.hooks)
        status.last_attempt = format_timestamp(self.now())
        try:
            with span("oneiric.remote.sync", repository=self.source.repository):
                result = await self._sync(cache)
        except Exception as raw:
            exc = raw if isinstance(raw, RemoteError) else self._unexpected(raw)
            status.last_error = str(exc)
            status.last_error_type = type(exc).__name__
            status.breaker = self.breaker.state
            status.durations["last_sync_s"] = round(self.clock() - started, 6)
            self._status.save(cache, status)
            _log.warning("remote sync failed", repository=self.source.repository, error=str(exc))
            if exc is raw:
                raise
            raise exc from raw
        status.durations["last_sync_s"] = round(self.clock() - started, 6)
        status.version = result.version
        status.offline = result.offline
        status.restart_required = result.restart_required or status.restart_required
        status.unavailable = list(result.unavailable)
        status.breaker = self.breaker.state
        status.counts = {
            "registered": self._active_count,
            "unavailable": len(result.unavailable),
            "last_registered": result.registered,
        }
        if not result.offline:
            status.last_success = status.last_attempt
            status.last_error = None
            status.last_error_type = None
        self._status.save(cache, status)
        return result

    async def watch(self, interval: float, *, iterations: int | None = None) -> None:
        """Sync every ``interval`` seconds until cancelled (or ``iterations`` syncs).

        Failures are logged and recorded in status; the registered components keep
        serving.  Never raises a ``RemoteError`` - nor any other ``Exception``: one
        hostile cycle must not end the update loop for good.  Cancellation
        (``CancelledError``) and ``KeyboardInterrupt`` are never swallowed.
        """
        done = 0
        while iterations is None or done < iterations:
            try:
                await self.sync()
            except RemoteError:
                pass
            except Exception as exc:  # sync() wraps already; this is defence in depth
                error = self._unexpected(exc)
                self._status.record_error(error)
                _log.warning(
                    "remote sync failed", repository=self.source.repository, error=str(error)
                )
            done += 1
            if iterations is not None and done >= iterations:
                return
            await self.sleep(interval)

    def _unexpected(self, exc: BaseException) -> RemoteError:
        """A ``RemoteError`` for an exception no check classified (one line)."""
        text = one_line(exc)[:300]
        return RemoteError(
            f"sync of {self.source.repository!r} failed unexpectedly: {type(exc).__name__}"
            f"{': ' + text if text else ''}; nothing was changed - report this with the "
            "manifest that caused it"
        )

    def record_factory_error(self, candidate: Candidate, error: BaseException) -> None:
        """Record an activation-time ``FactoryError`` of one component in status."""
        cache = self.source.resolved_cache_dir()
        status = self._status.load(cache)
        status.factory_errors[f"{candidate.domain}/{candidate.key}/{candidate.provider}"] = str(
            error
        )
        self._status.save(cache, status)

    def resolver_candidates(self) -> list[Candidate]:
        """Candidates of this repository currently in the resolver."""
        origin = ("manifest", self.source.repository)
        found: list[Candidate] = []
        for domain in self.resolver.domains():
            for key in self.resolver.keys(domain):
                found.extend(
                    c for c in self.resolver.candidates(domain, key) if c.source.origin == origin
                )
        return found

    # ------------------------------------------------------------- core

    async def _sync(self, cache: Path) -> SyncResult:
        source = self.source
        store = self._store(cache)
        async with store.lock(source.timeouts.lock):
            state = store.load()
            installer = Installer(cache, source, self.downloader, self._verified)
            installer.clean_tmp()
            try:
                self.breaker.check(f"source {source.repository!r}")
                url, data, verified, manifest, same = await self._fetch_manifest(state)
            except FetchError as exc:
                if not isinstance(exc, DownloadTooLargeError) and not self._has_registered():
                    return await self._cold_start(state, installer, exc)
                raise
            if same:
                return await self._reregister(url, verified, manifest, installer)
            return await self._install_new(store, state, installer, url, data, verified, manifest)

    def _store(self, cache: Path) -> StateStore:
        return StateStore.of(self.source, cache)

    def _has_registered(self) -> bool:
        return self.source.repository in self._registered()

    def _registered(self) -> dict[str, tuple[int, str]]:
        """What syncs registered into this resolver: repository -> (version, digest)."""
        return registered_versions(self.resolver)

    async def _fetch_manifest(
        self, state: State
    ) -> tuple[str, bytes, VerifiedPayload, Manifest, bool]:
        errors: list[RemoteError] = []
        for url in self.source.urls:
            try:
                sink = await self.downloader.download(
                    url,
                    limit=min(self.source.limits.manifest_bytes, MAX_MANIFEST_BYTES),
                    deadline=self.source.timeouts.manifest_deadline,
                    sink=MemorySink,
                    too_large=DownloadTooLargeError,
                    what="manifest",
                )
                data = sink.data
                verified, manifest = self._verify(data, url)
                same = check_version(
                    state, manifest, verified.digest, min_version=self.source.min_version
                )
                return url, data, verified, manifest, same
            except RemoteError as exc:
                _log.warning("manifest source failed", url=url, error=str(exc))
                errors.append(exc)
        if all(isinstance(e, FetchError) for e in errors):
            self.breaker.failure()
        else:
            self.breaker.success()  # a server answered; verification failures are not outages
        raise pick_error(errors)

    def _verify(self, data: bytes, url: str) -> tuple[VerifiedPayload, Manifest]:
        verified, manifest = verify_manifest(
            data, url, source=self.source, verifier=self.verifier, now=self.now()
        )
        self.breaker.success()
        return verified, manifest

    def _swap(
        self, manifest: Manifest, digest: str, candidates: Sequence[Candidate],
        vendor_dirs: Sequence[Path],
    ) -> None:
        """Replace this repository's candidates in one batch and its vendor dirs on sys.path."""
        install_candidates(self.resolver, manifest, digest, candidates, vendor_dirs)
        self._active_count = len(candidates)

    async def _stage(
        self, manifest: Manifest, installer: Installer
    ) -> tuple[dict[str, ArchiveInfo], list[Staged]]:
        used = sorted({c.artifact for c in manifest.components if c.artifact is not None})
        infos: dict[str, ArchiveInfo] = {}
        for artifact_id in used:
            spec = manifest.artifacts[artifact_id]
            infos[artifact_id] = await installer.prepare(artifact_id, spec)
        check_shadowing(infos.items(), installer.cache_dir)
        check_factories(self.source, manifest, infos)
        staged = []
        for artifact_id in used:
            spec = manifest.artifacts[artifact_id]
            vendor = installer.extract(spec, infos[artifact_id])
            staged.append(Staged(artifact_id, spec.sha256, vendor, infos[artifact_id]))
        return infos, staged

    # --------------------------------------------------------- outcomes

    async def _reregister(
        self, url: str, verified: VerifiedPayload, manifest: Manifest, installer: Installer
    ) -> SyncResult:
        """Same version and bytes as the active one: no state change, register idempotently."""
        check_policy(self.source, manifest)
        infos, staged = await self._stage(manifest, installer)
        candidates, unavailable = build_candidates(manifest, url, infos)
        have = self._registered().get(manifest.repository)
        if have == (manifest.version, verified.digest):
            activate_paths(manifest.repository, [s.vendor for s in staged])
            self._active_count = len(candidates)
            return SyncResult(manifest.version, 0, True, False, unavailable=tuple(unavailable))
        self._swap(manifest, verified.digest, candidates, [s.vendor for s in staged])
        return SyncResult(
            manifest.version, len(candidates), True, False, unavailable=tuple(unavailable)
        )

    async def _install_new(
        self,
        store: StateStore,
        state: State,
        installer: Installer,
        url: str,
        data: bytes,
        verified: VerifiedPayload,
        manifest: Manifest,
    ) -> SyncResult:
        check_policy(self.source, manifest)
        if manifest.version > state.highest_version:
            state.highest_version = manifest.version
            state.highest_digest = verified.digest
            store.save(state)  # the floor rises as soon as an authentic manifest is seen
        infos, staged = await self._stage(manifest, installer)
        candidates, unavailable = build_candidates(manifest, url, infos)
        restart = needs_restart(staged, installer.cache_dir)
        state.active_version = manifest.version
        state.active_digest = verified.digest
        state.last_good = last_good_text(data)
        state.last_good_url = url
        state.history = [
            *(h for h in state.history if h.get("version") != manifest.version),
            {
                "version": manifest.version,
                "digest": verified.digest,
                "artifacts": sorted(s.sha256 for s in staged),
            },
        ][-HISTORY:]
        store.save(state)
        self._swap(manifest, verified.digest, candidates, [s.vendor for s in staged])
        removed = prune(installer.cache_dir, HISTORY)
        if removed:
            _log.info("pruned old artifacts", count=len(removed))
        _log.info(
            "remote sync installed",
            repository=manifest.repository,
            version=manifest.version,
            components=len(candidates),
            restart_required=restart,
        )
        return SyncResult(
            manifest.version, len(candidates), False, restart, unavailable=tuple(unavailable)
        )

    async def load_last_good(self) -> SyncResult | None:
        """Register the cached last-good manifest without the network (None: never synced).

        For processes that inspect rather than update (the CLI's ``list`` and
        ``explain``): the same checks as an offline cold start - signatures and
        expiry re-verified, cached artifacts re-hashed - and no status written.
        Raises a ``RemoteError`` (nothing registered) when the cache fails them.
        """
        source = self.source
        cache = source.resolved_cache_dir()
        store = self._store(cache)
        if not store.exists():
            return None
        async with store.lock(source.timeouts.lock):
            state = store.load()
            if state.last_good is None:
                return None
            installer = Installer(cache, source, self.downloader, self._verified)
            installer.clean_tmp()
            return await self._register_last_good(state, installer)

    async def _cold_start(
        self, state: State, installer: Installer, error: FetchError
    ) -> SyncResult:
        """Every URL is unreachable: serve the last-good manifest, re-verified, from the cache."""
        if state.last_good is None:
            raise error
        result = await self._register_last_good(state, installer)
        _log.warning(
            "remote source unreachable; serving last-good manifest from cache",
            repository=self.source.repository,
            version=result.version,
            error=str(error),
        )
        if self._status.current is not None:
            self._status.current.last_error = str(error)
            self._status.current.last_error_type = type(error).__name__
        return result

    async def _register_last_good(self, state: State, installer: Installer) -> SyncResult:
        """Re-verify the state file's last-good envelope and register it (offline)."""
        assert state.last_good is not None
        try:
            data = state.last_good.encode("ascii")
        except UnicodeEncodeError:
            raise StateError(
                "the last-good envelope in the state file is not ASCII; the cache dir was "
                "tampered with - delete the state file and resync (min_version keeps the floor)"
            ) from None
        url = state.last_good_url or self.source.url
        verified, manifest = self._verify(data, url)  # signatures and expiry again
        if verified.digest != state.active_digest or manifest.version != state.active_version:
            raise StateError(
                f"last-good manifest in the state file does not match the active version "
                f"{state.active_version}; the cache dir was tampered with - delete it and resync"
            )
        check_policy(self.source, manifest)
        infos, staged = await self._stage(manifest, installer)
        candidates, unavailable = build_candidates(manifest, url, infos)
        self._swap(manifest, verified.digest, candidates, [s.vendor for s in staged])
        return SyncResult(
            manifest.version, len(candidates), True, False, offline=True,
            unavailable=tuple(unavailable),
        )
