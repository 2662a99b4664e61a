"""The precedence rules, as pure functions over a snapshot of one key.

Kept apart from the resolver's caching and locking so the rules read like the
documentation (docs/architecture.md, "Precedence") and can be tested alone:

1. explicit selection (a tenant's over the global one);
2. priority: operator stack order > declared priority > default per source kind;
3. ``stack_level``;
4. registration order: the most recently registered wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._candidate import Candidate
from ._errors import ConfigError
from ._explain import Explanation, RankedCandidate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._vetoes import Scope

__all__ = [
    "DEFAULT_PRIORITIES",
    "Registration",
    "lean_winner",
    "parse_selection",
    "parse_stack_order",
    "precedence_key",
    "rank",
]

#: Priority of a candidate that declares none and whose origin is not in the
#: operator's stack order.  Application code is the most deliberate act of the
#: application's owner, a manifest is the operator's delivery, an installed
#: entry point merely happens to be present.
DEFAULT_PRIORITIES: Mapping[str, int] = {"code": 10, "manifest": 5, "entry_point": 0}
DEFAULT_PRIORITY_OTHER = 0

#: ``(candidate, registration sequence number)``; higher sequence = more recent.
Registration = tuple[Candidate, int]


def parse_stack_order(value: str | Mapping[str, int] | None) -> dict[str, int]:
    """Parse ``"dist_or_origin:100,other:50"`` (or a mapping) into ``{name: priority}``.

    A name is either a bare source name (a distribution, a manifest repository,
    ``app``) or ``kind:name``.  The priority is after the *last* colon.
    """
    if value is None:
        value = os.environ.get("ONEIRIC_STACK_ORDER", "")
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = value.items()
    else:
        parsed: list[tuple[str, Any]] = []
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, prio = part.rpartition(":")
            if not sep or not name.strip():
                raise ConfigError(
                    f"invalid ONEIRIC_STACK_ORDER entry {part!r}: expected 'origin:priority', "
                    "e.g. 'oneiric-acme:100,manifest:acme-prod:50'"
                )
            parsed.append((name.strip(), prio.strip()))
        items = parsed
    result: dict[str, int] = {}
    for name, prio in items:
        try:
            number = int(prio)
        except (TypeError, ValueError):
            raise ConfigError(
                f"invalid ONEIRIC_STACK_ORDER priority {prio!r} for {name!r}: expected an integer"
            ) from None
        result[str(name)] = number
    return result


def parse_selection(value: str) -> tuple[str, tuple[str, str] | None]:
    """Split ``"provider"`` or ``"provider@kind:name"`` into (provider, origin or None)."""
    provider, sep, origin = value.partition("@")
    if not sep:
        return value, None
    kind, colon, name = origin.partition(":")
    if not colon or not kind or not name:
        raise ConfigError(
            f"invalid selection {value!r}: expected 'provider' or 'provider@kind:name' "
            "(e.g. 'redis@entry_point:oneiric-adapters-cache')"
        )
    return provider, (kind, name)


def effective_priority(candidate: Candidate, stack_order: Mapping[str, int]) -> tuple[int, str]:
    """Return ``(priority, priority_origin)`` for ``candidate``."""
    if stack_order:
        src = candidate.source
        value = stack_order.get(f"{src.kind}:{src.name}")
        if value is None:
            value = stack_order.get(src.name)
        if value is not None:
            return value, "stack_order"
    if candidate.priority is not None:
        return candidate.priority, "declared"
    return DEFAULT_PRIORITIES.get(candidate.source.kind, DEFAULT_PRIORITY_OTHER), "default"


def precedence_key(
    candidate: Candidate, seq: int, stack_order: Mapping[str, int]
) -> tuple[int, int, int]:
    """Rules 2-4 as one comparable key: the greatest key wins (what ``order`` sorts by).

    The resolver's lean fill takes the ``max`` of these instead of sorting, and a
    write compares the new candidate's key with the cached winner's.
    """
    if stack_order:
        priority = effective_priority(candidate, stack_order)[0]
    elif candidate.priority is not None:
        priority = candidate.priority
    else:
        priority = DEFAULT_PRIORITIES.get(candidate.source.kind, DEFAULT_PRIORITY_OTHER)
    return (priority, candidate.stack_level, seq)


def lean_winner(
    regs: Mapping[Any, Candidate],
    seq_of: Mapping[Any, int],
    selection: str | None,
    stack_order: Mapping[str, int],
    vetoes: Scope,
) -> Candidate | None:
    """Rules 1-4 in one pass when nothing can be excluded; None when ``rank()`` must decide.

    ``regs`` maps identities to candidates, ``seq_of`` identities to
    registration numbers.  None when ``vetoes`` covers a candidate (a veto
    could exclude it) or ``selection`` matches no candidate (the error needs
    its wording): the caller then ranks in full.  Otherwise the winner is the
    candidate ``rank()`` would put first - the greatest
    (priority, stack_level, registration) among those the selection admits -
    found without sorting or building an explanation.
    """
    everyone, kinds, metadata_keys = vetoes.everyone, vetoes.kinds, vetoes.metadata_keys
    if everyone:
        return None
    provider: str | None = None
    origin: tuple[str, str] | None = None
    if selection is not None:
        provider, origin = parse_selection(selection)
    defaults = DEFAULT_PRIORITIES
    best: Candidate | None = None
    best_rank = (0, 0, 0)
    for identity, c in regs.items():
        source = c.source
        if source.kind in kinds:
            return None
        if metadata_keys and c.metadata:
            for name in metadata_keys:
                if name in c.metadata:
                    return None
        if provider is not None and (
            c.provider != provider or (origin is not None and source._origin != origin)
        ):
            continue
        declared = c.priority
        if stack_order:
            priority = effective_priority(c, stack_order)[0]
        elif declared is None:
            priority = defaults.get(source.kind, DEFAULT_PRIORITY_OTHER)
        else:
            priority = declared
        ranked = (priority, c.stack_level, seq_of[identity])
        if best is None or ranked > best_rank:
            best, best_rank = c, ranked
    return best


class Outcome:
    """Result of ranking one key; what the resolver caches per key and scope.

    ``winner`` is ``explanation.selected`` (kept as a slot for the cache reads),
    ``error`` the exception to raise when there is none; ``rows`` and ``vetoes``
    let a ``require=`` request re-rank without recomputing order or vetoes.
    """

    __slots__ = ("error", "explanation", "rows", "vetoes", "winner")

    def __init__(
        self,
        explanation: Explanation,
        error: Exception | None,
        rows: Sequence[tuple[Candidate, int, int, str]],
        vetoes: Mapping[int, str],
    ) -> None:
        self.explanation = explanation
        self.winner = explanation.selected
        self.error = error
        self.rows = rows  # ``order()`` rows: precedence before selection/eligibility
        self.vetoes = vetoes


def order(
    registrations: Iterable[Registration], stack_order: Mapping[str, int]
) -> list[tuple[Candidate, int, int, str]]:
    """Sort by rules 2-4: ``[(candidate, seq, priority, priority_origin)]``, best first."""
    rows = []
    for candidate, seq in registrations:
        prio, prio_origin = effective_priority(candidate, stack_order)
        rows.append((candidate, seq, prio, prio_origin))
    rows.sort(key=lambda r: (r[2], r[0].stack_level, r[1]), reverse=True)
    return rows


def rank(
    domain: str,
    key: str,
    rows: Sequence[tuple[Candidate, int, int, str]],
    *,
    selection: str | None,
    selection_scope: str | None,
    vetoes: Mapping[int, str],
    tenant: str | None,
    require: tuple[str, ...],
    error_factory: Callable[..., Exception],
) -> Outcome:
    """Apply rule 1 and eligibility (vetoes, required capabilities) to ordered rows.

    ``rows`` come from ``order()``.  ``vetoes`` maps a row's registration sequence
    number to ``"by <plugin>: reason"``.  ``error_factory(kind, **details)`` builds
    the exception for an unavailable selection or for no eligible candidate, so
    this module stays free of wording that belongs to the resolver.
    """
    # 1. eligibility
    excluded: dict[int, str] = {}
    if vetoes or require:
        required = frozenset(require)
        for c, seq, _, _ in rows:
            veto = vetoes.get(seq)
            if veto is not None:
                excluded[seq] = f"vetoed {veto}"
                continue
            if required:
                missing = sorted(required - c.capabilities)
                if missing:
                    word = "capability" if len(missing) == 1 else "capabilities"
                    excluded[seq] = f"lacks {word} {', '.join(missing)}"
    eligible = [r for r in rows if r[1] not in excluded] if excluded else list(rows)

    # 2. the winner and the reasons
    reasons: dict[int, str] = {}
    winner: tuple[Candidate, int, int, str] | None = None
    error: Exception | None = None
    why: str
    if selection is not None:
        provider, origin = parse_selection(selection)
        matches = [
            r
            for r in rows
            if r[0].provider == provider and (origin is None or r[0].source.origin == origin)
        ]
        scope = f"tenant {tenant!r} selection" if selection_scope else "global selection"
        usable = [r for r in matches if r[1] not in excluded]
        if usable:
            winner = usable[0]
            why = f"{provider!r} is explicitly selected by the {scope}"
            reasons[winner[1]] = "selected"
            other = f"not selected ({scope} is {selection!r})"
            for r in eligible:
                if r is not winner:
                    reasons[r[1]] = other
        else:
            if matches:
                reason = excluded[matches[0][1]]
            elif origin is not None and any(r[0].provider == provider for r in rows):
                reason = f"not registered from {origin[0]}:{origin[1]}"
            else:
                reason = "not registered"
            error = error_factory("selection", provider=selection, reason=reason)
            why = f"{scope} {selection!r} is unavailable: {reason}"
    elif eligible:
        winner = eligible[0]
        wc, wseq, wprio, _ = winner
        wstack = wc.stack_level
        if len(eligible) == 1:
            if excluded:
                reasons[wseq] = "only eligible candidate"
                why = f"{wc.provider!r} is the only eligible candidate"
            else:
                reasons[wseq] = "only candidate"
                why = f"{wc.provider!r} is the only candidate"
        else:
            runner = eligible[1]
            if wprio != runner[2]:
                reasons[wseq] = f"won on priority {wprio} > {runner[2]}"
                why = f"{wc.provider!r} has the highest priority ({wprio})"
            elif wstack != runner[0].stack_level:
                reasons[wseq] = f"won on stack_level {wstack} > {runner[0].stack_level}"
                why = f"{wc.provider!r} has the highest stack_level ({wstack}) at priority {wprio}"
            else:
                reasons[wseq] = "tie broken by registration order"
                why = (
                    f"{wc.provider!r} ties on priority and stack_level; "
                    "tie broken by registration order (most recent wins)"
                )
        for c, seq, prio, _ in eligible[1:]:
            if prio != wprio:
                reasons[seq] = f"lost on priority {prio} < {wprio}"
            elif c.stack_level != wstack:
                reasons[seq] = f"lost on stack_level {c.stack_level} < {wstack}"
            else:
                reasons[seq] = f"lost on registration order (#{seq} before #{wseq})"
    else:
        error = error_factory(
            "ineligible", reasons=[(r[0].provider, excluded[r[1]]) for r in rows]
        )
        why = "no eligible candidate: " + "; ".join(
            f"{r[0].provider} {excluded[r[1]]}" for r in rows
        )

    # 3. the ranking: winner, the other eligible ones, then the excluded ones
    ranked: list[RankedCandidate] = []
    if winner is not None:
        wc, wseq, wprio, wpo = winner
        ranked.append(RankedCandidate(wc, reasons[wseq], wprio, wpo, wseq, True, True))
    for c, seq, prio, prio_origin in eligible:
        if winner is None or seq != winner[1]:
            ranked.append(RankedCandidate(c, reasons.get(seq, ""), prio, prio_origin, seq))
    if excluded:
        for c, seq, prio, prio_origin in rows:
            if seq in excluded:
                ranked.append(
                    RankedCandidate(c, excluded[seq], prio, prio_origin, seq, False, False)
                )
    explanation = Explanation(
        domain, key, tenant, tuple(require),
        winner[0] if winner is not None else None,
        tuple(ranked),
        why,
    )
    return Outcome(explanation, error, rows, vetoes)
