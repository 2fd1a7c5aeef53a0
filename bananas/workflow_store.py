"""Workflow bookkeeping in Redis: one typed wrapper per workflow script, and the node jobs.

A workflow's graph, per-node state and results live under one hash tag
(``{wf:<id>}``, see ``bananas.keys``), so every change to them is one atomic script
even on Redis Cluster. Its nodes' jobs live on their own routing keys, in other
slots, with deterministic ids (``<workflow id>:<node>``), so queueing a node twice
stores it once. The steps that cross slots are ordered so that any interruption is
safe to replay (``docs/architecture.md``, "Workflows"):

- **submit**: the id goes into the ``unstarted`` index first (with a start deadline),
  then the graph is staged in slices and committed by one script (it becomes visible
  whole, or never), then the roots are queued page by page (idempotent), then the
  workflow is marked started and leaves the index. A client that dies in between
  leaves an index entry; the promoter's sweep (:meth:`WorkflowStore.sweep`) finishes
  the start, or, when no graph was committed, plants a tombstone that refuses a late one.
- **a node finishes**: the worker runs ``workflow_advance`` after the handler and
  BEFORE the job's ack (or its dead-lettering), queues the nodes it released, and only
  then acks. A crash anywhere re-delivers the job and the replay is harmless.

Nothing here does I/O: every method returns an operation (``bananas.ops``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from bananas import tracing
from bananas.broker import Broker, NewJob
from bananas.errors import BananasError, InvalidJobError, PayloadTooLargeError
from bananas.keys import WorkflowKeys, workflow_job_id
from bananas.models import (
    NodeState,
    Priority,
    WorkflowInfo,
    WorkflowNode,
    WorkflowStatus,
)
from bananas.ops import Batch, Op, Script, command, script_call
from bananas.records import encode, job_record
from bananas.workflows import Flow, Graph, Node, NodeKind, Signature, flatten, shape

__all__ = ["Advance", "NodeDefaults", "ReadyNode", "WorkflowStore"]

#: How long a workflow may sit in the ``unstarted`` index before the sweep starts it
#: (or, if no graph was committed, abandons its id): longer than any submit takes,
#: so 30 s plus 1 ms per node (a loaded machine stores ~10,000 nodes a second).
START_GRACE_MS = 30_000
START_GRACE_PER_NODE_MS = 1
#: How long the tombstone of an abandoned id refuses a late submit of that id, and how
#: long staged slices of a graph wait for their commit.
TOMBSTONE_TTL_MS = 3_600_000
#: Nodes per ``workflow_stage`` call (each call ~40 ms of Lua at most).
STAGE_BATCH = 2_000
#: Roots per ``workflow_roots`` page.
ROOTS_PAGE = 2_000
#: Unstarted workflows looked at per sweep.
SWEEP_BATCH = 100
#: How long a workflow's finish notification waits for a waiter that has not arrived.
NOTIFY_TTL_MS = 60_000
#: Longest single blocking wait on a workflow's notify list (a liveness check).
MAX_BLOCK_SECONDS = 2.0
#: Jobs per enqueue call when a workflow queues many nodes at once.
ENQUEUE_BATCH = 500

_SCRIPTS = {
    name: Script(name)
    for name in (
        "workflow_stage",
        "workflow_submit",
        "workflow_roots",
        "workflow_start",
        "workflow_advance",
        "workflow_cancel",
        "workflow_inspect",
        "workflow_resume",
    )
}


@dataclass(frozen=True, slots=True)
class NodeDefaults:
    """What a signature leaves unset takes from the client: retries, TTLs, payload cap."""

    max_retries: int
    success_ttl: float
    failure_ttl: float
    max_payload_bytes: int


@dataclass(slots=True)
class ReadyNode:
    """A task node released by ``workflow_advance`` (or a root): queue it."""

    node: int
    spec: str
    #: Per parent: (result JSON or None, error text or "").
    parents: list[tuple[str | None, str]] = field(default_factory=list)


@dataclass(slots=True)
class Advance:
    """What ``workflow_advance`` did: the workflow's status after it, and what to queue."""

    status: WorkflowStatus | None
    ready: list[ReadyNode]


