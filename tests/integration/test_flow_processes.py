"""Flow control with several real ``bananas worker`` processes: global guarantees."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from bananas import Client, JobSpec, JobStatus
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def qc(single_redis: RedisServer, prefix: str) -> Iterator[Client]:
    with Client(single_redis.url, prefix=prefix) as c:
        yield c


@pytest.fixture
def spawn(single_redis: RedisServer, prefix: str) -> Iterator[Spawn]:
    procs: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        proc = WorkerProcess(single_redis.url, prefix, env=env)
        procs.append(proc)
        return proc.start(True)

    yield start
    for proc in procs:
        proc.cleanup()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def ledger(single_redis: RedisServer, tag: str) -> list[list[str]]:
    with single_redis.client() as r:
        return [row.split("|") for row in r.lrange(f"ledger:{tag}", 0, -1)]


def test_a_paused_key_runs_nothing_on_any_worker_until_resumed(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    for _ in range(3):
        spawn(WORKER_ROUTING_KEYS="default,gpu", WORKER_CONCURRENCY="4")
    running = qc.submit("sleep", {"test": tag, "seconds": 1.0})
    eventually(lambda: ledger(single_redis, tag), what="the slow job to start")
    qc.pause("default")
    paused = qc.submit_many([JobSpec("echo", {"test": tag, "n": i}) for i in range(20)])
    # every worker keeps fetching (the gpu key): 60 gpu jobs go through all three
    gpu = qc.submit_many([JobSpec("echo", {"test": tag}, routing_key="gpu") for _ in range(60)])
    for job_id in gpu:
        assert qc.wait_for_result(job_id, timeout=20).is_success()
    assert qc.wait_for_result(running, timeout=20).is_success(), "a running job finishes"
    rows = ledger(single_redis, tag)
    assert {r[1] for r in rows} & set(paused) == set(), "a paused job ran"
    assert len({r[4] for r in rows if r[3] == "gpu"}) == 3, "not every worker was fetching"
    assert qc.queue_stats().queued == 20
    qc.resume("default")
    for job_id in paused:
        assert qc.wait_for_result(job_id, timeout=20).is_success()
    job = qc.get_job(paused[0])
    assert job is not None and job.status is JobStatus.COMPLETED


def test_twenty_debounced_submits_run_once_with_the_last_payload(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    for _ in range(3):
        spawn(WORKER_CONCURRENCY="4")
    ids = {
        qc.submit("echo", {"test": tag, "n": n}, debounce=1.0, unique_key=f"sync:{tag}")
        for n in range(20)
    }
    assert len(ids) == 1
    result = qc.wait_for_result(ids.pop(), timeout=20)
    assert result.is_success() and result.result == {"test": tag, "n": 19}
    # a plain job submitted afterwards has run too: a second debounced run would show here
    qc.submit_and_wait("echo", {"test": tag, "n": "after"}, timeout=20)
    assert [row[0] for row in ledger(single_redis, tag)] == ["ran", "ran"]
