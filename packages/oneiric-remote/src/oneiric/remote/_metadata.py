"""Spec 1.1 component ``metadata``: its shape per domain and what it may reference.

Why here and not in the runtime: a delivered subscription, workflow, schedule or
automation is *data* that later makes the runtime invoke actions, emit on topics
and run workflows.  Which of those a source may reach is a trust decision
(``RemoteSource.allowed_actions``), so it is checked with the rest of the scope,
at sync, before anything is staged or committed - and without importing a
runtime package.  The runtime validates its own shapes fully when it reads them;
this module refuses only what ARCHITECTURE.md §11 states explicitly, and extracts
every reference conservatively.

References are typed, as a schedule's ``run`` already is: ``action:<key>``,
``workflow:<id>``, ``event:<topic>``.  An ``allowed_actions`` pattern is
``[kind:]glob`` where a bare glob means an action key and the glob is ``name``
(exactly that), ``name.*`` (anything under ``name.``, not ``name`` itself) or
``*``; a bare ``*`` admits every kind.  The dispatching kits
(``workflow.orchestrate``, ``event.dispatch``, ``task.schedule``,
``automation.trigger``) take their target in their input, so they reach any
workflow, topic or schedule: only a pattern naming one exactly admits it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn

from oneiric.core import ConfigError
from oneiric.core.helpers import is_topic, is_topic_pattern

__all__ = [
    "DISPATCHING_ACTIONS",
    "MAX_METADATA_BYTES",
    "RESERVED_KEYS",
    "Reference",
    "admitted",
    "check_metadata",
    "check_patterns",
    "freeze",
    "references",
]

#: canonical JSON size limit of one component's metadata (REMOTE.md spec 1.1)
MAX_METADATA_BYTES = 64 * 1024
#: keys oneiric-remote itself writes into ``Candidate.metadata`` (provenance, the veto reason)
RESERVED_KEYS = frozenset({"manifest_url", "artifact", "sha256", "unavailable"})
#: action kits whose input names the workflow, topic or schedule they reach
DISPATCHING_ACTIONS = frozenset(
    {"workflow.orchestrate", "event.dispatch", "task.schedule", "automation.trigger"}
)
_KINDS = ("action", "workflow", "event")

# every regex is applied with ``fullmatch`` (``$`` would accept a trailing newline)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.ASCII)
_SEGMENT = r"[a-z0-9_-]+"
_GLOB = {
    "action": re.compile(r"\*|[a-z0-9][a-z0-9_.-]{0,63}(\.\*)?", re.ASCII),
    "workflow": re.compile(r"\*|[a-z0-9][a-z0-9_.-]{0,63}(\.\*)?", re.ASCII),
    "event": re.compile(rf"\*|{_SEGMENT}(\.{_SEGMENT})*(\.\*)?", re.ASCII),
}

# ARCHITECTURE.md §11 names these fields explicitly; anything else is refused
_SUBSCRIPTION_FIELDS = frozenset({
    "topics", "filter", "priority", "group", "failover", "max_concurrency", "timeout",
    "retry", "idempotent",
})
_RETRY_FIELDS = frozenset({
    "max_attempts", "initial", "multiplier", "max_interval", "jitter", "retry_on",
    "non_retryable",
})
_FILTER_TESTS = frozenset({"equals", "any_of", "exists"})
_WORKFLOW_FIELDS = frozenset({"id", "version", "max_concurrency", "nodes"})
_NODE_FIELDS = frozenset({"id", "action", "needs", "input", "retry", "timeout"})
_SCHEDULE_FIELDS = frozenset({
    "cron", "every", "timezone", "run", "payload", "misfire_grace", "coalesce", "jitter",
    "max_instances",
})
_COALESCE = ("latest", "all", "skip")
# automations have no shape in §11 yet: any key; these name what they reach, at any depth
_AUTOMATION_REFS = {
    "run": "run", "action": "action", "actions": "action", "workflow": "workflow",
    "workflows": "workflow", "topic": "event", "topics": "event", "on": "event",
    "emit": "event",
}


@dataclass(frozen=True, slots=True)
class Reference:
    """Something delivered metadata makes the runtime reach: ``kind:name`` at ``where``."""

    kind: str  # action | workflow | event
    name: str
    where: str  # the field path inside the metadata, for the error message

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


# ------------------------------------------------------------------- shape


def _fail(where: str, problem: str) -> NoReturn:
    raise ValueError(f"metadata.{where} {problem}")


def _only(doc: Mapping[str, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        prefix = f"metadata.{where}" if where else "metadata"
        raise ValueError(
            f"{prefix} has unknown field(s) {', '.join(unknown)} for {what} "
            f"(known: {', '.join(sorted(allowed))})"
        )


def _typed(doc: Mapping[str, Any], where: str, **types: type | tuple[type, ...]) -> None:
    for name, expected in types.items():
        if name not in doc:
            continue
        value = doc[name]
        wanted = expected if isinstance(expected, tuple) else (expected,)
        if (bool not in wanted and isinstance(value, bool)) or not isinstance(value, wanted):
            names = " or ".join({int: "an integer", str: "a string", bool: "a boolean",
                                 dict: "an object", list: "an array"}[t] for t in wanted)
            _fail(f"{where}{name}", f"must be {names}, got {value!r}")


def _retry(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        _fail(where, "must be an object of RetryPolicy fields")
    _only(value, _RETRY_FIELDS, where, "a retry policy")


def _subscription(doc: Mapping[str, Any]) -> None:
    _only(doc, _SUBSCRIPTION_FIELDS, "", "an event subscription")
    topics = doc.get("topics")
    if not isinstance(topics, list) or not topics:
        _fail("topics", "must be a non-empty array of topic patterns like 'orders.created'")
    for index, topic in enumerate(topics):
        if not is_topic_pattern(topic):
            _fail(f"topics[{index}]", f"{topic!r} is not a topic pattern (dot-separated "
                  "[a-z0-9_-] segments, '*' for one segment, a trailing '#' for the rest)")
    _typed(doc, "", priority=int, group=str, failover=bool, max_concurrency=int,
           timeout=(int, str), idempotent=bool)
    filters = doc.get("filter")
    if filters is not None:
        if not isinstance(filters, dict):
            _fail("filter", "must be an object mapping field paths to one test")
        for path, test in filters.items():
            if not isinstance(test, dict) or len(test) != 1 or set(test) - _FILTER_TESTS:
                _fail(f"filter.{path}", "must be one test: {'equals': v}, {'any_of': [...]} "
                      "or {'exists': bool}")
    if "retry" in doc:
        _retry(doc["retry"], "retry")


def _workflow(doc: Mapping[str, Any], key: str) -> None:
    _only(doc, _WORKFLOW_FIELDS, "", "a workflow definition")
    if "id" in doc and doc["id"] != key:
        _fail("id", f"{doc['id']!r} must equal the component key {key!r} (the workflow id)")
    _typed(doc, "", version=int, max_concurrency=int)
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        _fail("nodes", "must be an array of nodes")
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        if not isinstance(node, dict):
            _fail(where, "must be an object with id and action")
        _only(node, _NODE_FIELDS, where, "a workflow node")
        for name in ("id", "action"):
            if not isinstance(node.get(name), str) or not _NAME.fullmatch(node[name]):
                _fail(f"{where}.{name}", f"must be a name like 'http.fetch', got "
                      f"{node.get(name)!r}")
        needs = node.get("needs", [])
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            _fail(f"{where}.needs", "must be an array of node ids")
        _typed(node, f"{where}.", timeout=(int, str))
        if "retry" in node:
            _retry(node["retry"], f"{where}.retry")


def _run_target(value: Any, where: str) -> Reference:
    """A schedule's ``run``: ``workflow:<id>``, ``action:<key>`` or ``event:<topic>``."""
    kind, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    valid = sep and (is_topic(name) if kind == "event" else _NAME.fullmatch(name))
    if kind not in _KINDS or not valid:
        _fail(where, f"{value!r} must be 'workflow:<id>', 'action:<key>' or 'event:<topic>'")
    return Reference(kind, name, where)


