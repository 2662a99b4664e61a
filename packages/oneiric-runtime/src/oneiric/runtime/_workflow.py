"""Workflow definitions: ``Workflow`` and ``Node``, validated entirely before anything runs.

Three ways in - Python (``Workflow(...)``), a mapping (a TOML/YAML/JSON file
in the settings dir's ``workflows/``, a candidate's factory, a manifest
component's metadata) - and one validation: ids, needs, cycles (the message
names the cycle), templates whose ``${nodes.X.output...}`` must name an
upstream node, retries and timeouts.  Action keys are checked against the
resolver by the engine (``check_actions``), which is the only one that knows
them.  A valid definition has a stable ``definition_hash`` that gates resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from oneiric.core import ConfigError, RetryPolicy, validate_name
from oneiric.core.helpers import one_line, parse_duration

from ._errors import WorkflowDefinitionError
from ._template import Template, compile_template

__all__ = ["Node", "Workflow"]

_WORKFLOW_FIELDS = frozenset({"id", "version", "max_concurrency", "nodes"})
_NODE_FIELDS = frozenset({"id", "action", "needs", "input", "retry", "timeout"})


def _fail(message: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(message)


def _name(value: object, what: str) -> str:
    try:
        return validate_name(value, what)
    except Exception as exc:
        raise _fail(one_line(exc)) from None


@dataclass(frozen=True, slots=True, init=False)
class Node:
    """One step: invoke ``action`` with ``input`` once every node in ``needs`` succeeded.

    ``input`` may reference ``${input.path}`` (the run's input) and
    ``${nodes.<id>.output.path}`` (an upstream node's output).
    """

    id: str
    action: str
    needs: tuple[str, ...]
    input: Any
    retry: RetryPolicy | None
    timeout: float | None

    def __init__(
        self,
        id: str,
        action: str,
        *,
        needs: Iterable[str] = (),
        input: Any = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | str | None = None,
    ) -> None:
        where = f"node {id!r}"
        _name(id, "node id")
        _name(action, f"{where} action")
        if isinstance(needs, str) or not isinstance(needs, Iterable):
            raise _fail(f"{where}: needs must be a list of node ids, got {needs!r}")
        needs = tuple(needs)
        for need in needs:
            _name(need, f"{where} needs entry")
        if retry is not None and not isinstance(retry, RetryPolicy):
            try:
                retry = RetryPolicy.from_mapping(retry, where=f"{where}.retry")
            except ConfigError as exc:
                raise _fail(str(exc)) from None
        seconds: float | None = None
        if timeout is not None:
            try:
                seconds = parse_duration(timeout, what=f"{where}.timeout")
            except ConfigError as exc:
                raise _fail(str(exc)) from None
            if seconds <= 0:
                raise _fail(f"{where}.timeout must be > 0, got {timeout!r}")
        set_ = object.__setattr__
        set_(self, "id", id)
        set_(self, "action", action)
        set_(self, "needs", needs)
        set_(self, "input", input)
        set_(self, "retry", retry)
        set_(self, "timeout", seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "needs": list(self.needs),
                "input": self.input,
                "retry": self.retry.as_dict() if self.retry else None,
                "timeout": self.timeout}


@dataclass(frozen=True, slots=True, init=False)
class Workflow:
    """A validated DAG of ``Node``s; ``Workflow.from_mapping`` reads the file shape."""

    id: str
    nodes: tuple[Node, ...]
    version: int
    max_concurrency: int | None
    order: tuple[str, ...] = field(compare=False, repr=False)  # a topological order
    upstream: Mapping[str, frozenset[str]] = field(compare=False, repr=False)
    children: Mapping[str, tuple[str, ...]] = field(compare=False, repr=False)
    by_id: Mapping[str, Node] = field(compare=False, repr=False)
    templates: Mapping[str, Template] = field(compare=False, repr=False)
    _hash: str | None = field(compare=False, repr=False)  # definition_hash(), once

    def __init__(
        self,
        id: str,
        nodes: Iterable[Node],
        *,
        version: int = 1,
        max_concurrency: int | None = None,
    ) -> None:
        _name(id, "workflow id")
        where = f"workflow {id!r}"
        nodes = tuple(nodes)
        if not nodes:
            raise _fail(f"{where} has no nodes; give at least one")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _fail(f"{where}: version must be an integer >= 1, got {version!r}")
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise _fail(f"{where}: max_concurrency must be an integer >= 1, got "
                        f"{max_concurrency!r}")
        by_id: dict[str, Node] = {}
        for node in nodes:
            if not isinstance(node, Node):
                raise _fail(f"{where}: nodes must be Node objects, got {type(node).__name__}")
            if node.id in by_id:
                raise _fail(f"{where}: duplicate node id {node.id!r}; node ids are unique")
            by_id[node.id] = node
        for node in nodes:
            if node.id in node.needs:
                raise _fail(f"{where}: node {node.id!r} needs itself")
            missing = [n for n in node.needs if n not in by_id]
            if missing:
                raise _fail(f"{where}: node {node.id!r} needs {missing[0]!r}, which is not a "
                            f"node (nodes: {', '.join(sorted(by_id))})")
        order = _topological(by_id, where)
        upstream: dict[str, frozenset[str]] = {}
        for node_id in order:
            needs = by_id[node_id].needs
            upstream[node_id] = frozenset(needs).union(*(upstream[n] for n in needs))
        templates = {n.id: _compile(n, upstream[n.id], by_id, where) for n in nodes}
        children: dict[str, list[str]] = {n: [] for n in order}
        for node_id in order:
            for need in by_id[node_id].needs:
                children[need].append(node_id)
        set_ = object.__setattr__
        set_(self, "id", id)
        set_(self, "nodes", nodes)
        set_(self, "version", version)
        set_(self, "max_concurrency", max_concurrency)
        set_(self, "order", order)
        set_(self, "upstream", upstream)
        set_(self, "children", {n: tuple(c) for n, c in children.items()})
        set_(self, "by_id", by_id)
        set_(self, "templates", templates)
        set_(self, "_hash", None)

    @classmethod
    def from_mapping(cls, data: Any, *, where: str = "workflow") -> Workflow:
        """The file shape: ``id``, ``version``, ``max_concurrency``, ``nodes[]``."""
        if not isinstance(data, Mapping):
            raise _fail(f"{where} must be a table with id and nodes, got {type(data).__name__}")
        unknown = sorted(set(data) - _WORKFLOW_FIELDS)
        if unknown:
            raise _fail(f"{where}: unknown field {unknown[0]!r}; known: "
                        f"{', '.join(sorted(_WORKFLOW_FIELDS))}")
        if "id" not in data:
            raise _fail(f"{where}: id is required")
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list | tuple):
            raise _fail(f"{where}: nodes must be an array of node tables")
        nodes = []
        for index, raw in enumerate(raw_nodes):
            at = f"{where}.nodes[{index}]"
            if not isinstance(raw, Mapping):
                raise _fail(f"{at} must be a table with id and action")
            unknown = sorted(set(raw) - _NODE_FIELDS)
            if unknown:
                raise _fail(f"{at}: unknown field {unknown[0]!r}; known: "
                            f"{', '.join(sorted(_NODE_FIELDS))}")
            for required in ("id", "action"):
                if required not in raw:
                    raise _fail(f"{at}: {required} is required")
            nodes.append(Node(raw["id"], raw["action"], needs=raw.get("needs", ()),
                              input=raw.get("input"), retry=raw.get("retry"),
                              timeout=raw.get("timeout")))
        return cls(data["id"], nodes, version=data.get("version", 1),
                   max_concurrency=data.get("max_concurrency"))

    def node(self, node_id: str) -> Node:
        return self.by_id[node_id]

    def descendants(self, node_id: str) -> frozenset[str]:
        return frozenset(n for n, up in self.upstream.items() if node_id in up)

    def check_actions(self, known: Iterable[str]) -> None:
        """Every node's action is a registered action key (else the nodes that are not)."""
        keys = set(known)
        unknown = [(n.id, n.action) for n in self.nodes if n.action not in keys]
        if unknown:
            listed = ", ".join(f"{node!r} -> {action!r}" for node, action in unknown[:5])
            raise _fail(f"workflow {self.id!r}: unknown action key for node {listed}; "
                        "register the action or fix the key (oneiric action list)")

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "max_concurrency": self.max_concurrency,
                "nodes": [n.as_dict() for n in self.nodes]}

    def definition_hash(self) -> str:
        """SHA-256 of the canonical JSON definition: a resume is refused when it changed.

        Computed once (every run records it; hashing a 100-node definition costs
        more than running a node): the definition is fixed when it is built -
        the templates were compiled from the node inputs then.
        """
        if self._hash is None:
            text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), default=str)
            object.__setattr__(self, "_hash", hashlib.sha256(text.encode()).hexdigest())
        assert self._hash is not None
        return self._hash


