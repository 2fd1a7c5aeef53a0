"""Workflows as data: signatures, chain, group, chord, and their flattening to a graph.

A *signature* (:func:`task`) is a job spec that is not yet submitted. Signatures
compose: :func:`chain` runs steps one after another, :func:`group` runs members in
parallel, :func:`chord` runs a group and then one callback, and a signature may
declare ``children`` (a parent/child flow: the parent is queued once every child
finished). Compositions nest freely: a chain of groups, a group of chains, a chord
inside a chain.

Nothing here does I/O. :func:`flatten` turns a composition into a :class:`Graph`:
numbered nodes, each with the nodes it waits for (``deps``), which the client stores
in Redis in one script and the workers walk with ``workflow_advance``
(``docs/architecture.md``, "Workflows", describes the protocol).

Two rules keep the graph O(members):

- A group that follows several nodes (``chain(group(a, b), group(c, d))``) would need
  an edge from each of the first to each of the second; a *join* node sits between
  them instead (it runs no job: it completes in the advance script the moment its
  last dependency does).
- The terminals of a composition (the nodes a following step waits for) are always
  task nodes, so a step's ``parent_results`` are its dependencies' results, with a
  join expanded to the joined nodes' results, never deeper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from bananas.errors import InvalidJobError
from bananas.models import NodeKind, Priority
from bananas.validation import (
    validate_job_name,
    validate_non_negative,
    validate_priority,
    validate_routing_key,
)

__all__ = [
    "Chain",
    "Chord",
    "Flow",
    "Graph",
    "Group",
    "Node",
    "NodeKind",
    "OnFailure",
    "Output",
    "Signature",
    "chain",
    "chord",
    "flatten",
    "group",
    "task",
]

#: The most nodes one workflow may have (its graph is stored and advanced in one slot).
MAX_NODES = 200_000


class OnFailure(StrEnum):
    """What a dead-lettered dependency does to the step that waits for it."""

    #: The workflow fails: the waiting step never runs (the default).
    FAIL = "fail"
    #: The waiting step runs anyway; the failed dependency's entry in ``parent_results``
    #: is None and its error text is in ``parent_errors``.
    MARK = "mark"


@dataclass(frozen=True, slots=True)
class Signature:
    """One job spec, not yet submitted. Build with :func:`task`."""

    name: str
    payload: Any = None
    routing_key: str = "default"
    priority: Priority = Priority.NORMAL
    #: Retries after the first attempt; None takes the client's default.
    max_retries: int | None = None
    #: Seconds a handler may run; None takes the worker's ``JOB_TIMEOUT``.
    timeout: float | None = None
    description: str = ""
    #: A parent/child flow: this job is queued once all of these finished.
    children: tuple[Flow, ...] = ()
    #: What a child that is dead-lettered does to this parent.
    on_child_failure: OnFailure = OnFailure.FAIL

    def __or__(self, other: Flow) -> Chain:
        return chain(self, other)


@dataclass(frozen=True, slots=True)
class Chain:
    """Steps run one after another; each receives the previous step's result."""

    steps: tuple[Flow, ...]

    def __or__(self, other: Flow) -> Chain:
        return chain(self, other)


@dataclass(frozen=True, slots=True)
class Group:
    """Members run in parallel; the group's result is their results in member order."""

    members: tuple[Flow, ...]

    def __or__(self, other: Flow) -> Chain:
        return chain(self, other)


@dataclass(frozen=True, slots=True)
class Chord:
    """A group, then one callback that receives the list of member results."""

    header: Group
    callback: Flow
    on_failure: OnFailure = OnFailure.FAIL

    def __or__(self, other: Flow) -> Chain:
        return chain(self, other)


Flow: TypeAlias = Signature | Chain | Group | Chord


def task(
    name: str,
    payload: Any = None,
    *,
    routing_key: str = "default",
    priority: Priority | str = Priority.NORMAL,
    max_retries: int | None = None,
    timeout: float | None = None,
    description: str = "",
    children: Iterable[Flow] = (),
    on_child_failure: OnFailure | str = OnFailure.FAIL,
) -> Signature:
    """A signature for handler ``name``; raises :class:`InvalidJobError` on a bad field."""
    validate_job_name(name)
    validate_routing_key(routing_key)
    validate_non_negative(timeout, "timeout")
    if max_retries is not None and max_retries < 0:
        raise InvalidJobError(f"max_retries must not be negative, got {max_retries!r}")
    kids = tuple(children)
    for kid in kids:
        _check_flow(kid)
    return Signature(
        name=name,
        payload=payload,
        routing_key=routing_key,
        priority=validate_priority(priority),
        max_retries=max_retries,
        timeout=timeout,
        description=description,
        children=kids,
        on_child_failure=_policy(on_child_failure),
    )


def chain(*steps: Flow | Iterable[Flow]) -> Chain:
    """Steps in order (signatures, or an iterable of them); raises on an empty chain."""
    items = _items(steps, "chain")
    # chain(chain(a, b), c) is chain(a, b, c): the same order, one level less.
    flat: list[Flow] = []
    for step in items:
        flat.extend(step.steps if isinstance(step, Chain) else (step,))
    return Chain(tuple(flat))


def group(*members: Flow | Iterable[Flow]) -> Group:
    """Members run in parallel (signatures, or one iterable of them); raises when empty."""
    return Group(_items(members, "group"))


