"""``plan(workflow)``: the order, the levels and the critical path, as text, JSON or Mermaid.

Levels are for reading only - the engine has no level barrier (a node starts
as soon as its needs finish) - but they show the width a run can reach and
the critical path shows the longest chain of nodes no concurrency can
shorten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._workflow import Workflow

__all__ = ["Plan", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    workflow: Workflow
    levels: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]

    @property
    def order(self) -> tuple[str, ...]:
        return self.workflow.order

    def as_dict(self) -> dict[str, Any]:
        wf = self.workflow
        return {
            "id": wf.id,
            "version": wf.version,
            "definition_hash": wf.definition_hash(),
            "max_concurrency": wf.max_concurrency,
            "order": list(self.order),
            "levels": [list(level) for level in self.levels],
            "critical_path": list(self.critical_path),
            "nodes": {n.id: {"action": n.action, "needs": list(n.needs)} for n in wf.nodes},
        }

    def as_text(self) -> str:
        wf = self.workflow
        lines = [f"workflow {wf.id} v{wf.version}: {len(wf.nodes)} nodes, "
                 f"{len(self.levels)} levels, widest {max(len(lv) for lv in self.levels)}"]
        for index, level in enumerate(self.levels):
            for node_id in level:
                node = wf.node(node_id)
                needs = f" <- {', '.join(node.needs)}" if node.needs else ""
                mark = "*" if node_id in self.critical_path else " "
                lines.append(f" {mark}L{index} {node_id} [{node.action}]{needs}")
        lines.append(f"critical path ({len(self.critical_path)}): "
                     + " -> ".join(self.critical_path))
        return "\n".join(lines)

    def as_mermaid(self) -> str:
        wf = self.workflow
        ids = {n.id: f"n{i}" for i, n in enumerate(wf.nodes)}
        lines = ["flowchart TD"]
        for node in wf.nodes:
            label = f"{node.id}<br/>{node.action}".replace('"', "'")
            lines.append(f'    {ids[node.id]}["{label}"]')
        for node in wf.nodes:
            for need in node.needs:
                lines.append(f"    {ids[need]} --> {ids[node.id]}")
        critical = [ids[n] for n in self.critical_path]
        if critical:
            lines.append("    classDef critical stroke-width:3px")
            lines.append(f"    class {','.join(critical)} critical")
        return "\n".join(lines)


def plan(workflow: Workflow) -> Plan:
    depth: dict[str, int] = {}
    best: dict[str, tuple[int, str | None]] = {}  # longest chain ending here, its predecessor
    for node_id in workflow.order:
        node = workflow.node(node_id)
        depth[node_id] = 1 + max((depth[n] for n in node.needs), default=-1)
        length, parent = 1, None
        for need in sorted(node.needs):
            if best[need][0] + 1 > length:
                length, parent = best[need][0] + 1, need
        best[node_id] = (length, parent)
    levels: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node_id in workflow.order:
        levels[depth[node_id]].append(node_id)
    end = max(workflow.order, key=lambda n: (best[n][0], -workflow.order.index(n)))
    path: list[str] = []
    current: str | None = end
    while current is not None:
        path.append(current)
        current = best[current][1]
    return Plan(workflow, tuple(tuple(level) for level in levels), tuple(reversed(path)))
