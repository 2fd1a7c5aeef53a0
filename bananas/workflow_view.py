"""A workflow as text for a terminal: ``bananas workflow ID``.

Nodes are numbered so that every node comes after the nodes it waits for, so the
view prints them in that order, indented by their depth (the longest path from a
root), each with what it waits for, its state, and its result or error cut to one
line. Joins (``workflows.NodeKind.JOIN``) are shown as ``(join)``: they run no job.
"""

from __future__ import annotations

import orjson

from bananas.models import NodeState, WorkflowInfo, WorkflowStatus

__all__ = ["render"]

#: Characters of a result or error shown per node.
WIDTH = 60

_MARK = {
    NodeState.WAITING: "·",
    NodeState.QUEUED: "…",
    NodeState.DONE: "✓",
    NodeState.DEAD: "✗",
    NodeState.CANCELLED: "-",
}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def render(info: WorkflowInfo) -> str:
    """The tree view of ``info`` (no trailing newline)."""
    done = sum(1 for n in info.nodes if n.state is NodeState.DONE)
    head = f"workflow {info.id} {info.status.value} ({done}/{len(info.nodes)} nodes done)"
    if info.name:
        head += f" {info.name}"
    lines = [head]
    if info.status is WorkflowStatus.FAILED and info.failed_node is not None:
        lines.append(f"  failed at #{info.failed_node}: {_short(info.error)}")
    depth: list[int] = []
    for node in info.nodes:
        depth.append(1 + max((depth[d] for d in node.deps), default=-1))
        label = "(join)" if not node.name else f"{node.name} @{node.routing_key}"
        line = f"{'  ' * depth[-1]}{_MARK[node.state]} #{node.index} {label} {node.state.value}"
        if node.deps:
            line += " after " + ",".join(f"#{d}" for d in node.deps)
        if node.error:
            line += f"  error: {_short(node.error)}"
        elif node.state is NodeState.DONE and node.name:
            line += f"  = {_short(orjson.dumps(node.result).decode())}"
        lines.append(line)
    return "\n".join(lines)
