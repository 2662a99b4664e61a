"""The state of one bound key: its binding, the bindings being retired, its history.

A *binding* is one built instance plus its lease count.  A lease increments the
count of the binding that is bound at that moment; a swap *retires* the old
binding, after which no new lease can take it, and its cleanup waits until the
count reaches zero.  Both sides take the binding's small lock, so a thread
using ``lease_sync()`` can never take a binding that is already being cleaned
up.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from oneiric.core import Candidate
from oneiric.core.helpers import format_timestamp

from ._component import HealthReport

if TYPE_CHECKING:
    from ._handle import Handle

__all__ = ["Binding", "Failure", "KeyRef", "LatencyStats", "Slot", "SlotKey", "SlotTable"]

#: ``(domain, key, tenant)``: one slot (tenant None: the global instance).
SlotKey = tuple[str, str, "str | None"]
#: ``(domain, key)``: what pause/drain decisions and resolver changes name.
KeyRef = tuple[str, str]


class Binding:
    """One built instance bound (or once bound) to a slot."""

    __slots__ = (
        "bound_at",
        "candidate",
        "cleaned",
        "instance",
        "leases",
        "lock",
        "on_zero",
        "override",
        "retired",
        "settings",
    )

    def __init__(
        self,
        instance: object,
        candidate: Candidate | None,
        settings: object = None,
        bound_at: float = 0.0,
        override: bool = False,
    ) -> None:
        self.instance = instance
        self.candidate = candidate
        self.settings = settings
        self.bound_at = bound_at
        self.override = override
        self.leases = 0
        self.retired = False
        self.cleaned = False
        self.lock = threading.Lock()
        self.on_zero: Callable[[], None] | None = None

    @property
    def provider(self) -> str:
        return self.candidate.provider if self.candidate is not None else "<override>"

    def acquire(self) -> bool:
        """Take a lease unless the binding was retired meanwhile."""
        with self.lock:
            if self.retired:
                return False
            self.leases += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.leases -= 1
            on_zero = self.on_zero if self.retired and self.leases == 0 else None
        if on_zero is not None:
            on_zero()

    def retire(self) -> bool:
        """Refuse new leases; return True if no lease is held."""
        with self.lock:
            self.retired = True
            return self.leases == 0

    def when_idle(self, on_zero: Callable[[], None]) -> bool:
        """True if no lease is held now; else ``on_zero`` fires when the last one ends.

        For a retired binding (no lease can be added): the check and the
        registration are one step under the lock, so a release in between
        cannot be missed.
        """
        with self.lock:
            if self.leases == 0:
                return True
            self.on_zero = on_zero
            return False


@dataclass(slots=True, kw_only=True)
class Failure:
    """One failed swap or activation, as status shows it."""

    at: float
    provider: str
    kind: str  # SwapVetoed, HealthCheckFailed, ActivationError, SwapTimeout, cancelled
    error_type: str  # the underlying cause, e.g. FactoryError
    error: str
    reason: str  # what asked for the swap: activate, manual, selection changed

    def as_dict(self) -> dict[str, str]:
        return {**dataclasses.asdict(self), "at": format_timestamp(self.at)}


class LatencyStats:
    """Swap latencies: fixed histogram buckets plus recent samples for percentiles."""

    BOUNDS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)

    __slots__ = ("buckets", "count", "max", "recent", "total")

    def __init__(self, window: int = 512) -> None:
        self.buckets = [0] * (len(self.BOUNDS) + 1)
        self.recent: deque[float] = deque(maxlen=window)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(self.BOUNDS, seconds)] += 1
        self.recent.append(seconds)
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def percentile(self, q: float) -> float | None:
        if not self.recent:
            return None
        data = sorted(self.recent)
        index = min(len(data) - 1, max(0, round(q * (len(data) - 1))))
        return data[index]

    def as_dict(self) -> dict[str, object]:
        labels = [f"le_{b:g}" for b in self.BOUNDS] + ["le_inf"]
        return {
            "count": self.count,
            "mean_s": self.total / self.count if self.count else None,
            "p50_s": self.percentile(0.5),
            "p99_s": self.percentile(0.99),
            "max_s": self.max if self.count else None,
            "buckets": dict(zip(labels, self.buckets, strict=True)),
        }


class Slot:
    """One ``(domain, key, tenant)`` the manager holds an instance for."""

    def __init__(
        self, domain: str, key: str, tenant: str | None, handle: Handle[object]
    ) -> None:
        self.domain = domain
        self.key = key
        self.tenant = tenant
        self.handle = handle
        self.lock = asyncio.Lock()
        self.bound: Binding | None = None
        self.override: Binding | None = None
        self.retiring: set[Binding] = set()
        self.activation_seq = 0
        self.selection_seen: str | None = None
        self.manual: tuple[str, float] | None = None  # (provider, at) of an explicit swap
        self.sticky_since: float | None = None
        self.deferred: str | None = None  # reason of a swap waiting for resume
        self.pending: str | None = None  # reason of a scheduled automatic swap
        self.auto_task: asyncio.Task[None] | None = None
        self.auto_failure: Failure | None = None
        self.swaps = 0
        self.failures: deque[Failure] = deque(maxlen=20)
        self.failure_count = 0
        self.latency = LatencyStats()
        self.last_health: tuple[HealthReport, float] | None = None
        self.post_swap_errors: deque[str] = deque(maxlen=20)
        self.component_errors: deque[str] = deque(maxlen=20)

    @property
    def ref(self) -> SlotKey:
        return (self.domain, self.key, self.tenant)

    @property
    def current(self) -> Binding | None:
        """What leases and the handle serve: an override if any, else the bound binding."""
        return self.override if self.override is not None else self.bound

    def lease(self) -> Binding | None:
        """Take a lease on what is served now; None when nothing is.

        A binding retired between the read and the acquire refuses the lease;
        the next read sees the binding that replaced it.
        """
        while True:
            binding = self.current
            if binding is None or binding.acquire():
                return binding

    def in_flight(self) -> int:
        total = sum(b.leases for b in self.retiring)
        if self.bound is not None:
            total += self.bound.leases
        return total


class SlotTable(dict[SlotKey, Slot]):
    """The manager's slots by (domain, key, tenant), indexed by (domain, key) too.

    A resolver change names the keys it touched; with 10,000 active keys a
    scan of every slot per registration cost ~1 ms of event-loop time, the
    index makes it the touched keys' slots only.  Slots are only ever added
    with ``table[ref] = slot`` and removed with ``del table[ref]``, which keep
    the index; the dict's other mutators are not used on it.
    """

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        super().__init__()
        self._by_key: dict[KeyRef, dict[SlotKey, Slot]] = {}

    def __setitem__(self, ref: SlotKey, slot: Slot) -> None:
        super().__setitem__(ref, slot)
        self._by_key.setdefault((ref[0], ref[1]), {})[ref] = slot

    def __delitem__(self, ref: SlotKey) -> None:
        super().__delitem__(ref)
        group = self._by_key[(ref[0], ref[1])]
        del group[ref]
        if not group:
            del self._by_key[(ref[0], ref[1])]

    def of(self, domain: str, key: str) -> list[Slot]:
        """The slots of ``domain/key`` (the global one and each tenant's), a copy."""
        group = self._by_key.get((domain, key))
        return list(group.values()) if group else []