def _topological(by_id: Mapping[str, Node], where: str) -> tuple[str, ...]:
    """Kahn's algorithm in definition order; a cycle is reported with its path."""
    indegree = {n: len(node.needs) for n, node in by_id.items()}
    children: dict[str, list[str]] = {n: [] for n in by_id}
    for n, node in by_id.items():
        for need in node.needs:
            children[need].append(n)
    ready = [n for n in by_id if indegree[n] == 0]
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for child in children[current]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(by_id):
        raise _fail(f"{where}: cycle {' -> '.join(_cycle(by_id, set(by_id) - set(order)))}; "
                    "a workflow is a DAG")
    return tuple(order)


def _cycle(by_id: Mapping[str, Node], left: set[str]) -> list[str]:
    """One cycle among the nodes Kahn could not order (each has a need among them)."""
    start = sorted(left)[0]
    path = [start]
    seen = {start: 0}
    current = start
    while True:
        current = sorted(n for n in by_id[current].needs if n in left)[0]
        if current in seen:
            cycle = [*path[seen[current]:], current]
            return list(reversed(cycle))
        seen[current] = len(path)
        path.append(current)


def _compile(node: Node, upstream: frozenset[str], by_id: Mapping[str, Node],
             where: str) -> Template:
    def check(path: tuple[str, ...]) -> str | None:
        root = path[0]
        if root == "input":
            return None
        if root == "nodes":
            if len(path) < 3 or path[2] != "output":
                return "write ${nodes.<id>.output} or ${nodes.<id>.output.<path>}"
            target = path[1]
            if target not in by_id:
                return f"no node {target!r}"
            if target not in upstream:
                return (f"node {target!r} is not upstream of {node.id!r}; add it to needs "
                        "(directly or through another node)")
            return None
        return "references start with input or nodes"

    try:
        return compile_template(node.input, f"{where} node {node.id!r} input", check)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
