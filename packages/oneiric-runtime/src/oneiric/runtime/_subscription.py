"""``Subscription``: which topics a handler takes, its filter, group, bounds and retries.

The same fields come from three places - ``dispatcher.subscribe(...)``,
candidate ``metadata`` of domain ``event`` (a plugin's entry point or a
settings file) and a remote manifest's component metadata (REMOTE.md spec
1.1) - and are validated here, once, into one frozen value.  ``route`` needs
*why* a filter did not match, so a filter answers with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oneiric.core import ConfigError, RetryPolicy, validate_name
from oneiric.core.helpers import is_topic_pattern, one_line, parse_duration, topic_matcher

from ._errors import SubscriptionError

__all__ = ["FIELDS", "Filter", "Subscription"]

#: The subscription fields of ARCHITECTURE §11 (candidate metadata uses the same names).
FIELDS = frozenset({
    "topics", "filter", "priority", "group", "failover", "max_concurrency", "timeout",
    "retry", "idempotent",
})
_MISSING = object()


def _lookup(payload: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


@dataclass(frozen=True, slots=True)
class Filter:
    """All tests must hold: ``{"order.region": {"equals": "us"}}``, ``any_of``, ``exists``.

    Paths are dotted keys into the payload (``order.region``).
    """

    tests: tuple[tuple[str, str, Any], ...]  # (path, test, operand)

    @classmethod
    def parse(cls, spec: object, where: str) -> Filter:
        if not isinstance(spec, Mapping) or not spec:
            raise SubscriptionError(
                f"{where}.filter must be an object of field path -> test, e.g. "
                "{\"order.region\": {\"equals\": \"us\"}}"
            )
        tests: list[tuple[str, str, Any]] = []
        for path, test in spec.items():
            if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
                raise SubscriptionError(f"{where}.filter: {path!r} is not a dotted field path")
            if not isinstance(test, Mapping) or len(test) != 1:
                raise SubscriptionError(
                    f"{where}.filter.{path} must be one test: equals, any_of or exists"
                )
            ((kind, operand),) = test.items()
            if kind == "any_of" and not isinstance(operand, list | tuple):
                raise SubscriptionError(f"{where}.filter.{path}.any_of must be an array")
            if kind == "exists" and not isinstance(operand, bool):
                raise SubscriptionError(f"{where}.filter.{path}.exists must be true or false")
            if kind not in ("equals", "any_of", "exists"):
                raise SubscriptionError(
                    f"{where}.filter.{path}: unknown test {kind!r}; use equals, any_of or exists"
                )
            tests.append((path, kind, tuple(operand) if kind == "any_of" else operand))
        return cls(tuple(tests))

    def check(self, payload: Mapping[str, Any]) -> str | None:
        """``None`` when every test holds, else why not (``route`` shows it)."""
        for path, kind, operand in self.tests:
            value = _lookup(payload, tuple(path.split(".")))
            if kind == "exists":
                if (value is not _MISSING) != operand:
                    return f"filter {path}: " + ("missing" if operand else "present")
            elif value is _MISSING:
                return f"filter {path}: missing"
            elif kind == "equals" and not _same(value, operand):
                return f"filter {path}: {value!r} is not {operand!r}"
            elif kind == "any_of" and not any(_same(value, o) for o in operand):
                return f"filter {path}: {value!r} is not any of {list(operand)!r}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {path: {kind: list(op) if kind == "any_of" else op}
                for path, kind, op in self.tests}


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` never equals ``1``; ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One handler's subscription; ``group`` defaults to the handler's name."""

    name: str
    topics: tuple[str, ...]
    filter: Filter | None = None
    priority: int = 0
    group: str = ""
    failover: bool = False
    max_concurrency: int | None = None
    timeout: float | None = None
    retry: RetryPolicy | None = None
    idempotent: bool = False

    def matcher(self) -> Callable[[str], bool]:
        matchers = [topic_matcher(t) for t in self.topics]
        if len(matchers) == 1:
            return matchers[0]
        return lambda topic: any(m(topic) for m in matchers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topics": list(self.topics),
            "filter": self.filter.as_dict() if self.filter else None,
            "priority": self.priority,
            "group": self.group,
            "failover": self.failover,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "retry": self.retry.as_dict() if self.retry else None,
            "idempotent": self.idempotent,
        }

    @classmethod
    def from_fields(cls, name: str, fields: Mapping[str, Any], *, where: str = "") -> Subscription:
        """Validate subscription ``fields`` (metadata or keyword arguments) for handler ``name``.

        ``SubscriptionError`` (a ``ConfigError``) in one line naming the field.
        """
        where = where or f"event handler {name!r}"
        try:
            validate_name(name, "event handler")
        except Exception as exc:
            raise SubscriptionError(f"{where}: {one_line(exc)}") from None
        unknown = sorted(set(fields) - FIELDS)
        if unknown:
            raise SubscriptionError(
                f"{where}: unknown subscription field {unknown[0]!r}; "
                f"known: {', '.join(sorted(FIELDS))}"
            )
        topics = fields.get("topics")
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list | tuple) or not topics:
            raise SubscriptionError(
                f"{where}.topics must be a non-empty list of topic patterns like 'orders.*'"
            )
        for topic in topics:
            if not is_topic_pattern(topic):
                raise SubscriptionError(
                    f"{where}.topics: {topic!r} is not a topic pattern (dot-separated "
                    "[a-z0-9_-] segments, '*' for one segment, a trailing '#' for the rest)"
                )

        def typed(field: str, kind: type, default: Any, check: Callable[[Any], bool],
                  wanted: str) -> Any:
            value = fields.get(field, default)
            if value is default:
                return default
            if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind) \
                    or not check(value):
                raise SubscriptionError(f"{where}.{field} must be {wanted}, got {value!r}")
            return value

        priority = typed("priority", int, 0, lambda v: True, "an integer")
        group = typed("group", str, None, lambda v: bool(v), "a non-empty string")
        if group is not None:
            try:
                validate_name(group, "group")
            except Exception as exc:
                raise SubscriptionError(f"{where}.group: {one_line(exc)}") from None
        failover = typed("failover", bool, False, lambda v: True, "true or false")
        idempotent = typed("idempotent", bool, False, lambda v: True, "true or false")
        bound = typed("max_concurrency", int, None, lambda v: v >= 1, "an integer >= 1")
        timeout: float | None = None
        if fields.get("timeout") is not None:
            try:
                timeout = parse_duration(fields["timeout"], what=f"{where}.timeout")
            except ConfigError as exc:
                raise SubscriptionError(str(exc)) from None
            if timeout <= 0:
                raise SubscriptionError(f"{where}.timeout must be > 0, got {fields['timeout']!r}")
        retry = fields.get("retry")
        if retry is not None and not isinstance(retry, RetryPolicy):
            try:
                retry = RetryPolicy.from_mapping(retry, where=f"{where}.retry")
            except ConfigError as exc:
                raise SubscriptionError(str(exc)) from None
        filter_spec = fields.get("filter")
        return cls(
            name=name,
            topics=tuple(topics),
            filter=Filter.parse(filter_spec, where) if filter_spec is not None else None,
            priority=priority,
            group=group or name,
            failover=failover,
            max_concurrency=bound,
            timeout=timeout,
            retry=retry,
            idempotent=idempotent,
        )