def node_spec(sig: Signature, defaults: NodeDefaults, meta: Mapping[str, str] | None = None) -> str:
    """The stored spec of one task node (JSON): everything its job record needs, and
    ``meta``, the workflow span's trace context, when tracing is on (``bananas.tracing``).

    Raises :class:`InvalidJobError` / :class:`PayloadTooLargeError` for a bad payload.
    """
    try:
        payload = encode(sig.payload)
    except TypeError as exc:
        raise InvalidJobError(
            f"payload of step {sig.name!r} is not JSON-serialisable: {exc}"
        ) from None
    if len(payload) > defaults.max_payload_bytes:
        raise PayloadTooLargeError(
            f"payload of step {sig.name!r} is {len(payload)} bytes, above the limit of "
            f"{defaults.max_payload_bytes} bytes (max_payload_bytes)"
        )
    spec: dict[str, Any] = {
        "name": sig.name,
        "payload": orjson.Fragment(payload),
        "priority": sig.priority.value,
        "routing_key": sig.routing_key,
        "max_retries": defaults.max_retries if sig.max_retries is None else sig.max_retries,
        "timeout": sig.timeout,
        "description": sig.description,
        "success_ttl": defaults.success_ttl,
        "failure_ttl": defaults.failure_ttl,
    }
    if meta:
        spec["meta"] = dict(meta)
    return orjson.dumps(spec).decode()


def node_job(
    workflow_id: str,
    ready: ReadyNode,
    now: float,
    spans: list[Any] | None = None,
    parent: Mapping[str, str] | None = None,
) -> NewJob:
    """The job of a released node: its spec plus the workflow fields and parents' results.

    With tracing on and ``spans`` given, the job's producer span is started (the child of
    ``parent``, else of the workflow's span kept in the spec) and appended to ``spans``
    (the caller ends it after the enqueue), and its context goes into the record."""
    spec = orjson.loads(ready.spec)
    job_id = workflow_job_id(workflow_id, ready.node)
    results = [None if r is None else orjson.Fragment(r) for r, _ in ready.parents]
    errors = [e for _, e in ready.parents]
    priority = Priority(spec["priority"])
    meta = None
    if spans is not None and (tracer := tracing.tracer()) is not None:
        span, meta = tracing.start_send(
            tracer,
            spec["routing_key"],
            job_id,
            spec["name"],
            parent=parent or spec.get("meta") or None,
            attributes={"bananas.workflow.id": workflow_id, "bananas.workflow.node": ready.node},
        )
        spans.append(span)
    record = job_record(
        job_id=job_id,
        name=spec["name"],
        description=spec.get("description", ""),
        payload=orjson.dumps(spec.get("payload")).decode(),
        priority=priority,
        routing_key=spec["routing_key"],
        created=now,
        due=None,
        max_retries=spec["max_retries"],
        timeout=spec.get("timeout"),
        success_ttl=spec["success_ttl"],
        failure_ttl=spec["failure_ttl"],
        workflow={
            "workflow_id": workflow_id,
            "node": ready.node,
            "parent_results": results,
            "parent_errors": errors if any(errors) else [],
        },
        meta=meta,
    )
    return NewJob(job_id, spec["routing_key"], priority, 0, record)


def stage_argv(graph: Graph, specs: Mapping[int, str], start: int, stop: int) -> list[Any]:
    """``workflow_stage``'s ARGV for nodes ``start`` to ``stop`` of ``graph``."""
    argv: list[Any] = [TOMBSTONE_TTL_MS]
    for node in graph.nodes[start:stop]:
        dependents = graph.dependents[node.index]
        # a dead node is tolerated when what waits for it tolerates failure (all of its
        # dependents come from one composition step, so they agree)
        tolerated = bool(dependents) and graph.nodes[dependents[0]].tolerate
        argv += (
            node.index,
            node.kind.value,
            "1" if tolerated else "0",
            ",".join(map(str, node.deps)),
            ",".join(map(str, dependents)),
            len(node.deps),
            specs.get(node.index, ""),
        )
    return argv


