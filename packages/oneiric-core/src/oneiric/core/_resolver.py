"""The resolver: registered candidates in, one cached winner per (domain, key) out.

Design (see docs/architecture.md, "Caching and invalidation"):

* Writers serialize on one ``RLock`` and stage their changes per key
  (copy-on-write); the outermost write or ``batch()`` *publishes* them at once,
  bumps a generation counter and drops the cache entries of the changed keys.
* Readers take no lock.  ``resolve()`` of an unchanged key is two dict reads.
* A miss recomputes the key's ranking from an immutable snapshot (taken under a
  short fill lock), runs veto hooks and builds the explanation, then stores the
  result only if no write was published meanwhile (generation check), so a fill
  computed before a write is never stored after it.
* Tenants without a selection of their own read the global entry; a tenant with
  its own selection for a key gets one extra entry for that key, so caches are
  bounded by registrations plus configured selections.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._candidate import Candidate, validate_name
from ._errors import (
    ConfigError,
    InvalidCandidateError,
    NotRegisteredError,
    OneiricError,
    SelectionUnavailableError,
)
from ._explain import Explanation, RankedCandidate
from ._hookcall import call_hook
from ._hooks import ResolutionRequest
from ._logging import get_logger
from ._precedence import Outcome, order, parse_selection, parse_stack_order, rank
from ._telemetry import span

if TYPE_CHECKING:
    import pluggy

__all__ = ["NoEligibleProviderError", "Resolver"]

_log = get_logger("oneiric.core.resolver")

Identity = tuple[str, str, str, tuple[str, str]]
KeyRef = tuple[str, str]
Scope = tuple[str | None, str]  # (tenant or None, domain)
Callback = Callable[[frozenset[KeyRef]], Any]
_T = TypeVar("_T")


def _valid_tenant(tenant: object) -> bool:
    """Tenants are ids chosen by the application (``acme``, ``Customer-42``), so looser
    than provider names; but a line break or control character in one would split
    every log line and error that names it."""
    return (
        isinstance(tenant, str)
        and 0 < len(tenant) <= 128
        and tenant.isprintable()
        and not any(c.isspace() for c in tenant)
    )


class NoEligibleProviderError(NotRegisteredError):
    """Candidates exist for the key but every one is vetoed or lacks a required capability."""

    def __init__(
        self,
        domain: str,
        key: str,
        reasons: Iterable[tuple[str, str]],
        *,
        tenant: str | None = None,
        require: tuple[str, ...] = (),
    ) -> None:
        self.domain = domain
        self.key = key
        self.reasons = tuple(reasons)
        self.known_keys = ()
        detail = "; ".join(f"{p} {r}" for p, r in self.reasons) or "none"
        req = f" with {', '.join(require)}" if require else ""
        scope = f" for tenant {tenant!r}" if tenant else ""
        OneiricError.__init__(
            self,
            f"no eligible provider for {domain}/{key}{req}{scope}: {detail}; "
            "register a capable provider or relax the requirement/policy",
        )


class Resolver:
    """Registry of candidates with deterministic, explained resolution.

    Thread-safe.  ``stack_order`` overrides declared priorities per origin (see
    ``ONEIRIC_STACK_ORDER``); ``hooks`` is the pluggy manager whose
    ``oneiric_candidate_veto`` implementations are consulted (default: the
    process-wide one).
    """

    def __init__(
        self,
        *,
        stack_order: str | Mapping[str, int] | None = None,
        hooks: pluggy.PluginManager | None = None,
    ) -> None:
        self._stack_order = parse_stack_order(stack_order)
        self._hooks = hooks
        self._lock = threading.RLock()
        self._fill_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._gen = 0
        # Published state, changed only under the fill lock.  Candidates per key,
        # and each identity's registration sequence number kept apart: one
        # container fewer per registration keeps 100k-candidate registries off
        # the cyclic GC's back.
        self._store: dict[KeyRef, dict[Identity, Candidate]] = {}
        self._seq_of: dict[Identity, int] = {}
        self._domain_keys: dict[str, set[str]] = {}
        self._selections: dict[Scope, dict[str, str]] = {}
        self._tenant_scopes: dict[str, set[str]] = {}  # domain -> tenants with selections
        # caches
        self._winners: dict[str, dict[str, Candidate]] = {}
        self._entries: dict[KeyRef, Outcome] = {}
        self._tenant_entries: dict[tuple[str, str, str], Outcome] = {}
        # writer-only state
        self._depth = 0
        # pending deltas of a batch: identity -> candidate, or None for a removal
        self._staged: dict[KeyRef, dict[Identity, Candidate | None]] = {}
        self._staged_seq: dict[Identity, int] = {}
        self._staged_selections: dict[Scope, dict[str, str]] = {}
        self._origin_keys: dict[tuple[str, str], set[KeyRef]] = {}
        self._subscribers: list[Callback] = []
        # state other parts keep per resolver (plugins loaded, settings applied, ...)
        self._extensions: dict[str, Any] = {}
        # The hot path as a closure over the winners dict: no method binding,
        # no attribute lookups.  Shadows the documented method of the same name.
        self.resolve = self._make_resolve()  # type: ignore[method-assign]

    def _make_resolve(self) -> Callable[..., Candidate]:
        winners = self._winners
        slow = self._resolve_slow

        # Positional-or-keyword on purpose: CPython specializes calls to such
        # functions but not to ones with keyword-only parameters (measured: 1.7x
        # vs 1.3x a plain dict lookup).  The documented signature stays keyword-only.
        # ``require=None`` makes the fast-path test two identity checks; an explicit
        # empty ``require`` is equally valid and just takes the (correct) slow path.
        def resolve(
            domain: str,
            key: str,
            tenant: str | None = None,
            require: Iterable[str] | None = None,
        ) -> Candidate:
            if tenant is None and require is None:
                try:
                    return winners[domain][key]
                except KeyError:
                    pass
            return slow(domain, key, tenant, tuple(require) if require else ())

        resolve.__doc__ = Resolver.resolve.__doc__
        return resolve

    # ------------------------------------------------------------------ reads

    def resolve(
        self,
        domain: str,
        key: str,
        *,
        tenant: str | None = None,
        require: Iterable[str] = (),
    ) -> Candidate:
        """Return the winning candidate for ``(domain, key)``.

        Raises ``NotRegisteredError`` (no candidate), ``SelectionUnavailableError``
        (the selected provider cannot serve) or ``NoEligibleProviderError``.
        """
        if tenant is None and not require:
            try:
                return self._winners[domain][key]
            except KeyError:
                pass
        return self._resolve_slow(domain, key, tenant, tuple(require))

    def _resolve_slow(
        self, domain: str, key: str, tenant: str | None, require: tuple[str, ...]
    ) -> Candidate:
        entry = self._entry(domain, key, tenant)
        if not require:
            if entry.winner is None:
                assert entry.error is not None
                raise entry.error
            return entry.winner
        outcome = self._rank_with_require(entry, domain, key, tenant, require)
        if outcome.error is not None:
            raise outcome.error
        winner = outcome.explanation.selected
        assert winner is not None
        return winner

    def explain(
        self,
        domain: str,
        key: str,
        *,
        tenant: str | None = None,
        require: Iterable[str] = (),
    ) -> Explanation:
        """Explain the choice for ``(domain, key)``: winner, every loser and why.

        Raises like ``resolve`` when no candidate is registered or the explicit
        selection is unavailable (the error names the reason).
        """
        require = tuple(require)
        entry = self._entry(domain, key, tenant)
        if require:
            outcome = self._rank_with_require(entry, domain, key, tenant, require)
            if isinstance(outcome.error, SelectionUnavailableError):
                raise outcome.error
            return outcome.explanation
        if isinstance(entry.error, SelectionUnavailableError):
            raise entry.error
        explanation = entry.explanation
        if explanation.tenant != tenant:
            # a tenant without its own selection shares the global outcome
            return explanation.replace(tenant=tenant)
        return explanation

    def candidates(self, domain: str, key: str) -> tuple[Candidate, ...]:
        """All candidates of ``(domain, key)`` in precedence order, winner first; ``()`` if none."""
        if (domain, key) not in self._store:
            return ()
        try:
            entry = self._entry(domain, key, None)
        except NotRegisteredError:
            return ()
        return tuple(r.candidate for r in entry.explanation.ranking)

    def domains(self) -> tuple[str, ...]:
        """Domains with at least one registered candidate, sorted."""
        return tuple(sorted(d for d, keys in self._domain_keys.items() if keys))

    def keys(self, domain: str) -> tuple[str, ...]:
        """Keys of ``domain`` with at least one candidate, sorted."""
        return tuple(sorted(self._domain_keys.get(domain, ())))

    def active(self, domain: str | None = None) -> dict[KeyRef, Candidate]:
        """``{(domain, key): winner}`` for every key that currently resolves (global scope)."""
        result: dict[KeyRef, Candidate] = {}
        for d, k in self._iter_keys(domain):
            try:
                result[(d, k)] = self.resolve(d, k)
            except OneiricError:
                continue
        return result

    def shadowed(self, domain: str | None = None) -> tuple[RankedCandidate, ...]:
        """Every losing candidate (global scope) with the reason it lost."""
        result: list[RankedCandidate] = []
        for d, k in self._iter_keys(domain):
            try:
                entry = self._entry(d, k, None)
            except NotRegisteredError:
                continue
            result.extend(r for r in entry.explanation.ranking if not r.selected)
        return tuple(result)

    def selections(self, domain: str, *, tenant: str | None = None) -> dict[str, str]:
        """The explicit selections of ``domain`` in one scope (a copy)."""
        return dict(self._selections.get((tenant, domain), {}))

    @property
    def hooks(self) -> pluggy.PluginManager:
        """The plugin manager whose hooks this resolver (and its loaders) use."""
        if self._hooks is None:
            from ._hooks import get_plugin_manager

            self._hooks = get_plugin_manager()
        return self._hooks

    def extension(self, owner: str, factory: Callable[[], _T]) -> _T:
        """State that ``owner`` (a module or package name) keeps for this resolver.

        Created by ``factory()`` on first use and kept as long as the resolver:
        which plugins were loaded into it, which selections settings applied,
        which manifests a sync registered.  Held here rather than in module-level
        weak dictionaries keyed by resolver, so the state lives and dies with
        the resolver it describes and any package finds it the same way.
        """
        with self._lock:
            try:
                return cast("_T", self._extensions[owner])
            except KeyError:
                value = self._extensions[owner] = factory()
                return value

    @property
    def stack_order(self) -> dict[str, int]:
        """The operator's stack order in force (a copy)."""
        return dict(self._stack_order)

    def _iter_keys(self, domain: str | None) -> Iterator[KeyRef]:
        domains = [domain] if domain is not None else sorted(self._domain_keys)
        for d in domains:
            for k in sorted(self._domain_keys.get(d, ())):
                yield (d, k)

    # ------------------------------------------------------------------ fills

    def _entry(self, domain: str, key: str, tenant: str | None) -> Outcome:
        if tenant is not None:
            sel = self._selections.get((tenant, domain))
            if sel is None or key not in sel:
                tenant = None  # no selection of its own: share the global entry
            else:
                entry = self._tenant_entries.get((tenant, domain, key))
                if entry is not None:
                    return entry
                return self._fill(domain, key, tenant)
        entry = self._entries.get((domain, key))
        if entry is not None:
            return entry
        return self._fill(domain, key, None)

    def _fill(self, domain: str, key: str, tenant: str | None) -> Outcome:
        with self._fill_lock:
            gen = self._gen
            current = self._store.get((domain, key))
            seq_of = self._seq_of
            regs = tuple((c, seq_of[i]) for i, c in current.items()) if current else ()
            selection = self._selections.get((tenant, domain), {}).get(key)
        if not regs:
            raise NotRegisteredError(domain, key, self._domain_keys.get(domain, ()))
        with span("oneiric.explain", domain=domain, key=key, tenant=tenant):
            rows = order(regs, self._stack_order)
            vetoes = self._vetoes(rows, domain, key, tenant)
            outcome = rank(
                domain,
                key,
                rows,
                selection=selection,
                selection_scope=tenant,
                vetoes=vetoes,
                tenant=tenant,
                require=(),
                error_factory=self._error_factory(domain, key, tenant, (), rows),
            )
        with self._fill_lock:
            if self._gen == gen:
                if tenant is None:
                    self._entries[(domain, key)] = outcome
                    if outcome.winner is not None:
                        winners = self._winners.get(domain)
                        if winners is None:
                            winners = self._winners[domain] = {}
                        winners[key] = outcome.winner
                else:
                    self._tenant_entries[(tenant, domain, key)] = outcome
        return outcome

    def _rank_with_require(
        self,
        entry: Outcome,
        domain: str,
        key: str,
        tenant: str | None,
        require: tuple[str, ...],
    ) -> Outcome:
        """Re-rank a cached entry with required capabilities (no per-require cache)."""
        rows = entry.rows
        vetoes = entry.vetoes
        scope_tenant = entry.explanation.tenant
        selection = self._selections.get((scope_tenant, domain), {}).get(key)
        return rank(
            domain,
            key,
            rows,
            selection=selection,
            selection_scope=scope_tenant,
            vetoes=vetoes,
            tenant=tenant,
            require=require,
            error_factory=self._error_factory(domain, key, tenant, require, rows),
        )

    def _error_factory(
        self,
        domain: str,
        key: str,
        tenant: str | None,
        require: tuple[str, ...],
        rows: Sequence[tuple[Candidate, int, int, str]],
    ) -> Callable[..., Exception]:
        def make(kind: str, **details: Any) -> Exception:
            if kind == "selection":
                return SelectionUnavailableError(
                    domain,
                    key,
                    details["provider"],
                    details["reason"],
                    [r[0].provider for r in rows],
                    tenant=tenant,
                )
            return NoEligibleProviderError(
                domain, key, details["reasons"], tenant=tenant, require=require
            )

        return make

    def _vetoes(
        self,
        rows: list[tuple[Candidate, int, int, str]],
        domain: str,
        key: str,
        tenant: str | None,
    ) -> dict[int, str]:
        hooks = self.hooks
        if not hooks.hook.oneiric_candidate_veto.get_hookimpls():
            return {}
        request = ResolutionRequest(domain, key, tenant, ())
        vetoes: dict[int, str] = {}
        for candidate, seq, _, _ in rows:
            for result in call_hook(
                hooks, "oneiric_candidate_veto", candidate=candidate, request=request
            ):
                reason = result.value
                if result.error is not None:  # fail closed: a broken policy must not let through
                    error = result.error
                    reason = f"veto hook raised {type(error).__name__}: {error}"
                    _log.error(
                        "veto hook failed",
                        plugin=result.plugin,
                        candidate=candidate.qualified_provider,
                        error=str(error),
                    )
                elif reason is not None and not isinstance(reason, str):
                    reason = f"veto hook returned {type(reason).__name__}, not a reason string"
                if reason:
                    vetoes[seq] = f"by {result.distribution}: {reason}"
                    break
        return vetoes

    # ----------------------------------------------------------------- writes

    def register(self, candidate: Candidate) -> None:
        """Add ``candidate``, replacing any candidate with the same identity.

        A replacement counts as a new registration (it becomes the most recent
        for rule 4).
        """
        if type(candidate) is not Candidate and not isinstance(candidate, Candidate):
            raise InvalidCandidateError(
                f"register() expects a Candidate, got {type(candidate).__name__}"
            )
        identity = candidate._identity
        ref = (identity[0], identity[1])
        with self._lock:
            refs = self._origin_keys.get(identity[3])
            if refs is None:
                refs = self._origin_keys[identity[3]] = set()
            refs.add(ref)
            seq = next(self._seq)
            if self._depth:
                delta = self._staged.get(ref)
                if delta is None:
                    delta = self._staged[ref] = {}
                delta[identity] = candidate
                published = self._store.get(ref)
                if published is not None and identity in published:
                    self._staged_seq[identity] = seq  # a replacement: publish with it
                else:
                    # Unpublished identity: fills never look it up before publish,
                    # so its number can go in place now (undone if the batch fails).
                    self._seq_of[identity] = seq
                return
            # not in a batch: publish this one write directly (the common hot path)
            with self._fill_lock:
                regs = self._store.get(ref)
                if regs is None:  # a new key: nothing can be cached for it yet
                    self._store[ref] = {identity: candidate}
                    self._seq_of[identity] = seq
                    keys = self._domain_keys.get(ref[0])
                    if keys is None:
                        keys = self._domain_keys[ref[0]] = set()
                    keys.add(ref[1])
                    self._gen += 1
                else:
                    regs.pop(identity, None)
                    regs[identity] = candidate
                    self._seq_of[identity] = seq
                    self._invalidate_key(ref)
            if not self._subscribers:
                return
        self._notify(frozenset((ref,)))

    def _current(self, ref: KeyRef) -> dict[Identity, Candidate]:
        """The candidates of ``ref`` as this writer sees them (store + staged delta)."""
        current = dict(self._store.get(ref, {}))
        for identity, candidate in self._staged.get(ref, {}).items():
            if candidate is None:
                current.pop(identity, None)
            else:
                current[identity] = candidate
        return current

    def unregister(
        self, domain: str, key: str, provider: str, origin: tuple[str, str]
    ) -> bool:
        """Remove one candidate by identity; return whether it existed."""
        identity = (domain, key, provider, tuple(origin))
        ref = (domain, key)
        with self._lock:
            if identity not in self._current(ref):
                return False
            self._staged.setdefault(ref, {})[identity] = None
            if self._depth:
                return True
            changes = self._publish()
        self._notify(changes)
        return True

    def unregister_source(self, origin: tuple[str, str]) -> int:
        """Remove every candidate whose ``source.origin`` is ``origin``; return how many."""
        origin = tuple(origin)  # type: ignore[assignment]
        removed = 0
        with self._lock:
            for ref in sorted(self._origin_keys.pop(origin, set())):
                doomed = [i for i in self._current(ref) if i[3] == origin]
                if doomed:
                    delta = self._staged.setdefault(ref, {})
                    for identity in doomed:
                        delta[identity] = None
                    removed += len(doomed)
            if self._depth or not removed:
                return removed
            changes = self._publish()
        self._notify(changes)
        return removed

    def set_selections(
        self, domain: str, selections: Mapping[str, str], *, tenant: str | None = None
    ) -> None:
        """Replace the explicit selections of ``domain`` for one scope (global or a tenant).

        Unknown providers are accepted (their plugin may load later); resolving
        such a key raises ``SelectionUnavailableError`` until it is registered.
        """
        validate_name(domain, "domain")
        new: dict[str, str] = {}
        for key, value in selections.items():
            validate_name(key, "key")
            if not isinstance(value, str):
                raise ConfigError(
                    f"invalid selection for {domain}/{key}: expected a provider name, "
                    f"got {type(value).__name__}"
                )
            provider, _origin = parse_selection(value)
            try:
                validate_name(provider, "provider")
            except ValueError as exc:
                raise ConfigError(f"invalid selection for {domain}/{key}: {exc}") from None
            new[key] = value
        if tenant is not None and not _valid_tenant(tenant):
            raise ConfigError(
                f"invalid tenant {tenant!r}: use 1-128 printable characters without spaces"
            )
        with self._lock:
            self._staged_selections[(tenant, domain)] = new
            if self._depth:
                return
            changes = self._publish()
        self._notify(changes)

    def invalidate(self) -> None:
        """Drop every cached winner (e.g. after a veto plugin's policy changed).

        Subscribers are told that every key may have changed.
        """
        with self._lock, self._fill_lock:
            self._gen += 1
            self._winners.clear()
            self._entries.clear()
            self._tenant_entries.clear()
            changes = frozenset(self._iter_keys(None))
        self._notify(changes)

    @contextmanager
    def batch(self) -> Iterator[Resolver]:
        """Group writes: one publish and one notification at the end.

        Other threads keep reading the state from before the batch until it
        ends.  If the block raises, none of its writes are applied.
        """
        changes: frozenset[KeyRef] = frozenset()
        with self._lock:
            outer = self._depth == 0
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._discard_staged()
                raise
            self._depth -= 1
            if outer:
                changes = self._publish()
        if changes:
            self._notify(changes)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(changes)`` after each publish; return an unsubscribe function.

        ``changes`` is a frozenset of ``(domain, key)`` whose winner may have
        changed.  Called synchronously on the writer's thread; exceptions are
        logged, never raised into the writer.
        """
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    # ---------------------------------------------------------------- publish

    def _discard_staged(self) -> None:
        """Undo a failed batch: drop its deltas and the numbers of unpublished identities."""
        for ref, delta in self._staged.items():
            published = self._store.get(ref, {})
            for identity in delta:
                if identity not in published:
                    self._seq_of.pop(identity, None)
        self._staged.clear()
        self._staged_seq.clear()
        self._staged_selections.clear()
        self._rebuild_origin_index()

    def _rebuild_origin_index(self) -> None:
        index: dict[tuple[str, str], set[KeyRef]] = {}
        for ref, regs in self._store.items():
            for identity in regs:
                index.setdefault(identity[3], set()).add(ref)
        self._origin_keys = index

    def _invalidate_key(self, ref: KeyRef) -> None:
        """Drop the cached outcomes of one key and bump the generation (fill lock held)."""
        self._gen += 1
        domain, key = ref
        winners = self._winners.get(domain)
        if winners is not None:
            winners.pop(key, None)
        self._entries.pop(ref, None)
        for tenant in self._tenant_scopes.get(domain, ()):
            self._tenant_entries.pop((tenant, domain, key), None)

    def _publish(self) -> frozenset[KeyRef]:
        """Make staged writes visible at once; return the keys that may have changed."""
        staged, self._staged = self._staged, {}
        staged_seq, self._staged_seq = self._staged_seq, {}
        staged_sel, self._staged_selections = self._staged_selections, {}
        changed: set[KeyRef] = set(staged)
        fresh: set[KeyRef] = set()
        seq_of = self._seq_of
        with self._fill_lock:
            for ref, delta in staged.items():
                domain, key = ref
                regs = self._store.get(ref)
                if regs is None:
                    # a new key: the delta becomes the published dict (no copy), and
                    # nothing can be cached for it, so there is nothing to invalidate
                    for staged_candidate in delta.values():
                        if staged_candidate is None:  # registered, then removed in the batch
                            regs = {i: c for i, c in delta.items() if c is not None}
                            for i, c in delta.items():
                                if c is None:
                                    seq_of.pop(i, None)
                            break
                    else:
                        regs = cast("dict[Identity, Candidate]", delta)
                    self._store[ref] = regs  # numbers were set when staged
                    fresh.add(ref)
                else:
                    for identity, candidate in delta.items():
                        regs.pop(identity, None)
                        if candidate is None:
                            seq_of.pop(identity, None)
                        else:
                            regs[identity] = candidate
                            if identity in staged_seq:
                                seq_of[identity] = staged_seq[identity]
                keys = self._domain_keys.get(domain)
                if regs:
                    if keys is None:
                        keys = self._domain_keys[domain] = set()
                    keys.add(key)
                else:
                    del self._store[ref]
                    if keys is not None:
                        keys.discard(key)
            for scope, new in staged_sel.items():
                tenant, domain = scope
                old = self._selections.get(scope, {})
                diff = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                changed.update((domain, k) for k in diff)
                if new:
                    self._selections[scope] = new
                else:
                    self._selections.pop(scope, None)
                if tenant is not None:
                    tenants = self._tenant_scopes.setdefault(domain, set())
                    if new:
                        tenants.add(tenant)
                    else:
                        tenants.discard(tenant)
                    for k in diff:  # the tenant's own entries are stale
                        self._tenant_entries.pop((tenant, domain, k), None)
            self._gen += 1
            for ref in changed - fresh if fresh else changed:
                self._invalidate_key(ref)
        return frozenset(changed)

    def _notify(self, changes: frozenset[KeyRef]) -> None:
        if not changes:
            return
        for callback in self._subscribers:
            try:
                callback(changes)
            except Exception as exc:
                _log.error(
                    "resolver subscriber failed",
                    subscriber=getattr(callback, "__qualname__", repr(callback)),
                    error=f"{type(exc).__name__}: {exc}",
                )

    def __repr__(self) -> str:
        total = sum(len(v) for v in self._store.values())
        return f"<Resolver keys={len(self._store)} candidates={total}>"
