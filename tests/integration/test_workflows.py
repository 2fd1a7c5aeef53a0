"""Workflows end to end on every backend (Redis, Valkey, Cluster): each shape, nesting,
results passing, both failure policies, cancel, resume from the dead-letter queue, the
submit sweep, idempotent completion, and the storage bound of a finished workflow."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bananas import (
    AsyncClient,
    BananasError,
    Client,
    Job,
    NodeState,
    PermanentError,
    QueueStats,
    WaitTimeoutError,
    WorkflowInfo,
    WorkflowStatus,
    chain,
    chord,
    group,
    task,
)
from bananas.broker import Reaped
from bananas.keys import KeySpace, workflow_job_id
from bananas.worker_runtime import Registry, Worker
from bananas.workflow_store import NodeDefaults
from bananas.workflow_view import render
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.timeout(60)

ROUTES = ("default", "cpu", "gpu")


@dataclass
class Fleet:
    client: AsyncClient
    runs: Counter[str] = field(default_factory=Counter)
    seen: dict[str, Job] = field(default_factory=dict)
    gate: set[str] = field(default_factory=set)


def _registry(fleet: Fleet) -> Registry:
    registry = Registry()

    @registry.handler("add")
    async def add(job: Job) -> int:
        fleet.runs[job.id] += 1
        fleet.seen[job.id] = job
        parents = [p for p in job.parent_results if isinstance(p, int)]
        return int((job.payload or {}).get("n", 0)) + sum(parents)

    @registry.handler("collect")
    async def collect(job: Job) -> dict[str, Any]:
        fleet.runs[job.id] += 1
        fleet.seen[job.id] = job
        return {"parents": job.parent_results, "errors": job.parent_errors, "p": job.payload}

    @registry.handler("fail")
    async def fail(job: Job) -> None:
        fleet.runs[job.id] += 1
        raise PermanentError(f"step {job.payload} refuses")

    @registry.handler("gated")
    async def gated(job: Job) -> str:
        """Dead-lettered until the test opens the gate for its payload."""
        fleet.runs[job.id] += 1
        if job.payload not in fleet.gate:
            raise PermanentError(f"gate {job.payload} closed")
        return f"passed {job.payload}"

    return registry


@pytest.fixture
async def fleet(redis_url: str, prefix: str) -> AsyncIterator[Fleet]:
    async with AsyncClient(redis_url, prefix=prefix) as client:
        f = Fleet(client)
        worker = Worker(
            _registry(f),
            client=client,
            metrics_port=0,
            routing_keys=list(ROUTES),
            concurrency=8,
            scheduler_interval=0.05,
        )
        await worker.start()
        yield f
        await worker.stop()


async def test_a_chain_runs_in_order_and_passes_each_result_on(fleet: Fleet) -> None:
    wf = chain(
        task("add", {"n": 1}), task("add", {"n": 10}, routing_key="gpu"), task("add", {"n": 100})
    )
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.COMPLETED
    assert info.result == 111
    assert [n.result for n in info.nodes] == [1, 11, 111]
    assert [n.state for n in info.nodes] == [NodeState.DONE] * 3
    step2 = fleet.seen[workflow_job_id(info.id, 1)]
    assert step2.parent_results == [1] and step2.workflow_id == info.id and step2.node == 1
    assert step2.routing_key == "gpu"


async def test_a_group_returns_member_results_in_member_order(fleet: Fleet) -> None:
    wf = group(task("add", {"n": i}, routing_key=ROUTES[i % 3]) for i in range(12))
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.result == list(range(12))


async def test_a_chord_callback_runs_once_with_every_member_result(fleet: Fleet) -> None:
    members = group(task("add", {"n": i}, routing_key=ROUTES[i % 3]) for i in range(30))
    info = await fleet.client.submit_workflow_and_wait(chord(members, task("collect")), timeout=20)
    assert info.status is WorkflowStatus.COMPLETED
    assert info.result["parents"] == list(range(30))
    assert fleet.runs[workflow_job_id(info.id, 30)] == 1


async def test_nesting_chain_of_groups_group_of_chains_chord_in_chain(fleet: Fleet) -> None:
    wf = chain(
        task("add", {"n": 1}),
        group(chain(task("add", {"n": 2}), task("add", {"n": 3})), task("add", {"n": 4})),
        chord(group(task("add"), task("add", {"n": 5})), task("collect", routing_key="cpu")),
        task("collect"),
    )
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.COMPLETED
    by_index = {n.index: n for n in info.nodes}
    # 1 -> (1+2 -> 3+3) and (1+4): the chord's members each get both branch results
    chord_members = [n for n in info.nodes if n.name == "add" and n.index > 3]
    assert [m.result for m in chord_members] == [6 + 5, 5 + 6 + 5]
    cb = next(n for n in info.nodes if n.name == "collect" and n.routing_key == "cpu")
    assert cb.result["parents"] == [11, 16]
    assert info.result["parents"] == [cb.result]
    assert any(n.kind.value == "join" for n in by_index.values())
    text = render(info)
    assert "(join)" in text and "completed" in text.splitlines()[0]


async def test_a_parent_waits_for_its_children_across_routing_keys(fleet: Fleet) -> None:
    tree = task(
        "collect",
        {"report": True},
        children=[
            task("add", {"n": 1}, routing_key="cpu"),
            task("add", {"n": 2}, routing_key="gpu", children=[task("add", {"n": 40})]),
        ],
    )
    info = await fleet.client.submit_workflow_and_wait(tree, timeout=20)
    assert info.result == {"parents": [1, 42], "errors": [], "p": {"report": True}}


async def test_a_dead_step_fails_the_chain_and_later_steps_never_run(fleet: Fleet) -> None:
    wf = chain(task("add", {"n": 1}), task("fail", "two", max_retries=0), task("add"))
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.FAILED
    assert info.failed_node == 1
    assert info.error == "PermanentError: step two refuses"
    assert [n.state for n in info.nodes] == [NodeState.DONE, NodeState.DEAD, NodeState.WAITING]
    assert fleet.runs[workflow_job_id(info.id, 2)] == 0
    assert "failed at #1" in render(info)


async def test_chord_policy_fail_never_runs_the_callback(fleet: Fleet) -> None:
    members = [task("add", {"n": 1}), task("fail", "m", max_retries=0), task("add", {"n": 2})]
    info = await fleet.client.submit_workflow_and_wait(chord(members, task("collect")), timeout=20)
    assert info.status is WorkflowStatus.FAILED and info.failed_node == 1
    assert fleet.runs[workflow_job_id(info.id, 3)] == 0


async def test_chord_policy_mark_runs_the_callback_with_the_failures_marked(fleet: Fleet) -> None:
    members = [task("add", {"n": 1}), task("fail", "m", max_retries=0), task("add", {"n": 2})]
    wf = chord(members, task("collect"), on_failure="mark")
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.COMPLETED
    assert info.result["parents"] == [1, None, 2]
    assert info.result["errors"] == ["", "PermanentError: step m refuses", ""]
    assert info.nodes[1].state is NodeState.DEAD


async def test_requeueing_the_dead_step_from_the_dlq_resumes_the_workflow(fleet: Fleet) -> None:
    client = fleet.client
    wf = chain(task("add", {"n": 1}), task("gated", "g1", max_retries=0), task("collect"))
    info = await client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.FAILED and info.failed_node == 1
    dead = await client.dead_letters("default")
    assert workflow_job_id(info.id, 1) in [d.job_id for d in dead]
    fleet.gate.add("g1")
    assert await client.requeue_dead(workflow_job_id(info.id, 1), "default")
    done = await client.wait_for_workflow(info.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done
    assert done.result["parents"] == ["passed g1"]
    assert done.error == "" and done.failed_node is None


async def test_cancel_stops_everything_not_started(
    fleet: Fleet, redis_url: str, prefix: str
) -> None:
    client = fleet.client
    # "held" is served by no worker: the chain stays at its first step
    wf = chain(task("add", routing_key="held"), task("add"), task("add"))
    wf_id = await client.submit_workflow(wf)
    assert await client.cancel_workflow(wf_id)
    assert not await client.cancel_workflow(wf_id), "a second cancel finds nothing running"
    info = await client.get_workflow(wf_id)
    assert info is not None and info.status is WorkflowStatus.CANCELLED
    assert [n.state for n in info.nodes] == [
        NodeState.QUEUED,
        NodeState.CANCELLED,
        NodeState.CANCELLED,
    ]
    job = await client.get_job(workflow_job_id(wf_id, 0), "held")
    assert job is None or job.status.value == "cancelled"
    assert _depth(await client.queue_stats("held")) == 0


async def test_cancel_mid_chain_releases_nothing_more(fleet: Fleet) -> None:
    client = fleet.client
    wf = chain(task("add"), task("gated", "never", max_retries=0), task("add"))
    info = await client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.FAILED
    assert await client.cancel_workflow(info.id)
    fleet.gate.add("never")
    await client.requeue_dead(workflow_job_id(info.id, 1), "default")
    # its ack comes after its advance and after queueing what the advance released
    rerun = await client.wait_for_result(workflow_job_id(info.id, 1), timeout=10)
    assert rerun.result == "passed never"
    assert await client.get_job(workflow_job_id(info.id, 2)) is None, "a step was queued"
    after = await client.get_workflow(info.id)
    assert after is not None and after.status is WorkflowStatus.CANCELLED
    assert after.nodes[2].state is NodeState.CANCELLED
    assert fleet.runs[workflow_job_id(info.id, 2)] == 0


async def _ran(fleet: Fleet, job_id: str, times: int) -> bool:
    return fleet.runs[job_id] >= times


async def test_wait_times_out_and_unknown_ids_are_none(fleet: Fleet) -> None:
    client = fleet.client
    wf_id = await client.submit_workflow(task("add", routing_key="held"))
    with pytest.raises(WaitTimeoutError):
        await client.wait_for_workflow(wf_id, timeout=0.2)
    assert await client.get_workflow("no-such-workflow") is None
    assert not await client.cancel_workflow("no-such-workflow")


async def test_a_resubmitted_id_stores_and_runs_nothing_new(fleet: Fleet) -> None:
    client = fleet.client
    wf = chord(group(task("add", {"n": i}) for i in range(3)), task("collect"))
    first = await client.submit_workflow(wf, workflow_id="report-2026-12-01")
    again = await client.submit_workflow(wf, workflow_id="report-2026-12-01")
    assert first == again
    info = await client.wait_for_workflow(first, timeout=20)
    assert info.result["parents"] == [0, 1, 2]
    assert sum(fleet.runs.values()) == 4


def test_the_sync_client_has_the_same_methods(redis_url: str, prefix: str) -> None:
    with Client(redis_url, prefix=prefix) as client:
        wf_id = client.submit_workflow(
            chain(task("add", routing_key="held"), task("add")), name="sync"
        )
        info = client.get_workflow(wf_id)
        assert info is not None and info.name == "sync" and info.status is WorkflowStatus.RUNNING
        with pytest.raises(WaitTimeoutError):
            client.submit_workflow_and_wait(task("add", routing_key="held"), timeout=0.1)
        assert client.cancel_workflow(wf_id)
        assert client.wait_for_workflow(wf_id, timeout=1).status is WorkflowStatus.CANCELLED


async def test_a_member_completing_twice_counts_once(redis_url: str, prefix: str) -> None:
    """The replay a worker crash causes (advance ran, the ack did not): the callback is
    released once, and the replay hands back the released callback to queue again."""
    async with AsyncClient(redis_url, prefix=prefix) as client:
        store = client.workflows
        wf_id = await client.submit_workflow(
            chord([task("add", routing_key="held")] * 2, task("collect", routing_key="held"))
        )
        first = await client.run(store.workflow_advance(wf_id, 0, done=True, value="1"))
        replay = await client.run(store.workflow_advance(wf_id, 0, done=True, value="99"))
        assert first.ready == [] and replay.ready == []
        released = await client.run(store.workflow_advance(wf_id, 1, done=True, value="2"))
        assert [r.node for r in released.ready] == [2]
        assert released.ready[0].parents == [("1", ""), ("2", "")]
        again = await client.run(store.workflow_advance(wf_id, 1, done=True, value="2"))
        assert [r.node for r in again.ready] == [2], "a replay returns the released callback"
        await client.run(store.enqueue(wf_id, released.ready))
        await client.run(store.enqueue(wf_id, again.ready))
        assert _depth(await client.queue_stats("held")) == 2 + 1  # two roots, one callback


async def test_the_sweep_starts_a_workflow_whose_client_died_and_abandons_a_missing_one(
    redis_url: str, prefix: str
) -> None:
    from bananas.workflow_store import node_spec, stage_argv
    from bananas.workflows import flatten

    async with AsyncClient(redis_url, prefix=prefix) as client:
        store = client.workflows
        defaults = NodeDefaults(
            max_retries=1, success_ttl=60, failure_ttl=60, max_payload_bytes=1000
        )
        graph = flatten(chain(task("add", routing_key="held"), task("add")))
        specs = {
            0: node_spec(graph.nodes[0].spec, defaults),
            1: node_spec(graph.nodes[1].spec, defaults),
        }
        index = KeySpace(prefix).workflows_unstarted
        # client 1 died after storing the graph; client 2 right after the index entry
        await client.run(_zadd(index, "stored", 0))
        assert await client.run(store.store_graph("stored", graph, specs, defaults))
        await client.run(_zadd(index, "never-stored", 0))
        assert await client.run(store.sweep()) == 2
        assert _depth(await client.queue_stats("held")) == 1
        assert await client.run(store.sweep()) == 0
        assert await client.run(store.workflow_roots("stored")) == ("started", 0, [])
        # the slow client of "never-stored" now finds a tombstone and stores nothing
        assert not await client.run(store.store_graph("never-stored", graph, specs, defaults))
        assert await client.get_workflow("never-stored") is None
        with pytest.raises(BananasError, match="abandoned"):
            await client.submit_workflow(task("add"), workflow_id="never-stored")
        # client 3 died half-way through staging a graph: nothing of it is visible, the
        # sweep abandons the id, and the staged slices expire on their own
        keys = KeySpace(prefix).workflow("half")
        await client.run(_zadd(index, "half", 0))
        await client.run(store.workflow_stage("half", stage_argv(graph, specs, 0, 1)))
        assert await client.get_workflow("half") is None
        assert await client.run(store.sweep()) == 1
        assert await client.run(_pttl(keys.state)) > 0
        assert await client.get_workflow("half") is None


async def test_a_large_graph_is_staged_in_slices_and_its_roots_queued_in_pages(
    redis_url: str, prefix: str
) -> None:
    from bananas.workflow_store import ROOTS_PAGE, STAGE_BATCH

    n = max(STAGE_BATCH, ROOTS_PAGE) * 2 + 7
    async with AsyncClient(redis_url, prefix=prefix) as client:
        wf = chord(group(task("add", {"n": i}, routing_key="held") for i in range(n)), task("add"))
        wf_id = await client.submit_workflow(wf)
        assert _depth(await client.queue_stats("held")) == n
        info = await client.get_workflow(wf_id)
        assert info is not None and len(info.nodes) == n + 1
        assert info.nodes[n].deps == list(range(n))
        roots_key = KeySpace(prefix).workflow(wf_id).roots
        assert await client.run(_pttl(roots_key)) == -2, "the roots list is dropped at start"


def _zadd(key: str, member: str, score: int):  # type: ignore[no-untyped-def]
    from bananas.ops import command

    yield command("ZADD", key, score, member)


async def test_a_finished_workflow_expires_with_its_result_ttl(redis_url: str, prefix: str) -> None:
    async with AsyncClient(redis_url, prefix=prefix, success_ttl=1) as client:
        f = Fleet(client)
        worker = Worker(_registry(f), client=client, metrics_port=0, concurrency=2)
        await worker.start()
        try:
            info = await client.submit_workflow_and_wait(
                chain(task("add"), task("add")), timeout=20
            )
        finally:
            await worker.stop()
        keys = KeySpace(prefix).workflow(info.id).all[:7]
        ttls = [await client.run(_pttl(k)) for k in keys]
        assert all(0 < t <= 1000 for t in ttls if t != -2), ttls
        assert all(t != -1 for t in ttls), "a finished workflow key never expires"


def _pttl(key: str):  # type: ignore[no-untyped-def]
    from bananas.ops import command

    ttl = yield command("PTTL", key)
    return ttl


def _depth(stats: QueueStats) -> int:
    return sum(stats.depth.values())


async def test_bananas_workflow_prints_the_tree(
    fleet: Fleet,
    redis_url: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bananas.cli import main

    wf = chain(task("add", {"n": 1}), task("fail", "x", max_retries=0), task("add"))
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    monkeypatch.setenv("BANANAS_PREFIX", prefix)
    code = await asyncio.to_thread(main, ["workflow", info.id, "--redis-url", redis_url])
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # a failed workflow
    assert out[0] == f"workflow {info.id} failed (1/3 nodes done)"
    assert out[1] == "  failed at #1: PermanentError: step x refuses"
    assert out[2] == "✓ #0 add @default done  = 1"
    assert out[3] == "  ✗ #1 fail @default dead after #0  error: PermanentError: step x refuses"
    assert out[4] == "    · #2 add @default waiting after #1"
    assert await asyncio.to_thread(main, ["workflow", "nope", "--redis-url", redis_url]) == 1


async def test_a_resumed_step_that_dies_again_fails_the_workflow_again(fleet: Fleet) -> None:
    client = fleet.client
    wf = chain(task("add"), task("gated", "g2", max_retries=0), task("collect"))
    info = await client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.FAILED
    step = workflow_job_id(info.id, 1)
    assert await client.requeue_dead(step, "default")  # the gate is still closed
    await eventually_async(lambda: _ran(fleet, step, 2), 10)
    again = await client.wait_for_workflow(info.id, timeout=20)
    assert again.status is WorkflowStatus.FAILED and again.failed_node == 1
    assert again.error == "PermanentError: gate g2 closed"
    # requeue_all_dead resumes too, once the cause is fixed
    fleet.gate.add("g2")
    assert await client.requeue_all_dead("default") >= 1
    done = await client.wait_for_workflow(info.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.result["parents"] == ["passed g2"]


async def test_independent_branches_finish_while_one_failed(fleet: Fleet) -> None:
    wf = group(
        chain(task("fail", "a", max_retries=0), task("add")),
        chain(task("add", {"n": 1}), task("add", {"n": 2})),
    )
    info = await fleet.client.submit_workflow_and_wait(wf, timeout=20)
    assert info.status is WorkflowStatus.FAILED and info.failed_node == 0

    async def other_branch_done() -> WorkflowInfo | None:
        later = await fleet.client.get_workflow(info.id)
        return later if later is not None and later.nodes[3].state is NodeState.DONE else None

    later = await eventually_async(other_branch_done, 10)
    assert [n.state for n in later.nodes] == [
        NodeState.DEAD,
        NodeState.WAITING,
        NodeState.DONE,
        NodeState.DONE,
    ]


async def test_a_poison_step_dead_lettered_by_the_reaper_fails_the_workflow(
    redis_url: str, prefix: str
) -> None:
    """A step whose worker dies on every delivery never reaches the acker: the reaper
    dead-letters it, and records it on its workflow."""
    from bananas.worker_runtime.leases import Reaper
    from bananas.worker_runtime.metrics import Metrics
    from bananas.worker_runtime.retry import RedisCaller

    async with AsyncClient(redis_url, prefix=prefix) as client:
        wf_id = await client.submit_workflow(
            chain(task("add", routing_key="held", max_retries=0), task("add", routing_key="held"))
        )
        leased = await client.run(client.broker.fetch("held", 1, lease_ms=1))
        assert [job.id for job in leased] == [workflow_job_id(wf_id, 0)]

        async def routes() -> list[str]:
            return ["held"]

        reaper = Reaper(client.broker, RedisCaller(client), routes, Metrics())

        async def reap() -> Reaped | None:
            reaped, _ = await client.run(reaper._reap("held"))
            return reaped if reaped.dead else None  # once the 1 ms lease has expired

        reaped = await eventually_async(reap, 5)
        assert reaped.dead == 1 and reaped.steps[0][0] == workflow_job_id(wf_id, 0)
        info = await client.wait_for_workflow(wf_id, timeout=5)
        assert info.status is WorkflowStatus.FAILED and info.failed_node == 0
        assert "the worker running it was lost" in info.error


async def test_a_workflow_that_refuses_a_step_holds_only_that_job(
    redis_url: str, prefix: str
) -> None:
    """A workflow script error (here a corrupted counter) must not stop the worker's
    acks: the step is left to its lease and runs again; other jobs complete meanwhile."""
    async with AsyncClient(redis_url, prefix=prefix) as client:
        f = Fleet(client)
        worker = Worker(
            _registry(f), client=client, metrics_port=0, concurrency=4, lease_duration=1.0
        )
        await worker.start()
        try:
            wf_id = await client.submit_workflow(
                chain(task("add", {"n": 1}, routing_key="held"), task("add"))
            )
            meta = KeySpace(prefix).workflow(wf_id).meta
            await client.run(_hset(meta, "remaining", "not a number"))
            await client.run(client.broker.add_routes(["held"]))
            # only now let the worker see the step (its routing key was not served)
            worker2 = Worker(
                _registry(f),
                client=client,
                metrics_port=0,
                routing_keys=["held"],
                lease_duration=1.0,
            )
            await worker2.start()
            try:
                first = workflow_job_id(wf_id, 0)
                await eventually_async(lambda: _ran(f, first, 2), 20)  # ran, held, ran again
                plain = await client.submit_and_wait("add", {"n": 5}, timeout=10)
                assert plain.result == 5, "the other acks kept flowing"
                await client.run(_hset(meta, "remaining", "2"))
                info = await client.wait_for_workflow(wf_id, timeout=20)
                assert info.status is WorkflowStatus.COMPLETED and info.result == 1
            finally:
                await worker2.stop()
        finally:
            await worker.stop()


def _hset(key: str, field: str, value: str):  # type: ignore[no-untyped-def]
    from bananas.ops import command

    yield command("HSET", key, field, value)