def chord(
    header: Group | Iterable[Flow], callback: Flow, *, on_failure: OnFailure | str = OnFailure.FAIL
) -> Chord:
    """``header``'s members, then ``callback`` once with their results.

    ``on_failure`` chooses what a dead-lettered member does: ``"fail"`` fails the
    workflow (the callback never runs); ``"mark"`` runs the callback anyway, with
    None in that member's place in ``parent_results`` and the error in ``parent_errors``.
    """
    head = header if isinstance(header, Group) else group(header)
    _check_flow(callback)
    return Chord(head, callback, _policy(on_failure))


def _policy(value: OnFailure | str) -> OnFailure:
    try:
        return OnFailure(value)
    except ValueError:
        accepted = ", ".join(p.value for p in OnFailure)
        raise InvalidJobError(f"unknown failure policy {value!r}: use one of {accepted}") from None


def _check_flow(value: object) -> None:
    if not isinstance(value, Signature | Chain | Group | Chord):
        raise InvalidJobError(
            f"a workflow is built from task(), chain(), group() and chord(), got {value!r}"
        )


def _items(args: tuple[Flow | Iterable[Flow], ...], what: str) -> tuple[Flow, ...]:
    items: list[Any] = []
    for arg in args:
        if isinstance(arg, Signature | Chain | Group | Chord):
            items.append(arg)
        elif isinstance(arg, Iterable) and not isinstance(arg, str | bytes | dict):
            items.extend(arg)
        else:
            items.append(arg)
    for item in items:
        _check_flow(item)
    if not items:
        raise InvalidJobError(f"an empty {what}")
    return tuple(items)


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a flattened workflow. ``spec`` is None for a join."""

    index: int
    kind: NodeKind
    spec: Signature | None
    deps: tuple[int, ...]
    #: A dead-lettered dependency is tolerated (``OnFailure.MARK``), not fatal.
    tolerate: bool = False


#: The shape of a workflow's result: a node's result, or a list of shapes.
Output: TypeAlias = int | list["Output"]


@dataclass(frozen=True, slots=True)
class Graph:
    """A flattened workflow: nodes in creation order, and how its result is assembled."""

    nodes: tuple[Node, ...]
    #: Node indexes whose results make the workflow's result, in its shape.
    output: Output
    dependents: tuple[tuple[int, ...], ...] = field(default=())

    @property
    def roots(self) -> tuple[int, ...]:
        """The task nodes that wait for nothing: queued at submit."""
        return tuple(n.index for n in self.nodes if not n.deps)

    def parents_of(self, index: int) -> list[int]:
        """The nodes whose results ``index`` receives (a join expanded to its deps)."""
        out: list[int] = []
        for dep in self.nodes[index].deps:
            node = self.nodes[dep]
            out.extend(node.deps if node.kind is NodeKind.JOIN else (dep,))
        return out


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(
        self, kind: NodeKind, spec: Signature | None, deps: Sequence[int], tolerate: bool
    ) -> int:
        if len(self.nodes) >= MAX_NODES:
            raise InvalidJobError(f"a workflow has at most {MAX_NODES} nodes")
        index = len(self.nodes)
        self.nodes.append(Node(index, kind, spec, tuple(deps), tolerate and bool(deps)))
        return index

    def build(
        self, flow: Flow, deps: tuple[int, ...], tolerate: bool
    ) -> tuple[tuple[int, ...], Output]:
        """Add ``flow`` after ``deps``; returns its terminal nodes and its output shape."""
        if isinstance(flow, Signature):
            return self._signature(flow, deps, tolerate)
        if isinstance(flow, Chain):
            out: Output = []
            for i, step in enumerate(flow.steps):
                deps, out = self.build(step, deps, tolerate and i == 0)
            return deps, out
        if isinstance(flow, Group):
            if len(deps) > 1 and len(flow.members) > 1:
                deps = (self.add(NodeKind.JOIN, None, deps, tolerate),)
                tolerate = False
            terminals: list[int] = []
            outputs: list[Output] = []
            for member in flow.members:
                t, o = self.build(member, deps, tolerate)
                terminals.extend(t)
                outputs.append(o)
            return tuple(terminals), outputs
        head, _ = self.build(flow.header, deps, tolerate)
        return self.build(flow.callback, head, flow.on_failure is OnFailure.MARK)

    def _signature(
        self, sig: Signature, deps: tuple[int, ...], tolerate: bool
    ) -> tuple[tuple[int, ...], Output]:
        if sig.children:
            deps, _ = self.build(Group(sig.children), deps, tolerate)
            tolerate = sig.on_child_failure is OnFailure.MARK
        index = self.add(NodeKind.TASK, sig, deps, tolerate)
        return (index,), index


def flatten(flow: Flow) -> Graph:
    """The graph of ``flow``; raises :class:`InvalidJobError` for a malformed composition."""
    _check_flow(flow)
    builder = _Builder()
    _, output = builder.build(flow, (), False)
    nodes = tuple(builder.nodes)
    dependents: list[list[int]] = [[] for _ in nodes]
    for node in nodes:
        for dep in node.deps:
            dependents[dep].append(node.index)
    return Graph(nodes, output, tuple(tuple(d) for d in dependents))


def shape(output: Output, values: Sequence[Any]) -> Any:
    """The workflow result: ``output`` with each node index replaced by ``values[index]``."""
    if isinstance(output, int):
        return values[output]
    return [shape(o, values) for o in output]
