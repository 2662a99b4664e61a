"""Explanations: why the resolver picked a provider, and why every other one lost.

An ``Explanation`` is computed when a cached winner is (re)filled, so reading
one costs nothing; ``as_dict()`` is the stable JSON shape the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ._candidate import Candidate
from ._value import Value, readable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Explanation", "RankedCandidate"]


class RankedCandidate(NamedTuple):
    """One candidate's place in a ranking and the rule that put it there.

    ``priority_origin`` is ``"stack_order"``, ``"declared"`` or ``"default"``;
    ``eligible`` is False when the candidate is vetoed or lacks a required capability.
    A named tuple: a cache fill builds one per candidate, so construction cost matters.
    """

    candidate: Candidate
    reason: str
    priority: int
    priority_origin: str
    registered: int
    selected: bool = False
    eligible: bool = True

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


@readable
@dataclass(frozen=True, slots=True)
class Explanation(Value):
    """The outcome of resolving ``(domain, key)`` and the full ranking behind it."""

    domain: str
    key: str
    tenant: str | None
    require: tuple[str, ...]
    selected: Candidate | None
    ranking: tuple[RankedCandidate, ...]
    why: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form; the shape is documented in docs/cli.md and stable.

        Redacted (``oneiric.core._redact``): a reason or veto text may quote a
        settings value, and this is what the CLI prints.
        """
        from ._redact import redact

        shown: dict[str, Any] = redact({
            "domain": self.domain,
            "key": self.key,
            "tenant": self.tenant,
            "require": list(self.require),
            "selected": self.selected.provider if self.selected is not None else None,
            "why": self.why,
            "candidates": [r.as_dict() for r in self.ranking],
        })
        return shown

    def __str__(self) -> str:
        lines = [f"{self.domain}/{self.key}: {self.why}"]
        for r in self.ranking:
            mark = "*" if r.selected else " "
            lines.append(
                f" {mark} {r.candidate.provider:<16} {r.candidate.source!s:<32} "
                f"priority={r.priority} ({r.priority_origin}) "
                f"stack_level={r.candidate.stack_level} #{r.registered}  {r.reason}"
            )
        from ._redact import scrub_text

        return scrub_text("\n".join(lines))