def _schedule(doc: Mapping[str, Any]) -> None:
    _only(doc, _SCHEDULE_FIELDS, "", "a schedule")
    if "cron" in doc and "every" in doc:
        _fail("every", "and cron are exclusive; keep one")
    _typed(doc, "", cron=str, every=(int, str), timezone=str, misfire_grace=(int, str),
           coalesce=str, jitter=(int, str), max_instances=int)
    if "coalesce" in doc and doc["coalesce"] not in _COALESCE:
        _fail("coalesce", f"{doc['coalesce']!r} must be one of {', '.join(_COALESCE)}")
    if "run" in doc:
        _run_target(doc["run"], "run")


def check_metadata(domain: str, key: str, metadata: Any) -> dict[str, Any]:
    """Validate one component's metadata (``ValueError``, one line); returns it unchanged.

    Size and the canonical subset first (the payload parser already enforced the
    subset on the wire; this also covers documents built in Python), then the
    shape where §11 defines one: ``event`` (a subscription), ``workflow`` (a
    definition), ``task`` (a schedule).  Other domains are free-form.
    """
    from ._canonical import canonical
    from ._errors import ManifestFormatError

    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    try:
        size = len(canonical(metadata))
    except ManifestFormatError as exc:
        raise ValueError(str(exc).replace("$", "metadata", 1)) from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {size} bytes of canonical JSON, above the limit of "
            f"{MAX_METADATA_BYTES}; deliver large data as an artifact"
        )
    reserved = sorted(RESERVED_KEYS & set(metadata))
    if reserved:
        raise ValueError(
            f"metadata uses reserved key(s) {', '.join(reserved)} that oneiric-remote sets "
            "itself (provenance); rename them"
        )
    if domain == "event":
        _subscription(metadata)
    elif domain == "workflow":
        _workflow(metadata, key)
    elif domain == "task":
        _schedule(metadata)
    return metadata


