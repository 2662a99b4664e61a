"""Timeouts and periods of the lifecycle as one frozen value.

Loose numbers scattered through the swap code would be impossible to review or
to tune per deployment; ``LifecycleConfig`` gathers them, validates them once
and can be read from the settings' ``[lifecycle]`` section.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oneiric.core import ConfigError

__all__ = ["LifecycleConfig"]


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Deadlines (seconds) of each swap step and the periods of background work.

    ``grace_period`` is how long a replaced instance stays alive after its last
    lease ends (in-flight work that did not take a lease, e.g. a reference held
    across a short callback, gets that long to finish); ``0`` cleans up at once.
    ``activity_poll_interval`` bounds how late this process sees a pause/drain
    written by another process; ``status_interval`` bounds how often the status
    snapshot is rewritten; ``watch_poll_interval`` is the settings watcher's
    period when it polls instead of using watchfiles; ``health_interval`` is
    how often every bound instance's ``health()`` is probed and recorded in
    status (so ``oneiric health`` reflects an outage within one interval; a
    failing probe only reports, it never swaps); ``0`` disables probing.
    ``activity_poll_interval = 0`` disables the poll: another process's
    pause/drain is then seen only at start (the serverless profile, where an
    invocation is shorter than any useful period and an idle timer keeps the
    function warm for nothing); this process's own writes are seen at once.
    """

    build_timeout: float = 30.0
    init_timeout: float = 30.0
    health_timeout: float = 10.0
    pre_swap_timeout: float = 10.0
    post_swap_timeout: float = 10.0
    cleanup_timeout: float = 30.0
    grace_period: float = 5.0
    activity_poll_interval: float = 1.0
    status_interval: float = 0.5
    watch_poll_interval: float = 1.0
    health_interval: float = 15.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(
                    f"invalid lifecycle setting {field.name}={value!r}: expected a finite "
                    "number of seconds >= 0"
                )
            object.__setattr__(self, field.name, float(value))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> LifecycleConfig:
        """Build from a ``[lifecycle]`` table; unknown keys are refused, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigError(
                f"unknown [lifecycle] setting {unknown[0]!r}; expected one of: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**dict(mapping))

    @classmethod
    def from_settings(cls, settings: Any) -> LifecycleConfig:
        """Read ``settings.lifecycle`` (the raw ``[lifecycle]`` section), defaults if absent."""
        section = getattr(settings, "lifecycle", None) or {}
        return cls.from_mapping(section)

    def replace(self, **changes: Any) -> LifecycleConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)
