"""The ``registry`` a plugin's ``oneiric_register`` hook receives."""

from __future__ import annotations

from ._candidate import Candidate, Source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TypedDict, Unpack

    from pydantic import BaseModel

    class CandidateFields(TypedDict, total=False):
        """``Candidate``'s parameters, ``source`` excepted (a plugin's is its own).

        Not ``Required``: ``register(candidate)`` passes none of them; without a
        candidate, ``Candidate`` itself refuses a missing domain, key, provider
        or factory.
        """

        domain: str
        key: str
        provider: str
        factory: Callable[..., object] | str
        priority: int | None
        stack_level: int
        capabilities: Iterable[str]
        settings_model: type[BaseModel] | str | None
        description: str
        metadata: Mapping[str, Any] | None

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

    def register(
        self, candidate: Candidate | None = None, /, **fields: Unpack[CandidateFields]
    ) -> Candidate:
        """Register ``candidate`` or build one from ``fields`` (``domain``, ``key``, ...).

        ``fields`` are ``Candidate``'s parameters (``source`` excepted: it is
        the plugin's); ``Candidate`` validates each and names a wrong one.
        """
        if candidate is not None:
            if fields:
                raise TypeError("register() takes a Candidate or keyword fields, not both")
            given: object = candidate  # plugins are untyped code: check what they pass
            if not isinstance(given, Candidate):
                raise TypeError(f"register() expects a Candidate, got {type(given).__name__}")
            candidate = given.evolve(source=self.source)
        else:
            values: dict[str, Any] = dict(fields)
            values["source"] = self.source  # replaces any source the plugin passed
            candidate = Candidate(**values)
        self.candidates.append(candidate)
        return candidate
