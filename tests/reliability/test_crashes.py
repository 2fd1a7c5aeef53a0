"""Workers SIGKILLed under load: nothing is lost, and a job runs again only if the
killed worker held it (``tests.chaos.crashes`` has the scenario). And handlers that
misbehave (results over MAX_RESULT_BYTES, KeyboardInterrupt, MemoryError) fail their
own job with a clear error while the worker process carries on."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterator

import pytest

from bananas import Client
from tests.chaos import APP, CI, Servers, crashes, table
from tests.support.processes import WorkerProcess, http_get
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(150)


def test_sigkilled_workers_lose_no_job(servers: Servers, rng: random.Random) -> None:
    report = crashes(servers, CI, rng)
    print(table([report]))
    assert report.faults >= 3, "too few kills to prove anything: the drain was too quick"
    assert report.lost == 0, report.details
    assert report.acks == report.jobs, "a job was completed twice (or never) in Redis"
    # A completed run is repeated only when its ack died with the worker: the job was
    # still leased to the victim when it was killed.
    assert report.dup_bound is not None
    assert report.duplicated <= report.dup_bound
    assert report.details["leases reaped"] >= report.dup_bound
    # Orphans come back after one lease (2 s) plus a reaper pass: seconds, not minutes.
    # An orphan re-run on a worker killed next waits a second lease, hence the max.
    assert statistics.median(report.recovery) < 2 * CI.lease + 1, report.recovery
    assert max(report.recovery) < 4 * CI.lease + 2, report.recovery


@pytest.fixture
def worker_factory(
    single_redis: RedisServer, prefix: str
) -> Iterator[Callable[..., WorkerProcess]]:
    procs: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        proc = WorkerProcess(single_redis.url, prefix, env=env, app=APP)
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.cleanup()


def test_misbehaving_handlers_fail_their_job_and_the_worker_survives(
    worker_factory: Callable[..., WorkerProcess], single_redis: RedisServer, prefix: str
) -> None:
    worker = worker_factory(MAX_RESULT_BYTES="1000", RETRY_BACKOFF_MAX="0.1s")
    with Client(single_redis.url, prefix=prefix) as client:
        big = client.submit("big_result", {"bytes": 5000}, max_retries=3)
        fits = client.submit("big_result", {"bytes": 900})
        raisers = {
            name: client.submit(name, max_retries=1)
            for name in ("interrupt", "sync_interrupt", "oom", "sync_oom")
        }
        too_big = client.wait_for_result(big, timeout=15)
        assert too_big.is_failed()
        assert too_big.error == "result is 5002 bytes, above the limit of 1000"
        big_job = client.get_job(big)
        assert big_job is not None and big_job.attempts == 1, "a too-big result is not retried"
        assert client.wait_for_result(fits, timeout=15).result == "x" * 900
        expected = {
            "interrupt": "KeyboardInterrupt: handler pressed ctrl-c",
            "sync_interrupt": "KeyboardInterrupt: sync handler pressed ctrl-c",
            "oom": "MemoryError: handler ran out of memory",
            "sync_oom": "MemoryError: sync handler ran out of memory",
        }
        for name, job_id in raisers.items():
            result = client.wait_for_result(job_id, timeout=15)
            assert result.is_failed() and result.error == expected[name]
            job = client.get_job(job_id)
            assert job is not None and job.attempts == 2, f"{name}: retried like any failure"
        dead = {d.job_id for d in client.dead_letters(count=10)}
        assert dead == {big, *raisers.values()}
        assert client.submit_and_wait("echo", {"still": "alive"}, timeout=10).is_success()
    assert worker.process is not None and worker.process.poll() is None
    assert http_get(worker.port, "/healthz") == (200, "ok\n")