def commit_argv(graph: Graph, now_ms: int, defaults: NodeDefaults, name: str) -> list[Any]:
    """``workflow_submit``'s ARGV: the workflow's own fields."""
    return [
        now_ms,
        orjson.dumps(graph.output).decode(),
        int(defaults.success_ttl * 1000),
        int(defaults.failure_ttl * 1000),
        name,
        len(graph.nodes),
    ]


def parse_advance(reply: list[Any]) -> Advance:
    """``workflow_advance``'s reply as an :class:`Advance`."""
    if not reply or reply[0] == "missing":
        return Advance(None, [])
    status = WorkflowStatus(reply[0])
    ready: list[ReadyNode] = []
    i = 2
    for _ in range(int(reply[1])):
        node, spec, count = int(reply[i]), reply[i + 1], int(reply[i + 2])
        i += 3
        parents = []
        for _ in range(count):
            parents.append((reply[i] or None, reply[i + 1]))
            i += 2
        ready.append(ReadyNode(node, spec, parents))
    return Advance(status, ready)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _when(ms: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else None


def decode_workflow(workflow_id: str, reply: list[Any]) -> WorkflowInfo | None:
    """``workflow_inspect``'s reply as a :class:`WorkflowInfo`; None when unknown."""
    if not reply:
        return None
    meta, graph, specs, state, results, errors = (_pairs(part) for part in reply)
    if meta.get("status") == "abandoned":
        return None
    nodes: list[WorkflowNode] = []
    values: list[Any] = []
    for index in range(int(meta["total"])):
        key = str(index)
        deps = [int(d) for d in graph.get(f"deps:{key}", "").split(",") if d]
        raw = results.get(key)
        value = orjson.loads(raw) if raw is not None else None
        values.append(value)
        spec = orjson.loads(specs[key]) if key in specs else {}
        join = f"join:{key}" in graph
        nodes.append(
            WorkflowNode(
                index=index,
                kind=NodeKind.JOIN if join else NodeKind.TASK,
                name=spec.get("name", ""),
                routing_key=spec.get("routing_key", ""),
                job_id="" if join else workflow_job_id(workflow_id, index),
                state=NodeState(state.get(key, "waiting")),
                deps=deps,
                result=value,
                error=errors.get(key, ""),
            )
        )
    status = WorkflowStatus(meta["status"])
    output = orjson.loads(meta["output"])
    failed_node = meta.get("failed_node")
    return WorkflowInfo(
        id=workflow_id,
        name=meta.get("name", ""),
        status=status,
        created_at=_when(meta.get("created")),
        finished_at=_when(meta.get("finished")),
        nodes=nodes,
        result=shape(output, values) if status is WorkflowStatus.COMPLETED else None,
        error=meta.get("error", ""),
        failed_node=int(failed_node) if failed_node is not None else None,
        output=output,
    )


class WorkflowStore:
    """Builds every workflow operation for one key space (see the module docstring)."""

    def __init__(self, broker: Broker, *, clock: Callable[[], float] = time.time) -> None:
        self.broker = broker
        self.keys = broker.keys
        self.clock = clock

    def wf(self, workflow_id: str) -> WorkflowKeys:
        return self.keys.workflow(workflow_id)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- one wrapper per script ----------------------------------------------------------

    def _staging(self, workflow_id: str) -> tuple[str, ...]:
        k = self.wf(workflow_id)
        return (k.meta, k.graph, k.specs, k.pending, k.state, k.roots)

    def workflow_stage(self, workflow_id: str, argv: Sequence[Any]) -> Op[bool]:
        """Stage one slice of a graph (False: the id exists, or was abandoned)."""
        reply = yield script_call(_SCRIPTS["workflow_stage"], self._staging(workflow_id), argv)
        return bool(reply)

    def workflow_submit(self, workflow_id: str, argv: Sequence[Any]) -> Op[bool]:
        """Commit a staged graph (False: the id exists, or was abandoned by the sweep)."""
        reply = yield script_call(_SCRIPTS["workflow_submit"], self._staging(workflow_id), argv)
        return bool(reply)

    def workflow_roots(
        self, workflow_id: str, offset: int = 0, count: int = ROOTS_PAGE
    ) -> Op[tuple[str, int, list[ReadyNode]]]:
        """('unstarted', root count, a page of roots), ('started', 0, []) or
        ('abandoned', 0, []) (a tombstone now refuses the id)."""
        k = self.wf(workflow_id)
        reply = yield script_call(
            _SCRIPTS["workflow_roots"],
            (k.meta, k.specs, k.roots),
            (self._now_ms(), TOMBSTONE_TTL_MS, offset, count),
        )
        if reply[0] != "unstarted":
            return reply[0], 0, []
        roots = [ReadyNode(int(reply[i]), reply[i + 1]) for i in range(2, len(reply), 2)]
        return reply[0], int(reply[1]), roots

    def workflow_start(self, workflow_id: str) -> Op[bool]:
        """Record that the roots are queued; False when the workflow is gone."""
        k = self.wf(workflow_id)
        reply = yield script_call(_SCRIPTS["workflow_start"], (k.meta, k.roots), ())
        return bool(reply)

    def workflow_advance(
        self, workflow_id: str, node: int, *, done: bool, value: str
    ) -> Op[Advance]:
        """Record that ``node`` completed (``value`` its result JSON) or was dead-lettered
        (``value`` the error); returns what became ready (see workflow_advance.lua)."""
        reply = yield script_call(
            _SCRIPTS["workflow_advance"],
            self.wf(workflow_id).all,
            (node, "done" if done else "dead", value, self._now_ms(), NOTIFY_TTL_MS),
        )
        return parse_advance(reply)

    def workflow_cancel(self, workflow_id: str) -> Op[tuple[str, list[int]]]:
        """Cancel; returns the status it had and the queued nodes whose jobs to cancel."""
        reply = yield script_call(
            _SCRIPTS["workflow_cancel"], self.wf(workflow_id).all, (self._now_ms(), NOTIFY_TTL_MS)
        )
        return reply[0], [int(n) for n in reply[1:]]

    def workflow_inspect(self, workflow_id: str) -> Op[WorkflowInfo | None]:
        """A consistent snapshot of the workflow, or None when it is unknown or expired."""
        reply = yield script_call(_SCRIPTS["workflow_inspect"], self.wf(workflow_id).all[:7], ())
        return decode_workflow(workflow_id, reply)

    def workflow_resume(self, workflow_id: str, nodes: Sequence[int]) -> Op[int]:
        """Requeued dead nodes count as queued again; returns how many (see the script)."""
        reply = yield script_call(_SCRIPTS["workflow_resume"], self.wf(workflow_id).all, nodes)
        return int(reply)

    def resume_requeued(self, job_ids: Sequence[str]) -> Op[int]:
        """After jobs were requeued from the dead-letter queue: resume the workflows that
        some of them are nodes of (a node's job id is ``<workflow id>:<node>``; an id
        that only looks like one changes nothing). Returns the nodes resumed."""
        by_workflow: dict[str, list[int]] = defaultdict(list)
        for job_id in job_ids:
            workflow_id, _, node = job_id.rpartition(":")
            if workflow_id and node.isdigit():
                by_workflow[workflow_id].append(int(node))
        resumed = 0
        for workflow_id, nodes in by_workflow.items():
            resumed += yield from self.workflow_resume(workflow_id, nodes)
        return resumed

    def fail_step(self, job_id: str, reason: str) -> Op[None]:
        """Record that the workflow step with this job id was dead-lettered (by the
        reaper, as poison); an id that is no workflow's step changes nothing."""
        workflow_id, _, node = job_id.rpartition(":")
        if workflow_id and node.isdigit():
            yield from self.workflow_advance(workflow_id, int(node), done=False, value=reason)

    def fail_requeued(self, job_id: str) -> Op[None]:
        """Undo :meth:`resume_requeued` for a node whose job was not in the dead-letter
        queue after all (aged out, or purged): the workflow fails again."""
        yield from self.fail_step(job_id, "not in the dead-letter queue any more")

    # -- composed operations -------------------------------------------------------------

    def submit(
        self, flow: Flow, defaults: NodeDefaults, *, workflow_id: str, name: str = ""
    ) -> Op[str]:
        """Store ``flow`` and queue its roots; returns the workflow id.

        Submitting an id that exists queues nothing new (idempotent, like job ids);
        raises :class:`BananasError` when the sweep abandoned that id.
        """
        graph = flatten(flow)
        tasks = [n for n in graph.nodes if n.kind is NodeKind.TASK and n.spec is not None]
        spans: list[Any] = []
        meta = None
        if (tracer := tracing.tracer()) is not None:
            span, meta = tracing.start_workflow(tracer, workflow_id, name, len(tasks))
            spans.append(span)
        try:
            found = yield from self._submit(graph, tasks, meta, defaults, workflow_id, name)
        except BaseException as exc:
            tracing.end_send(spans, exc)
            raise
        tracing.end_send(spans)
        return found

    def _submit(
        self,
        graph: Graph,
        tasks: Sequence[Node],
        meta: Mapping[str, str] | None,
        defaults: NodeDefaults,
        workflow_id: str,
        name: str,
    ) -> Op[str]:
        """:meth:`submit`'s steps, each task's spec keeping ``meta`` (the workflow span's
        trace context, or None)."""
        specs = {n.index: node_spec(n.spec, defaults, meta) for n in tasks if n.spec is not None}
        routes = {n.spec.routing_key for n in graph.nodes if n.spec is not None}
        yield from self.broker.add_routes(routes)
        deadline = self._now_ms() + START_GRACE_MS + START_GRACE_PER_NODE_MS * len(graph.nodes)
        yield command("ZADD", self.keys.workflows_unstarted, "NX", deadline, workflow_id)
        yield from self.store_graph(workflow_id, graph, specs, defaults, name)
        outcome = yield from self.start(workflow_id)
        if outcome == "abandoned":
            raise BananasError(
                f"workflow {workflow_id} was abandoned: its submit took longer than its "
                f"start deadline ({START_GRACE_MS / 1000:g}s + {START_GRACE_PER_NODE_MS} ms "
                "per node); submit it again under a new id"
            )
        return workflow_id

    def store_graph(
        self,
        workflow_id: str,
        graph: Graph,
        specs: Mapping[int, str],
        defaults: NodeDefaults,
        name: str = "",
    ) -> Op[bool]:
        """Stage ``graph`` in slices, then commit it in one step; False when the id
        exists already (nothing is written then)."""
        for start in range(0, len(graph.nodes), STAGE_BATCH):
            argv = stage_argv(graph, specs, start, start + STAGE_BATCH)
            if not (yield from self.workflow_stage(workflow_id, argv)):
                return False
        stored = yield from self.workflow_submit(
            workflow_id, commit_argv(graph, self._now_ms(), defaults, name)
        )
        return stored

    def start(self, workflow_id: str) -> Op[str]:
        """Queue the roots of a stored, unstarted workflow, mark it started and drop its
        index entry; returns what ``workflow_roots`` found. Safe to run twice."""
        outcome, total, offset = "unstarted", 1, 0
        while outcome == "unstarted" and offset < total:
            outcome, total, roots = yield from self.workflow_roots(workflow_id, offset)
            if not roots:
                break
            yield from self.enqueue(workflow_id, roots)
            offset += len(roots)
        if outcome == "unstarted":
            yield from self.workflow_start(workflow_id)
        yield command("ZREM", self.keys.workflows_unstarted, workflow_id)
        return outcome

    def enqueue(
        self,
        workflow_id: str,
        ready: Sequence[ReadyNode],
        parent: Mapping[str, str] | None = None,
    ) -> Op[int]:
        """Queue released nodes' jobs, per routing key (idempotent by their job ids).

        With tracing on, each job gets a producer span, the child of ``parent`` (the
        trace context of the step that released it) or else of the workflow's span."""
        now = self.clock()
        spans: list[Any] = []
        by_route: dict[str, list[NewJob]] = defaultdict(list)
        for r in ready:
            job = node_job(workflow_id, r, now, spans, parent)
            by_route[job.routing_key].append(job)
        try:
            for rk, jobs in by_route.items():
                for start in range(0, len(jobs), ENQUEUE_BATCH):
                    yield from self.broker.enqueue(rk, jobs[start : start + ENQUEUE_BATCH])
        except BaseException as exc:
            tracing.end_send(spans, exc)
            raise
        tracing.end_send(spans)
        return len(ready)

    def advance(
        self,
        workflow_id: str,
        node: int,
        *,
        done: bool,
        value: str,
        trace: Mapping[str, str] | None = None,
    ) -> Op[Advance]:
        """Record a node's outcome and queue what it released (the worker's hook);
        ``trace``: the finished step's trace context, the parent of the released steps'
        producer spans (``bananas.tracing``)."""
        result = yield from self.workflow_advance(workflow_id, node, done=done, value=value)
        if result.ready:
            yield from self.enqueue(workflow_id, result.ready, trace)
        return result

    def cancel(self, workflow_id: str, result: str, ttl_ms: int) -> Op[bool]:
        """Cancel a workflow and the queued jobs of its nodes; False if it was not running."""
        before, queued = yield from self.workflow_cancel(workflow_id)
        if before not in (WorkflowStatus.RUNNING.value, WorkflowStatus.FAILED.value):
            return False
        if queued:
            k = self.wf(workflow_id)
            specs = yield command("HMGET", k.specs, *queued)
            for node, spec in zip(queued, specs, strict=True):
                if spec:
                    rk = orjson.loads(spec)["routing_key"]
                    yield from self.broker.cancel(
                        rk, workflow_job_id(workflow_id, node), result, ttl_ms
                    )
        return True

    def sweep(self, late_ms: int = 0) -> Op[int]:
        """Start (or abandon) the workflows past their start deadline (their client died
        mid-submit, or more than ``late_ms`` ago); returns how many it looked at."""
        stale = yield command(
            "ZRANGEBYSCORE",
            self.keys.workflows_unstarted,
            "-inf",
            self._now_ms() - late_ms,
            "LIMIT",
            0,
            SWEEP_BATCH,
        )
        for workflow_id in stale:
            yield from self.start(workflow_id)
        return len(stale)

    def status(self, workflow_id: str) -> Op[WorkflowStatus | None]:
        """The workflow's status, or None when it is unknown or expired."""
        reply = yield command("HGET", self.wf(workflow_id).meta, "status")
        if reply is None or reply == "abandoned":
            return None
        return WorkflowStatus(reply)

    def wait(self, workflow_id: str, timeout: float) -> Op[WorkflowStatus | None]:
        """Block until the workflow is no longer running (pushed, never polled); returns
        its status then, or the running status after ``timeout`` seconds.

        The status is read first, so a finish before the waiter arrived is never
        missed; a waiter passes the token on so that other waiters wake too.
        """
        notify = self.wf(workflow_id).notify
        deadline = time.monotonic() + timeout
        while True:
            status = yield from self.status(workflow_id)
            if status is None or status is not WorkflowStatus.RUNNING:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return status
            token = yield command("BLPOP", notify, min(max(remaining, 0.001), MAX_BLOCK_SECONDS))
            if token is None:
                continue
            status = yield from self.status(workflow_id)
            if status is not WorkflowStatus.RUNNING:
                # pass the token on to the other waiters; a token left from a failure that
                # has since been resumed is dropped (it would wake every waiter at once)
                yield Batch(
                    [command("RPUSH", notify, 1), command("PEXPIRE", notify, NOTIFY_TTL_MS)]
                )
                return status
