"""Explanations: why the resolver picked a provider, and why every other one lost.

An ``Explanation`` is computed when a cached winner is (re)filled, so reading
one costs nothing; ``as_dict()`` is the stable JSON shape the CLI prints.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._candidate import Candidate

__all__ = ["Explanation", "RankedCandidate"]


@attrs.frozen(slots=True)
class RankedCandidate:
    """One candidate's place in a ranking and the rule that put it there."""

    candidate: Candidate
    reason: str
    priority: int
    priority_origin: str  # "stack_order" | "declared" | "default"
    registered: int
    selected: bool = False
    eligible: bool = True  # False when vetoed or lacking a required capability

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "provider": c.provider,
            "source": str(c.source),
            "priority": self.priority,
            "priority_origin": self.priority_origin,
            "stack_level": c.stack_level,
            "registered": self.registered,
            "selected": self.selected,
            "reason": self.reason,
        }


@attrs.frozen(slots=True)
class Explanation:
    """The outcome of resolving ``(domain, key)`` and the full ranking behind it."""

    domain: str
    key: str
    tenant: str | None
    require: tuple[str, ...]
    selected: Candidate | None
    ranking: tuple[RankedCandidate, ...]
    why: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form; the shape is documented in docs/cli.md and stable."""
        return {
            "domain": self.domain,
            "key": self.key,
            "tenant": self.tenant,
            "require": list(self.require),
            "selected": self.selected.provider if self.selected is not None else None,
            "why": self.why,
            "candidates": [r.as_dict() for r in self.ranking],
        }

    def __str__(self) -> str:
        lines = [f"{self.domain}/{self.key}: {self.why}"]
        for r in self.ranking:
            mark = "*" if r.selected else " "
            lines.append(
                f" {mark} {r.candidate.provider:<16} {str(r.candidate.source):<32} "
                f"priority={r.priority} ({r.priority_origin}) "
                f"stack_level={r.candidate.stack_level} #{r.registered}  {r.reason}"
            )
        return "\n".join(lines)
