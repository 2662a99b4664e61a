"""Schedules: ``[schedules.<id>]`` of oneiric.toml - when each fires, and what it runs.

::

    [schedules.nightly-report]
    cron = "30 2 * * *"                 # or: every = "15m" (exactly one of the two)
    timezone = "America/New_York"       # IANA zone of the cron fields (default UTC)
    run = "workflow:report"             # | action:<key> | event:<topic>
    payload = { day = "${schedule.fire_time}" }
    misfire_grace = "5m"                # default 60 s
    coalesce = "latest"                 # | all | skip
    jitter = "30s"                      # a random delay in [0, jitter] (default 0)
    max_instances = 1                   # runs of this schedule in flight at once

Times are POSIX seconds (UTC) everywhere - in the store, in dedupe ids, in
comparisons - and the zone is applied only to turn cron fields into instants
(cronsim, Debian cron semantics): a fixed time that does not exist on a
spring-forward day (``30 2`` in America/New_York) fires at the next valid
instant (03:00 local), one that exists twice on a fall-back day fires once,
at its first occurrence.  Expressions whose minute or hour field is a
wildcard or step (``*/15 * * * *``) run in elapsed time, as cron does: an
hourly job fires in both passes of a repeated hour, and not in a skipped one.
``every`` instants are multiples of the interval since the Unix epoch, so
every host (and every restart) agrees on them without a stored anchor; it has
no zone.

A payload is a template (the automations' mechanism) with one root:
``${schedule.id}``, ``${schedule.fire_time}`` (RFC 3339 UTC),
``${schedule.dedupe_id}`` and ``${schedule.manual}`` (true for a trigger).

Everything is validated before anything registers: ``parse_schedules`` raises
one ``ConfigError`` line naming the file and ``schedules.<id>.<field>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from oneiric.core import ConfigError, OneiricError
from oneiric.core.helpers import format_timestamp, one_line, parse_duration

from ._automations import _target
from ._sections import parse_tables
from ._template import Template, compile_template

__all__ = [
    "COALESCE",
    "DEFAULT_MISFIRE_GRACE",
    "FIELDS",
    "MAX_CATCH_UP",
    "Due",
    "Schedule",
    "ScheduleNotFound",
    "dedupe_id",
    "parse_schedules",
]

#: The fields of one ``[schedules.<id>]`` table.
FIELDS = frozenset({"cron", "every", "timezone", "run", "payload", "misfire_grace", "coalesce",
                    "jitter", "max_instances"})
#: What a scheduler does with instants it missed but that are still within the grace.
COALESCE = ("latest", "all", "skip")
DEFAULT_MISFIRE_GRACE = 60.0
#: Instants counted per look at most (a long outage of a per-minute cron stays cheap).
ENUMERATION_CAP = 10_000
MAX_MISFIRE_GRACE = 7 * 86400.0
#: ``coalesce = "all"`` fires at most this many missed instants at once (the latest ones).
MAX_CATCH_UP = 100
_SCOPE_FIELDS = ("id", "fire_time", "dedupe_id", "manual")
_NAME_MAX = 64


class ScheduleNotFound(OneiricError, LookupError):
    """No schedule with that id is configured."""

    category = "not_found"


def dedupe_id(schedule_id: str, fire_time: float) -> str:
    """``<id>:<RFC 3339 UTC ms>``: the same instant gives the same id on every host."""
    return f"{schedule_id}:{format_timestamp(fire_time)}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """One validated schedule (also what its ``task`` candidate's factory returns)."""

    id: str
    kind: str  # "action" | "event" | "workflow"
    target: str
    template: Template
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    coalesce: str = "latest"
    jitter: float = 0.0
    max_instances: int = 1

    @property
    def run(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def spec(self) -> str:
        """``cron '30 2 * * *' America/New_York`` / ``every 900s``: for listings."""
        if self.cron is not None:
            return f"cron {self.cron!r} {self.timezone}"
        return f"every {self.every:g}s"

    @property
    def zone(self) -> tzinfo:
        return _zone(self.timezone)

    def payload(self, fire_time: float, dedupe: str, *, manual: bool = False) -> Any:
        """The rendered payload for one fire."""
        return self.template.render({"schedule": {
            "id": self.id, "fire_time": format_timestamp(fire_time), "dedupe_id": dedupe,
            "manual": manual,
        }})

    # ------------------------------------------------------------------ time

    def next_after(self, after: float) -> float | None:
        """The first instant strictly after ``after``; ``None`` if none in 50 years."""
        for instant in self.instants(after):
            return instant
        return None

    def instants(self, after: float) -> Iterator[float]:
        """Every instant strictly after ``after``, in order (UTC seconds)."""
        if self.every is not None:
            step = round(self.every * 1000)
            k = math.floor(after * 1000) // step + 1
            while True:
                yield k * step / 1000
                k += 1
        assert self.cron is not None
        from cronsim import CronSim

        zone = self.zone
        iterator = CronSim(self.cron, datetime.fromtimestamp(after, zone))
        while True:
            try:
                moment = next(iterator)
            except StopIteration:
                return
            instant = moment.timestamp()
            # cronsim walks wall-clock time: from inside the second pass of a repeated
            # hour it finds the first pass again - already past, so never fired twice.
            if instant > after:
                yield instant

    def count(self, after: float, until: float) -> int:
        """How many instants fall in ``(after, until]``: exact for ``every``; for cron at
        most ``ENUMERATION_CAP`` (a month-long outage of a per-minute job is not walked)."""
        if until <= after:
            return 0
        if self.every is not None:
            step = round(self.every * 1000)
            return max(math.floor(until * 1000) // step - math.floor(after * 1000) // step, 0)
        total = 0
        for instant in self.instants(after):
            if instant > until or total >= ENUMERATION_CAP:
                break
            total += 1
        return total

    def between(self, after: float, until: float, *, keep: int) -> tuple[list[float], int]:
        """The latest ``keep`` instants in ``(after, until]`` and how many earlier ones there
        were.  Callers pass a window no longer than ``misfire_grace`` (at most 7 days: 10,080
        instants of a per-minute cron)."""
        if until <= after:
            return [], 0
        if self.every is not None:
            step = round(self.every * 1000)
            last = math.floor(until * 1000) // step
            total = self.count(after, until)
            listed = min(total, keep)
            return [k * step / 1000 for k in range(last - listed + 1, last + 1)], total - listed
        found: list[float] = []
        for instant in self.instants(after):
            if instant > until:
                break
            found.append(instant)
        return (found[-keep:] if keep else []), max(len(found) - keep, 0)

    def due(self, cursor: float, now: float, previous_check: float | None) -> Due:
        """What to do with the instants in ``(cursor, now]`` (the scheduling policy).

        The *on-time* instant is the first one after this scheduler's previous look
        (``previous_check``; ``None`` right after a start, when every due instant was
        missed).  Instants later than ``misfire_grace`` are misfires.  Within the grace,
        ``coalesce`` decides: ``latest`` fires once, for the latest instant; ``all`` fires
        each (the latest ``MAX_CATCH_UP``); ``skip`` fires only the on-time one.  Every
        instant not fired is counted as a misfire.
        """
        if now <= cursor:
            return Due((), 0)
        grace_start = max(cursor, now - self.misfire_grace)
        late = self.count(cursor, grace_start)
        fire: list[float]
        if self.coalesce == "all":
            fire, dropped = self.between(grace_start, now, keep=MAX_CATCH_UP)
            return Due(tuple(fire), late + dropped, dropped)
        if self.coalesce == "latest":
            fire, dropped = self.between(grace_start, now, keep=1)
            return Due(tuple(fire), late + dropped)
        within = self.count(grace_start, now)
        on_time = (self.next_after(max(previous_check, cursor))
                   if previous_check is not None else None)
        fire = [on_time] if on_time is not None and grace_start < on_time <= now else []
        return Due(tuple(fire), late + within - len(fire))


@dataclass(frozen=True, slots=True)
class Due:
    """The instants to fire now, and how many due ones were not fired (misfires)."""

    fire: tuple[float, ...]
    misfired: int
    dropped: int = 0  # of them: over ``MAX_CATCH_UP`` with ``coalesce = "all"``


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


# ---------------------------------------------------------------- validation


def _check_schedule_ref(path: tuple[str, ...]) -> str | None:
    if path[0] != "schedule":
        return (f"unknown reference root {path[0]!r}; schedule payloads reference "
                "${schedule.id}, ${schedule.fire_time}, ${schedule.dedupe_id}, "
                "${schedule.manual}")
    if len(path) != 2 or path[1] not in _SCOPE_FIELDS:
        return f"name one field: {', '.join('${schedule.' + f + '}' for f in _SCOPE_FIELDS)}"
    return None


def _duration(body: Mapping[str, Any], field: str, where: str, default: float) -> float:
    if field not in body:
        return default
    return parse_duration(body[field], what=f"{where}.{field}")


def _timezone(body: Mapping[str, Any], where: str) -> str:
    name = body.get("timezone", "UTC")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.timezone must be an IANA zone name like "
                          f"'America/New_York', got {name!r}")
    if name == "UTC":
        return name
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"{where}.timezone: {name!r} is not a known IANA zone; use a name "
                          "like 'America/New_York' or 'UTC' (install tzdata if none are "
                          "found)") from None
    return name


def _cron(expr: object, zone: str, where: str) -> str:
    hint = "five fields: minute hour day-of-month month day-of-week, e.g. '30 2 * * *'"
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise ConfigError(f"{where}.cron: {expr!r} is not a cron expression; write {hint}")
    from cronsim import CronSim, CronSimError

    try:
        next(CronSim(expr, datetime(2026, 1, 1, tzinfo=_zone(zone))))
    except CronSimError as exc:
        raise ConfigError(f"{where}.cron: {expr!r}: {one_line(str(exc)).lower()}; "
                          f"write {hint}") from None
    except StopIteration:
        raise ConfigError(f"{where}.cron: {expr!r} never matches a date; check the day and "
                          "month fields") from None
    return " ".join(expr.split())


def _schedule(name: str, body: object, where: str) -> Schedule:
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} must be a table with cron or every, and run; got "
                          f"{type(body).__name__}")
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown schedule field; known: "
                          f"{', '.join(sorted(FIELDS))}")
    if ("cron" in body) == ("every" in body):
        raise ConfigError(f"{where}: give exactly one of cron (e.g. '30 2 * * *') and every "
                          "(e.g. '15m')")
    if "run" not in body:
        raise ConfigError(f"{where}.run is required, e.g. 'workflow:report', "
                          "'action:debug.console' or 'event:reports.due'")
    kind, target = _target(body["run"], where)
    zone = _timezone(body, where)
    cron = every = None
    if "cron" in body:
        cron = _cron(body["cron"], zone, where)
    else:
        if "timezone" in body:
            raise ConfigError(f"{where}.timezone applies to cron only; every = ... counts "
                              "from the Unix epoch in UTC (remove timezone)")
        every = parse_duration(body["every"], what=f"{where}.every")
        if every < 1 or round(every * 1000) != every * 1000:
            raise ConfigError(f"{where}.every must be at least 1s in whole milliseconds, got "
                              f"{body['every']!r}")
    grace = _duration(body, "misfire_grace", where, DEFAULT_MISFIRE_GRACE)
    if not 0 < grace <= MAX_MISFIRE_GRACE:
        raise ConfigError(f"{where}.misfire_grace must be more than 0 and at most 7d, got "
                          f"{body['misfire_grace']!r}; a fire late by less still runs")
    coalesce = body.get("coalesce", "latest")
    if coalesce not in COALESCE:
        raise ConfigError(f"{where}.coalesce must be one of {', '.join(COALESCE)}, got "
                          f"{coalesce!r}")
    jitter = _duration(body, "jitter", where, 0.0)
    instances = body.get("max_instances", 1)
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise ConfigError(f"{where}.max_instances must be an integer >= 1, got {instances!r}")
    payload = body.get("payload", {})
    if kind == "event" and not isinstance(payload, Mapping):
        raise ConfigError(f"{where}.payload must be a table for an event target, got "
                          f"{type(payload).__name__}")
    template = compile_template(payload, f"{where}.payload", _check_schedule_ref)
    return Schedule(name, kind, target, template, cron=cron, every=every, timezone=zone,
                    misfire_grace=grace, coalesce=coalesce, jitter=jitter,
                    max_instances=instances)


def parse_schedules(section: Mapping[str, Any], *, origin: str = "") -> dict[str, Schedule]:
    """Validate every ``[schedules.<id>]`` table; ``ConfigError`` at the first problem.

    ``origin`` (the settings file) prefixes the message.
    """
    return parse_tables(section, kind="schedules", name="schedule", parse=_schedule,
                        max_length=_NAME_MAX, origin=origin)
