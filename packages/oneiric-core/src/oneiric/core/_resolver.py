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
from contextlib import AbstractContextManager
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
from ._hooks import ResolutionRequest
from ._listing import ActiveLayers, ActiveView, KeyIndex
from ._logging import get_logger
from ._precedence import (
    DEFAULT_PRIORITIES,
    Outcome,
    lean_winner,
    order,
    parse_selection,
    parse_stack_order,
    precedence_key,
    rank,
)
from ._telemetry import span
from ._vetoes import VetoPolicy

if TYPE_CHECKING:
    import pluggy

__all__ = ["NoEligibleProviderError", "Resolver"]

_log = get_logger("oneiric.core.resolver")

Identity = tuple[str, str, str, tuple[str, str]]
KeyRef = tuple[str, str]
Scope = tuple[str | None, str]  # (tenant or None, domain)
Callback = Callable[[frozenset[KeyRef]], Any]
_T = TypeVar("_T")

#: Requirements remembered per key (``resolve(..., require=...)``); more clears the key's.
_REQUIRE_CACHE = 16
#: A write rescans a key of at most this many candidates itself (see ``_settle``).
_SETTLE_SCAN = 32


def _requirement(require: Iterable[str] | None) -> tuple[str, ...]:
    """``require`` as a tuple of capability names; a bare string is one name."""
    if not require:
        return ()
    if type(require) is tuple:
        return require
    if isinstance(require, str):
        return (require,)
    return tuple(require)


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
        self._index_lock = threading.Lock()  # one refresher of the active index at a time
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
        # lean caches read by ``resolve`` without a lock: the keys some tenant
        # selects a provider for, by key, tenant and domain, each with its cached
        # winner (None until filled) - key first, so a tenant's read of a key no
        # tenant selects costs one lookup more than a global read; and the winners of
        # repeated ``require=`` requests (domain -> key -> requirement -> winner,
        # a few per key)
        self._tenant_own: dict[str, dict[str, dict[str, Candidate | None]]] = {}
        self._require_winners: dict[str, dict[str, dict[object, Candidate]]] = {}
        self._veto_policy = VetoPolicy()
        # listings, built on first use and patched by writes (see _listing.py)
        self._key_index = KeyIndex()
        self._active_index: dict[str, ActiveLayers] = {}
        self._active_pending: dict[str, set[KeyRef]] = {}
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
        self._batch = _Batch(self)
        # The hot path as a closure over the winners dict: no method binding,
        # no attribute lookups.  Shadows the documented method of the same name.
        self.resolve = self._make_resolve()  # type: ignore[method-assign]

    def _make_resolve(self) -> Callable[..., Candidate]:
        winners = self._winners
        tenant_own = self._tenant_own
        require_winners = self._require_winners
        slow = self._resolve_slow

        # Positional-or-keyword on purpose: CPython specializes calls to such
        # functions but not to ones with keyword-only parameters (measured: 1.7x
        # vs 1.3x a plain dict lookup).  The documented signature stays keyword-only.
        # ``require=None`` keeps the global read two identity checks; a tenant
        # without a selection of its own for the key reads the global winner, one
        # with its own reads its own cached winner; a repeated requirement reads
        # its cached winner (a tuple or any hashable requirement; a list takes
        # the slow path, which normalizes it and still answers from the cache).
        def resolve(
            domain: str,
            key: str,
            tenant: str | None = None,
            require: Iterable[str] | None = None,
        ) -> Candidate:
            try:
                if require is None:
                    if tenant is None:
                        return winners[domain][key]
                    if key not in tenant_own:
                        return winners[domain][key]
                    scoped = tenant_own[key].get(tenant)
                    if scoped is None or domain not in scoped:
                        return winners[domain][key]
                    winner = scoped[domain]
                    if winner is not None:
                        return winner
                elif tenant is None:
                    return require_winners[domain][key][require]
            except (KeyError, TypeError):
                pass
            return slow(domain, key, tenant, require)

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
        A bare string ``require`` is one capability, like ``Candidate(capabilities=)``.
        """
        if tenant is None and not require:
            try:
                return self._winners[domain][key]
            except KeyError:
                pass
        return self._resolve_slow(domain, key, tenant, require)

    def _resolve_slow(
        self, domain: str, key: str, tenant: str | None, require: Iterable[str] | None
    ) -> Candidate:
        required = _requirement(require)
        if required:
            return self._resolve_required(domain, key, tenant, required, require)
        scope = self._scope(domain, key, tenant)
        if scope is None:
            entry = self._entries.get((domain, key))
        else:
            entry = self._tenant_entries.get((scope, domain, key))
        if entry is None:
            return self._lean_fill(domain, key, scope)
        if entry.winner is None:
            assert entry.error is not None
            raise entry.error
        return entry.winner

    def _scope(self, domain: str, key: str, tenant: str | None) -> str | None:
        """``tenant`` if it has a selection of its own for the key, else None (global)."""
        if tenant is None:
            return None
        sel = self._selections.get((tenant, domain))
        return tenant if sel is not None and key in sel else None

    def _resolve_required(
        self,
        domain: str,
        key: str,
        tenant: str | None,
        required: tuple[str, ...],
        given: object,
    ) -> Candidate:
        """Rank with required capabilities; remember the winner of a repeated global request.

        At most ``_REQUIRE_CACHE`` requirements per key are remembered (the
        key's entries are dropped with it on every write), so the cache is
        bounded by the keys times a small constant however callers vary them.
        """
        if tenant is None:  # e.g. a list: unhashable for the fast path, same answer
            by_key = self._require_winners.get(domain)
            remembered = by_key.get(key) if by_key is not None else None
            if remembered is not None:
                known = remembered.get(required)
                if known is not None:
                    return known
        gen = self._gen
        entry = self._entry(domain, key, tenant)
        outcome = self._rank_with_require(entry, domain, key, tenant, required)
        if outcome.error is not None:
            raise outcome.error
        winner = outcome.explanation.selected
        assert winner is not None
        if tenant is None:
            with self._fill_lock:
                if self._gen == gen:
                    by_key = self._require_winners.get(domain)
                    if by_key is None:
                        by_key = self._require_winners[domain] = {}
                    remembered = by_key.get(key)
                    if remembered is None or len(remembered) >= _REQUIRE_CACHE:
                        remembered = by_key[key] = {}
                    remembered[required] = winner
                    if isinstance(given, (str, frozenset)):
                        remembered[given] = winner
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
        require = _requirement(require)
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
        """Keys of ``domain`` with at least one candidate, sorted.

        From an index patched by writes (``_listing.py``): the first listing of
        a domain sorts once, later ones cost the changes since.
        """
        with self._fill_lock:
            return self._key_index.keys(domain, self._domain_keys.get(domain, ()))

    def active(self, domain: str | None = None) -> Mapping[KeyRef, Candidate]:
        """``{(domain, key): winner}`` for every key that currently resolves (global scope).

        A read-only mapping, in no particular order, that later writes do not
        change (``dict(...)`` for a mutable copy; sort the items to display
        them).  Kept as an index after the first call of a domain: later calls
        re-resolve only the keys written since (``_listing.py``).
        """
        if domain is not None:
            return ActiveView({domain: self._active_of(domain)})
        return ActiveView({d: self._active_of(d) for d in self.domains()})

    def _active_of(
        self, domain: str
    ) -> tuple[dict[KeyRef, Candidate], dict[KeyRef, Any], int]:
        """The domain's active layers, brought up to date (one refresher at a time)."""
        with self._index_lock:
            with self._fill_lock:
                layers = self._active_index.get(domain)
                if layers is None:
                    pending: Iterable[KeyRef] = [r for r in self._store if r[0] == domain]
                else:
                    pending = self._active_pending.get(domain, ())
                self._active_pending[domain] = set()
            changes: dict[KeyRef, Candidate | None] = {}
            for ref in pending:
                try:
                    changes[ref] = self.resolve(ref[0], ref[1])
                except OneiricError:
                    changes[ref] = None
            if layers is None:
                layers = ActiveLayers({r: c for r, c in changes.items() if c is not None})
                with self._fill_lock:
                    if domain in self._active_pending:  # not dropped by invalidate() meanwhile
                        self._active_index[domain] = layers
            else:
                layers.apply(changes)
            return layers.snapshot()

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
            for k in self.keys(d):
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

    def _lean_fill(self, domain: str, key: str, scope: str | None) -> Candidate:
        """Fill the winner only: one pass over the candidates, no sort, no explanation.

        Taken when no veto implementation could refuse any of the key's
        candidates (``_vetoes.py``) and a selection, if any, names a registered
        provider (``lean_winner``); anything else (a possible veto, an
        unavailable selection) is the full fill, which also builds the
        explanation and the error.  ``explain()`` fills the explanation on
        first use.
        """
        hooks = self.hooks
        with self._fill_lock:  # one pass over the key, no user code: under the lock
            current = self._store.get((domain, key))
            if current:
                scoped = self._selections.get((scope, domain))
                winner = lean_winner(
                    current,
                    self._seq_of,
                    scoped.get(key) if scoped is not None else None,
                    self._stack_order,
                    self._veto_policy.scope(hooks),
                )
                if winner is not None:
                    self._store_winner(domain, key, scope, winner)
                    return winner
        if not current:
            raise NotRegisteredError(domain, key, self._domain_keys.get(domain, ()))
        return self._outcome_winner(self._fill(domain, key, scope))

    @staticmethod
    def _outcome_winner(outcome: Outcome) -> Candidate:
        if outcome.winner is None:
            assert outcome.error is not None
            raise outcome.error
        return outcome.winner

    def _store_winner(self, domain: str, key: str, scope: str | None, winner: Candidate) -> None:
        """Cache ``winner`` for the resolve fast path (fill lock held)."""
        if scope is None:
            winners = self._winners.get(domain)
            if winners is None:
                winners = self._winners[domain] = {}
            winners[key] = winner
        else:
            tenants = self._tenant_own.get(key)
            scoped = tenants.get(scope) if tenants is not None else None
            if scoped is not None and domain in scoped:
                scoped[domain] = winner

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
            vetoes = self._veto_policy.vetoes(
                self.hooks, rows, ResolutionRequest(domain, key, tenant, ())
            )
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
                else:
                    self._tenant_entries[(tenant, domain, key)] = outcome
                if outcome.winner is not None:
                    self._store_winner(domain, key, tenant, outcome.winner)
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
                    self._staged[ref] = {identity: candidate}
                else:
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
                self._write_one(ref, identity, candidate, seq)
            if not self._subscribers:
                return
        self._notify(frozenset((ref,)))

    def _write_one(self, ref: KeyRef, identity: Identity, candidate: Candidate, seq: int) -> None:
        """Publish one registration (fill lock held): a single call, or a batch of one."""
        regs = self._store.get(ref)
        if regs is None:  # a new key: nothing can be cached for it yet
            regs = self._store[ref] = {identity: candidate}
            self._seq_of[identity] = seq
            keys = self._domain_keys.get(ref[0])
            if keys is None:
                keys = self._domain_keys[ref[0]] = set()
            keys.add(ref[1])
            self._gen += 1
            if self._active_pending or self._key_index.indexed:
                self._listing_changed(ref, True)
            return  # not settled: most keys are registered long before (or without) a read
        domain, key = ref
        winners = self._winners.get(domain)
        previous = winners.get(key) if winners is not None else None
        seq_of = self._seq_of
        previous_seq = seq_of[previous._identity] if previous is not None else 0
        regs.pop(identity, None)
        regs[identity] = candidate
        seq_of[identity] = seq
        # _invalidate_key written out, but the winner replaced rather than dropped
        self._gen += 1
        self._entries.pop(ref, None)
        if self._require_winners:
            required = self._require_winners.get(domain)
            if required is not None:
                required.pop(key, None)
        tenants = self._tenant_scopes.get(domain)
        if tenants:
            for tenant in tenants:
                self._tenant_entries.pop((tenant, domain, key), None)
                self._drop_tenant_winner(tenant, domain, key)
        if self._active_pending:
            self._listing_changed(ref, False)
        if winners is not None:
            winner = (
                self._settled(ref, regs, candidate, seq, previous, previous_seq)
                if previous is not None
                else None
            )
            if winner is None:
                winners.pop(key, None)
            else:
                winners[key] = winner

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
            for tenants in self._tenant_own.values():
                for scoped in tenants.values():
                    for d in scoped:
                        scoped[d] = None
            self._require_winners.clear()
            self._active_index.clear()
            self._active_pending.clear()
            changes = frozenset(self._store)
        self._notify(changes)

    def batch(self) -> AbstractContextManager[Resolver]:
        """Group writes: one publish and one notification at the end.

        Other threads keep reading the state from before the batch until it
        ends.  If the block raises, none of its writes are applied.
        """
        return self._batch

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
        required = self._require_winners.get(domain)
        if required is not None:
            required.pop(key, None)
        for tenant in self._tenant_scopes.get(domain, ()):
            self._tenant_entries.pop((tenant, domain, key), None)
            self._drop_tenant_winner(tenant, domain, key)
        if self._active_pending:
            self._listing_changed(ref, False)

    def _drop_tenant_winner(self, tenant: str, domain: str, key: str) -> None:
        tenants = self._tenant_own.get(key)
        scoped = tenants.get(tenant) if tenants is not None else None
        if scoped is not None and domain in scoped:
            scoped[domain] = None

    def _own_key(self, tenant: str, domain: str, key: str, selected: bool) -> None:
        """Note that ``tenant`` now selects (or no longer selects) a provider for the key."""
        tenants = self._tenant_own.get(key)
        if selected:
            if tenants is None:
                tenants = self._tenant_own[key] = {}
            scoped = tenants.get(tenant)
            if scoped is None:
                scoped = tenants[tenant] = {}
            scoped[domain] = None
        elif tenants is not None:
            scoped = tenants.get(tenant)
            if scoped is not None:
                scoped.pop(domain, None)
                if not scoped:
                    del tenants[tenant]
                    if not tenants:
                        del self._tenant_own[key]

    def _listing_changed(self, ref: KeyRef, membership: bool) -> None:
        """Note ``ref`` for the listings: its winner changed, or it was added/removed."""
        if membership and self._key_index.indexed:
            self._key_index.touched(ref[0], ref[1])
        if self._active_pending:
            pending = self._active_pending.get(ref[0])
            if pending is not None:
                pending.add(ref)

    def _settled(
        self,
        ref: KeyRef,
        regs: dict[Identity, Candidate],
        candidate: Candidate,
        seq: int,
        previous: Candidate,
        previous_seq: int,
    ) -> Candidate | None:
        """The winner a write makes certain, or None to leave the key to its next reader.

        A write leaves every other candidate of the key as it was, so against the
        cached winner ``previous`` (registered as ``previous_seq``) the new winner
        is the better of the two by rules 2-4 (no selection for the key, no veto
        that could refuse ``candidate``).  Otherwise - a selection, ``candidate``
        replacing ``previous`` itself with a lower priority or stack level - a
        key of at most ``_SETTLE_SCAN`` candidates is scanned here
        (``lean_winner``), a larger one is left to the next resolve.  A key with
        no cached winner (new, or never read since its last change) is not
        settled at all: registering a plugin set must not pay for keys never read.
        """
        domain, key = ref
        selected = self._selections.get((None, domain))
        selection = selected.get(key) if selected is not None else None
        vetoes = self._veto_policy.scope(self._hooks or self.hooks)
        if selection is None and not vetoes.covers(candidate):
            stack = self._stack_order
            if stack:
                better = precedence_key(candidate, seq, stack) > precedence_key(
                    previous, previous_seq, stack
                )
            else:  # rules 2-4 written out: this runs on every write
                new_priority = candidate.priority
                if new_priority is None:
                    new_priority = DEFAULT_PRIORITIES.get(candidate.source.kind, 0)
                old_priority = previous.priority
                if old_priority is None:
                    old_priority = DEFAULT_PRIORITIES.get(previous.source.kind, 0)
                better = (new_priority, candidate.stack_level) >= (
                    old_priority,
                    previous.stack_level,
                )  # equal: the newer registration wins (rule 4)
            if better:
                return candidate
            if previous._identity != candidate._identity:
                return previous
        if len(regs) > _SETTLE_SCAN:
            return None
        return lean_winner(regs, self._seq_of, selection, self._stack_order, vetoes)

    def _publish(self) -> frozenset[KeyRef]:
        """Make staged writes visible at once; return the keys that may have changed."""
        if not self._staged and not self._staged_selections:
            return frozenset()  # an empty batch publishes nothing (the generation stays)
        staged, self._staged = self._staged, {}
        staged_seq = self._staged_seq
        if staged_seq:
            self._staged_seq = {}
        staged_sel = self._staged_selections
        if staged_sel:
            self._staged_selections = {}
        if len(staged) == 1 and not staged_sel:  # a batch of one write: the direct path
            ((ref, delta),) = staged.items()
            if len(delta) == 1:
                ((identity, candidate),) = delta.items()
                if candidate is not None:
                    with self._fill_lock:
                        seq = staged_seq.get(identity) or self._seq_of[identity]
                        self._write_one(ref, identity, candidate, seq)
                    return frozenset((ref,))
        stale: list[KeyRef] = []  # published keys whose cached outcomes the batch changed
        seq_of = self._seq_of
        listed = bool(self._active_pending or self._key_index.indexed)
        last_domain: str | None = None
        keys: set[str] | None = None
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
                else:
                    stale.append(ref)
                    for identity, candidate in delta.items():
                        regs.pop(identity, None)
                        if candidate is None:
                            seq_of.pop(identity, None)
                        else:
                            regs[identity] = candidate
                            if identity in staged_seq:
                                seq_of[identity] = staged_seq[identity]
                if domain is not last_domain:  # batches are mostly one domain's keys
                    last_domain = domain
                    keys = self._domain_keys.get(domain)
                if regs:
                    if keys is None:
                        keys = self._domain_keys[domain] = set()
                    if key not in keys:
                        keys.add(key)
                        if listed:
                            self._listing_changed(ref, True)
                else:
                    del self._store[ref]
                    if keys is not None:
                        keys.discard(key)
                    self._listing_changed(ref, True)
            changed: set[KeyRef] | None = None
            for scope, new in staged_sel.items():
                tenant, domain = scope
                old = self._selections.get(scope, {})
                diff = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                if changed is None:
                    changed = set(staged)
                changed.update((domain, k) for k in diff)
                stale.extend((domain, k) for k in diff)
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
                        self._own_key(tenant, domain, k, k in new)
            self._gen += 1
            for ref in stale:
                self._invalidate_key(ref)
        return frozenset(staged if changed is None else changed)

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


class _Batch:
    """``with resolver.batch():`` - one object per resolver, not a generator per call: a
    batch of one write must cost little more than the write alone (a ``@contextmanager``
    added ~1 µs).  Holds no state of its own: the resolver's depth tells the outermost
    exit, so nested and concurrent (other threads wait for the lock) uses share it."""

    __slots__ = ("_resolver",)

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def __enter__(self) -> Resolver:
        resolver = self._resolver
        resolver._lock.acquire()
        resolver._depth += 1
        return resolver

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        resolver = self._resolver
        changes: frozenset[KeyRef] = frozenset()
        try:
            resolver._depth -= 1
            if resolver._depth == 0:
                if exc_type is not None:
                    resolver._discard_staged()
                else:
                    changes = resolver._publish()
        finally:
            resolver._lock.release()
        if changes:
            resolver._notify(changes)
