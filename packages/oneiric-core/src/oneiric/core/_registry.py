"""The ``registry`` a plugin's ``oneiric_register`` hook receives."""

from __future__ import annotations

from ._candidate import Candidate, Source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PluginRegistry"]


class PluginRegistry:
    """The ``registry`` a plugin's ``oneiric_register`` receives.

    Whatever source a plugin passes, ``source`` is set to the plugin's own
    distribution and version: a plugin cannot impersonate another origin.
    Candidates are collected and registered only if the whole hook succeeds.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.candidates: list[Candidate] = []

    def register(self, candidate: Candidate | None = None, /, **fields: Any) -> Candidate:
        """Register ``candidate`` or build one from ``fields`` (``domain``, ``key``, ...).

        ``fields`` are ``Candidate``'s parameters (``source`` excepted: it is
        the plugin's); ``Candidate`` validates each and names a wrong one.
        """
        if candidate is not None:
            if fields:
                raise TypeError("register() takes a Candidate or keyword fields, not both")
            if not isinstance(candidate, Candidate):
                raise TypeError(
                    f"register() expects a Candidate, got {type(candidate).__name__}"
                )
            candidate = candidate.evolve(source=self.source)
        else:
            fields["source"] = self.source
            candidate = Candidate(**fields)
        self.candidates.append(candidate)
        return candidate
