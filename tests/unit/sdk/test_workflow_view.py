"""``bananas workflow``'s tree: depth by longest path, marks, joins, cut-off values."""

from __future__ import annotations

from bananas.models import NodeKind, NodeState, WorkflowInfo, WorkflowNode, WorkflowStatus
from bananas.workflow_view import WIDTH, render


def test_the_tree_indents_by_depth_and_shows_joins_results_and_errors() -> None:
    nodes = [
        WorkflowNode(index=0, name="a", routing_key="cpu", state=NodeState.DONE, result=[1, 2]),
        WorkflowNode(index=1, name="b", routing_key="gpu", state=NodeState.DONE, result="x" * 100),
        WorkflowNode(index=2, kind=NodeKind.JOIN, state=NodeState.DONE, deps=[0, 1]),
        WorkflowNode(index=3, name="c", routing_key="cpu", state=NodeState.QUEUED, deps=[2]),
        WorkflowNode(
            index=4,
            name="d",
            routing_key="cpu",
            state=NodeState.DEAD,
            deps=[2],
            error="boom\nline two",
        ),
    ]
    info = WorkflowInfo(
        id="w1",
        name="nightly",
        status=WorkflowStatus.FAILED,
        nodes=nodes,
        error="boom",
        failed_node=4,
    )
    lines = render(info).splitlines()
    assert lines[0] == "workflow w1 failed (3/5 nodes done) nightly"
    assert lines[1] == "  failed at #4: boom"
    assert lines[2] == "✓ #0 a @cpu done  = [1,2]"
    assert lines[3].startswith('✓ #1 b @gpu done  = "xxx') and lines[3].endswith("…")
    assert len(lines[3].split("= ", 1)[1]) == WIDTH
    assert lines[4] == "  ✓ #2 (join) done after #0,#1"
    assert lines[5] == "    … #3 c @cpu queued after #2"
    assert lines[6] == "    ✗ #4 d @cpu dead after #2  error: boom line two"
