"""The composition layer: signatures, chain, group, chord, children, and flatten's graph."""

from __future__ import annotations

import pytest

from bananas.errors import InvalidJobError
from bananas.models import Priority
from bananas.workflows import (
    Chain,
    NodeKind,
    OnFailure,
    chain,
    chord,
    flatten,
    group,
    shape,
    task,
)


def names(graph, indexes):  # type: ignore[no-untyped-def]
    return [graph.nodes[i].spec.name for i in indexes]


def test_a_signature_is_a_validated_job_spec() -> None:
    sig = task("resize", {"w": 1}, routing_key="gpu", priority="high", max_retries=2, timeout=5)
    assert (sig.name, sig.payload, sig.routing_key, sig.priority) == (
        "resize",
        {"w": 1},
        "gpu",
        Priority.HIGH,
    )
    assert (sig.max_retries, sig.timeout) == (2, 5)
    for bad in (
        lambda: task(""),
        lambda: task("x", routing_key="no spaces"),
        lambda: task("x", priority="urgent"),
        lambda: task("x", timeout=-1),
        lambda: task("x", max_retries=-1),
        lambda: chain(),
        lambda: group([]),
        lambda: chain(task("a"), "b"),  # type: ignore[arg-type]
        lambda: chord(group(task("a")), task("b"), on_failure="ignore"),
    ):
        with pytest.raises(InvalidJobError):
            bad()


def test_a_chain_waits_step_by_step_and_returns_the_last_result() -> None:
    g = flatten(chain(task("a"), task("b"), task("c")))
    assert [n.deps for n in g.nodes] == [(), (0,), (1,)]
    assert g.roots == (0,)
    assert g.output == 2
    assert g.dependents == ((1,), (2,), ())
    # nested chains flatten; | builds a chain
    assert chain(chain(task("a"), task("b")), task("c")) == task("a") | task("b") | task("c")
    assert isinstance(task("a") | task("b"), Chain)


def test_a_group_runs_in_parallel_and_returns_the_list_in_member_order() -> None:
    g = flatten(group(task(f"m{i}") for i in range(3)))
    assert g.roots == (0, 1, 2)
    assert g.output == [0, 1, 2]
    assert shape(g.output, ["x", "y", "z"]) == ["x", "y", "z"]


def test_a_chord_callback_waits_for_every_member_and_receives_them_in_order() -> None:
    g = flatten(chord([task("m0"), task("m1"), task("m2")], task("sum")))
    cb = g.nodes[3]
    assert cb.deps == (0, 1, 2) and not cb.tolerate
    assert g.parents_of(3) == [0, 1, 2]
    assert g.output == 3
    marked = flatten(chord(group(task("m")), task("cb"), on_failure=OnFailure.MARK))
    assert marked.nodes[1].tolerate


def test_group_after_group_meets_at_a_join_so_edges_stay_linear() -> None:
    g = flatten(chain(group(task("a"), task("b")), group(task("c"), task("d")), task("e")))
    join = g.nodes[2]
    assert join.kind is NodeKind.JOIN and join.deps == (0, 1)
    assert [g.nodes[i].deps for i in (3, 4)] == [(2,), (2,)]
    # the join is expanded: c and d receive a's and b's results
    assert g.parents_of(3) == [0, 1]
    assert g.nodes[5].deps == (3, 4)
    n = 50
    big = flatten(chain(group(task("x") for _ in range(n)), group(task("y") for _ in range(n))))
    assert (
        sum(len(node.deps) for node in big.nodes) == 2 * n
    )  # the join waits for n, each of n waits for the join: not n * n


def test_nesting_a_group_of_chains_a_chord_in_a_chain() -> None:
    wf = chain(
        task("start"),
        group(chain(task("a1"), task("a2")), task("b")),
        chord(group(task("m1"), task("m2")), task("cb")),
        task("end"),
    )
    g = flatten(wf)
    by_name = {n.spec.name: n for n in g.nodes if n.spec}
    assert by_name["a1"].deps == (by_name["start"].index,)
    assert by_name["b"].deps == (by_name["start"].index,)
    # the chord's members follow a2 and b through one join
    m1 = by_name["m1"]
    (join,) = m1.deps
    assert g.nodes[join].kind is NodeKind.JOIN
    assert names(g, g.nodes[join].deps) == ["a2", "b"]
    assert names(g, by_name["cb"].deps) == ["m1", "m2"]
    assert names(g, by_name["end"].deps) == ["cb"]
    assert g.output == by_name["end"].index
    # a group of chains returns each chain's last result
    g2 = flatten(group(chain(task("a"), task("b")), chain(task("c"), task("d"))))
    assert names(g2, g2.output) == ["b", "d"]  # type: ignore[arg-type]


def test_parent_child_flows_any_tree_across_routing_keys() -> None:
    tree = task(
        "report",
        children=[
            task("fetch", routing_key="net"),
            task("render", routing_key="gpu", children=[task("load", routing_key="disk")]),
        ],
        on_child_failure="mark",
    )
    g = flatten(tree)
    by_name = {n.spec.name: n for n in g.nodes if n.spec}
    assert set(names(g, g.roots)) == {"fetch", "load"}
    assert names(g, by_name["render"].deps) == ["load"]
    assert names(g, by_name["report"].deps) == ["fetch", "render"]
    assert by_name["report"].tolerate and not by_name["render"].tolerate
    assert g.output == by_name["report"].index
    # a parent with children inside a chain: the children follow the previous step
    g2 = flatten(chain(task("prep"), task("p", children=[task("c1"), task("c2")])))
    by2 = {n.spec.name: n for n in g2.nodes if n.spec}
    assert names(g2, by2["c1"].deps) == ["prep"]
    assert names(g2, by2["p"].deps) == ["c1", "c2"]


def test_a_chord_callback_that_is_a_group_tolerates_through_its_join() -> None:
    g = flatten(chord(group(task("a"), task("b")), group(task("c"), task("d")), on_failure="mark"))
    join = g.nodes[2]
    assert join.kind is NodeKind.JOIN and join.tolerate
    assert not g.nodes[3].tolerate
