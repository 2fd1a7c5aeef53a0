"""The pure parts of the workflow store: the submit ARGV, the advance reply, the snapshot."""

from __future__ import annotations

import orjson

from bananas.models import NodeKind, NodeState, WorkflowStatus
from bananas.workflow_store import (
    TOMBSTONE_TTL_MS,
    NodeDefaults,
    ReadyNode,
    commit_argv,
    decode_workflow,
    node_job,
    node_spec,
    parse_advance,
    stage_argv,
)
from bananas.workflows import chain, chord, flatten, group, task

DEFAULTS = NodeDefaults(max_retries=3, success_ttl=10, failure_ttl=20, max_payload_bytes=1000)


def _nodes(argv: list[object]) -> list[list[object]]:
    assert argv[0] == TOMBSTONE_TTL_MS
    body = argv[1:]
    return [body[i : i + 7] for i in range(0, len(body), 7)]


def test_stage_argv_marks_the_dead_nodes_a_chord_tolerates() -> None:
    g = flatten(chain(chord([task("a"), task("b")], task("cb"), on_failure="mark"), task("end")))
    specs = {n.index: node_spec(n.spec, DEFAULTS) for n in g.nodes if n.spec}
    assert commit_argv(g, 5, DEFAULTS, "w") == [5, "3", 10000, 20000, "w", 4]
    rows = _nodes(stage_argv(g, specs, 0, 100))
    assert _nodes(stage_argv(g, specs, 1, 3)) == rows[1:3]
    # index, kind, tolerated when dead, deps, dependents, dependency count, spec
    assert [r[:6] for r in rows] == [
        [0, "task", "1", "", "2", 0],
        [1, "task", "1", "", "2", 0],
        [2, "task", "0", "0,1", "3", 2],
        [3, "task", "0", "2", "", 1],
    ]
    spec = orjson.loads(rows[0][6])  # type: ignore[arg-type]
    assert spec["max_retries"] == 3 and spec["routing_key"] == "default"


def test_a_join_has_no_spec() -> None:
    g = flatten(chain(group(task("a"), task("b")), group(task("c"), task("d"))))
    rows = _nodes(stage_argv(g, {}, 0, len(g.nodes)))
    assert rows[2][1] == "join" and rows[2][6] == ""


def test_parse_advance_reads_ready_nodes_and_their_parents() -> None:
    reply = ["running", 2, "3", "{}", 2, '"a"', "", "", "boom", "4", "{}", 0]
    adv = parse_advance(reply)
    assert adv.status is WorkflowStatus.RUNNING
    assert [r.node for r in adv.ready] == [3, 4]
    assert adv.ready[0].parents == [('"a"', ""), (None, "boom")]
    assert parse_advance(["missing"]).status is None


def test_a_released_node_becomes_a_job_with_its_parents() -> None:
    spec = node_spec(task("cb", {"x": 1}, routing_key="gpu", priority="high"), DEFAULTS)
    job = node_job("wf1", ReadyNode(7, spec, [("[1,2]", ""), (None, "boom")]), 1000.0)
    assert (job.id, job.routing_key, job.due_ms) == ("wf1:7", "gpu", 0)
    record = orjson.loads(job.record)
    assert record["parent_results"] == [[1, 2], None]
    assert record["parent_errors"] == ["", "boom"]
    assert (record["workflow_id"], record["node"], record["payload"]) == ("wf1", 7, {"x": 1})
    clean = orjson.loads(node_job("wf1", ReadyNode(1, spec, [("3", "")]), 0).record)
    assert clean["parent_errors"] == []


def test_decode_workflow_shapes_the_result_once_completed() -> None:
    def flat(d: dict[str, str]) -> list[str]:
        return [x for kv in d.items() for x in kv]

    meta = {"status": "completed", "total": "3", "output": "[0,[1,2]]", "created": "1000"}
    graph = {"deps:0": "", "deps:1": "0", "deps:2": "0", "join:9": "1"}
    specs = {
        str(i): orjson.dumps({"name": f"n{i}", "routing_key": "default"}).decode() for i in range(3)
    }
    state = {"0": "done", "1": "done", "2": "done"}
    results = {"0": "1", "1": '"x"', "2": "null"}
    info = decode_workflow(
        "w", [flat(meta), flat(graph), flat(specs), flat(state), flat(results), []]
    )
    assert info is not None
    assert info.result == [1, ["x", None]]
    assert [n.deps for n in info.nodes] == [[], [0], [0]]
    assert info.nodes[1].state is NodeState.DONE and info.nodes[1].kind is NodeKind.TASK
    assert info.nodes[2].job_id == "w:2"
    assert decode_workflow("w", []) is None
    assert decode_workflow("w", [["status", "abandoned"], [], [], [], [], []]) is None
