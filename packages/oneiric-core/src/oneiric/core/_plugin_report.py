"""What ``load_plugins`` reports: the entry points found and what happened to each."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ._value import Value, readable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DiscoveryReport", "EntryPointInfo", "PluginLoad"]


@readable
@dataclass(frozen=True, slots=True)
class EntryPointInfo(Value):
    """One entry point of the plugin group, as found on disk."""

    distribution: str
    version: str
    name: str
    value: str  # "module" or "module:attr"

    @property
    def plugin_name(self) -> str:
        """The name the plugin is registered under with pluggy: ``dist:entry point``."""
        return f"{self.distribution}:{self.name}"


@readable
@dataclass(frozen=True, slots=True)
class PluginLoad(Value):
    """What happened to one plugin during ``load_plugins``."""

    distribution: str
    version: str
    entry_point: str
    module: str
    candidates: int
    load_time_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, str | int | float | None]:
        """JSON-serializable form (``oneiric plugins --json``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@readable
@dataclass(frozen=True, slots=True)
class DiscoveryReport(Value):
    """The outcome of ``load_plugins``: one ``PluginLoad`` per entry point."""

    entries: tuple[PluginLoad, ...]

    def __init__(self, entries: Iterable[PluginLoad]) -> None:
        object.__setattr__(self, "entries", tuple(entries))

    @property
    def errors(self) -> tuple[PluginLoad, ...]:
        """The plugins that failed to load (their candidates were not registered)."""
        return tuple(e for e in self.entries if e.error is not None)

    @property
    def candidates(self) -> int:
        return sum(e.candidates for e in self.entries)

    def as_dict(self) -> dict[str, list[dict[str, str | int | float | None]]]:
        return {"plugins": [e.as_dict() for e in self.entries]}