# -------------------------------------------------------------- references


def _walk(value: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """Every ``(field name, path, value)`` in a JSON tree."""
    if isinstance(value, dict):
        for name, item in value.items():
            path = f"{where}.{name}" if where else str(name)
            yield str(name), path, item
            yield from _walk(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]")


def _strings(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")
    elif not isinstance(value, dict):  # objects are walked by ``_walk`` itself
        yield where, value


def references(domain: str, metadata: Mapping[str, Any]) -> list[Reference]:
    """What a component's (already shape-checked) metadata reaches."""
    refs: list[Reference] = []
    if domain == "event":
        refs += [Reference("event", t, f"topics[{i}]") for i, t in enumerate(metadata["topics"])]
    elif domain == "workflow":
        refs += [Reference("action", n["action"], f"nodes[{i}].action")
                 for i, n in enumerate(metadata["nodes"])]
    elif domain == "task":
        if "run" in metadata:
            refs.append(_run_target(metadata["run"], "run"))
    elif domain == "automation":
        for name, path, value in _walk(metadata, ""):
            kind = _AUTOMATION_REFS.get(name)
            if kind is None:
                continue
            for where, item in _strings(value, path):
                text = item if isinstance(item, str) else repr(item)
                if kind == "run":
                    target, sep, rest = text.partition(":")
                    refs.append(Reference(target, rest, where) if sep and target in _KINDS
                                else Reference("action", text, where))
                else:
                    refs.append(Reference(kind, text, where))
    return refs


# ---------------------------------------------------------------- patterns


def check_patterns(patterns: Sequence[Any]) -> tuple[str, ...]:
    """Validate ``allowed_actions`` (``ConfigError``, one line)."""
    for pattern in patterns:
        kind, sep, glob = pattern.partition(":") if isinstance(pattern, str) else ("", "", "")
        if not sep:
            kind, glob = "action", kind
        regex = _GLOB.get(kind)
        if not isinstance(pattern, str) or regex is None or not regex.fullmatch(glob):
            raise ConfigError(
                f"allowed_actions pattern {pattern!r} must look like 'http.fetch', 'http.*', "
                "'workflow:nightly', 'workflow:*', 'event:orders.*' or '*'"
            )
    return tuple(patterns)


def _topic_within(topic: str, prefix: str) -> bool:
    """Every topic ``topic`` (a subscription pattern) matches starts with ``prefix.``.

    Segments before the first wildcard must equal ``prefix``'s and at least one
    more segment must follow (``*`` is one segment, a trailing ``#`` the rest).
    """
    head = prefix.split(".")
    parts = topic.split(".")
    return len(parts) > len(head) and parts[: len(head)] == head


def _glob_admits(glob: str, ref: Reference) -> bool:
    if glob == "*":
        return True
    if not glob.endswith(".*"):
        return ref.name == glob
    prefix = glob[:-2]
    if ref.kind == "event":
        return _topic_within(ref.name, prefix)
    return ref.name.startswith(prefix + ".")


def admitted(patterns: Sequence[str], ref: Reference) -> bool:
    """Whether ``allowed_actions`` admits ``ref``."""
    dispatching = ref.kind == "action" and ref.name in DISPATCHING_ACTIONS
    for pattern in patterns:
        kind, sep, glob = pattern.partition(":")
        if not sep:
            kind, glob = ("*" if pattern == "*" else "action"), pattern
        if kind not in ("*", ref.kind):
            continue
        if dispatching:
            if glob == ref.name:
                return True
        elif _glob_admits(glob, ref):
            return True
    return False


# ------------------------------------------------------------------ freeze


def freeze(value: Any) -> Any:
    """A read-only copy: objects become ``MappingProxyType``, arrays tuples.

    ``Candidate`` freezes only the top level of its metadata; what a manifest
    delivered must not be changed in place by one consumer for all the others.
    """
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value
