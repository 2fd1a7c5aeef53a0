"""Workers as real subprocesses against a real Redis: what a deployment would see."""

from __future__ import annotations

import signal
import time

from bananas import Client, JobSpec, JobStatus, Priority
from tests.integration.conftest import Spawn
from tests.support.processes import WorkerProcess, http_get, ledger
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


def test_async_and_sync_handlers_store_results(spawn: Spawn, qc: Client, tag: str) -> None:
    spawn()
    a = qc.submit_and_wait("echo", {"test": tag, "n": 1}, timeout=10)
    b = qc.submit_and_wait("sync_echo", {"test": tag, "n": 2}, timeout=10)
    assert a.is_success() and a.result == {"test": tag, "n": 1}
    assert b.is_success() and b.result == {"thread": True, "test": tag, "n": 2}


def test_priority_order_inside_a_routing_key(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    low = qc.submit("echo", {"test": tag}, priority="low")
    normal = qc.submit("echo", {"test": tag}, priority="normal")
    high = qc.submit("echo", {"test": tag}, priority="high")
    spawn(WORKER_CONCURRENCY="1")
    eventually(lambda: len(ledger(single_redis, tag)) == 3, what="three jobs")
    assert [row[1] for row in ledger(single_redis, tag)] == [high, normal, low]


def test_routing_isolation(spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str) -> None:
    spawn(WORKER_ROUTING_KEYS="default")
    gpu = qc.submit("echo", {"test": tag}, routing_key="gpu")
    qc.submit_and_wait("echo", {"test": tag}, timeout=10)
    job = qc.get_job(gpu)
    assert job is not None and job.status is JobStatus.PENDING, "a default worker ran a gpu job"
    spawn(WORKER_ROUTING_KEYS="gpu", WORKER_MODE="specialized")
    result = qc.wait_for_result(gpu, timeout=10)
    assert result.is_success()
    assert [r[3] for r in ledger(single_redis, tag)] == ["default", "gpu"]


def test_retry_then_success_and_dead_letter(spawn: Spawn, qc: Client, tag: str) -> None:
    spawn(RETRY_BACKOFF_MAX="0.2s")
    ok = qc.submit("flaky", {"test": tag, "fail_times": 2}, max_retries=3)
    bad = qc.submit("flaky", {"test": tag, "fail_times": 9}, max_retries=1)
    perm = qc.submit("permanent", {"test": tag})
    assert qc.wait_for_result(ok, timeout=15).result == "recovered"
    job = qc.get_job(ok)
    assert job is not None and job.status is JobStatus.COMPLETED
    failed = qc.wait_for_result(bad, timeout=15)
    assert failed.is_failed() and failed.error == "RuntimeError: flaky failure 2"
    dead = qc.wait_for_result(perm, timeout=10)
    assert dead.error == "PermanentError: bad input, do not retry"
    assert sorted(d.job_id for d in qc.dead_letters()) == sorted([bad, perm])
    perm_job = qc.get_job(perm)
    assert perm_job is not None and perm_job.attempts == 1


def test_timeouts_fail_the_attempt(spawn: Spawn, qc: Client, tag: str) -> None:
    spawn()
    slow = qc.submit("sleep", {"test": tag, "seconds": 30}, timeout=0.3, max_retries=0)
    slow_sync = qc.submit("sync_sleep", {"test": tag, "seconds": 3}, timeout=0.3, max_retries=0)
    for job_id in (slow, slow_sync):
        result = qc.wait_for_result(job_id, timeout=10)
        assert result.is_failed() and result.error == "timed out after 0.3s"
    assert qc.submit_and_wait("echo", {"test": tag}, timeout=10).is_success()


def test_a_handler_cannot_kill_the_worker(spawn: Spawn, qc: Client, tag: str) -> None:
    worker = spawn()
    exits = qc.submit("exits", {"test": tag}, max_retries=0)
    junk = qc.submit("unserialisable", {"test": tag})
    nobody = qc.submit("no_such_handler", {"test": tag}, max_retries=0)
    assert qc.wait_for_result(exits, timeout=10).error == "SystemExit: 3"
    assert "result is not JSON-serialisable" in qc.wait_for_result(junk, timeout=10).error
    assert qc.wait_for_result(nobody, timeout=10).error == "no handler for no_such_handler"
    assert qc.submit_and_wait("echo", {"test": tag}, timeout=10).is_success()
    assert worker.process is not None and worker.process.poll() is None


def test_garbage_record_is_dead_lettered(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    route = qc.broker.route("default")
    qc.submit("echo", {"test": tag})  # makes the route known
    with single_redis.client() as r:
        r.hset(route.jobs, "garbage-1", "\x00\xffnot json")
        r.hset(route.jobs, "future-1", '{"id":"future-1","name":"echo","v":99}')
        r.rpush(route.queue(Priority.NORMAL), "garbage-1", "future-1")
    spawn()
    eventually(lambda: qc.queue_stats().dead == 2, what="both records dead-lettered")
    errors = {d.job_id: d.error for d in qc.dead_letters()}
    assert errors["garbage-1"].startswith("unreadable job record")
    assert "schema version 99" in errors["future-1"]
    assert qc.submit_and_wait("echo", {"test": tag}, timeout=10).is_success()


def test_sigterm_drains_running_jobs_and_hands_back_the_rest(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    worker = spawn(WORKER_CONCURRENCY="2", SHUTDOWN_TIMEOUT="20s")
    running = qc.submit_many([JobSpec("sleep", {"test": tag, "seconds": 1}) for _ in range(2)])
    eventually(lambda: len(ledger(single_redis, tag)) == 2, what="both jobs started")
    waiting = qc.submit_many([JobSpec("echo", {"test": tag}, priority="low") for _ in range(3)])
    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 10
    for job_id in running:
        assert qc.get_result(job_id) is not None, "a running job was cut short"
    for job_id in waiting:
        job = qc.get_job(job_id)
        assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0
    assert qc.queue_stats().in_flight == 0
    assert qc.workers() == []


def test_sigterm_past_the_grace_releases_at_once(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    worker = spawn(SHUTDOWN_TIMEOUT="0.5s", LEASE_DURATION="60s")
    job_id = qc.submit("sleep", {"test": tag, "seconds": 30})
    eventually(lambda: ledger(single_redis, tag), what="job started")
    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 5
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.PENDING, "not handed straight back"


def test_second_signal_shortens_the_wait(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    worker = spawn(SHUTDOWN_TIMEOUT="60s")
    qc.submit("sleep", {"test": tag, "seconds": 30})
    eventually(lambda: ledger(single_redis, tag), what="job started")
    worker.signal(signal.SIGTERM)
    eventually(lambda: "draining" in worker.log(), what="drain started")
    started = time.monotonic()
    worker.signal(signal.SIGINT)
    assert worker.process is not None and worker.process.wait(10) == 0
    assert time.monotonic() - started < 5


def test_sigkill_lease_is_reaped_and_job_reruns_elsewhere(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    victim = spawn(LEASE_DURATION="2s", WORKER_ROUTING_KEYS="slow", WORKER_MODE="specialized")
    job_id = qc.submit("sleep", {"test": tag, "seconds": 0.5}, routing_key="slow")
    eventually(lambda: ledger(single_redis, tag), what="job started")
    victim.kill()
    killed_at = time.monotonic()
    spawn(LEASE_DURATION="2s", WORKER_ROUTING_KEYS="slow", WORKER_MODE="specialized")
    result = qc.wait_for_result(job_id, timeout=15)
    assert result.is_success()
    assert time.monotonic() - killed_at < 2 + 3
    rows = ledger(single_redis, tag)
    starts = [r for r in rows if r[0] == "start"]
    assert len({r[4] for r in starts}) == 2, "the job must re-run in another process"
    assert starts[-1][5] == "2", "the reaped delivery counts as an attempt"


def test_health_and_metrics_over_http(spawn: Spawn, qc: Client, tag: str) -> None:
    worker = spawn()
    assert http_get(worker.port, "/healthz") == (200, "ok\n")
    assert http_get(worker.port, "/readyz") == (200, "ready\n")
    qc.submit_and_wait("echo", {"test": tag}, timeout=10)
    qc.submit("echo", {"test": tag}, routing_key="elsewhere")
    status, body = http_get(worker.port, "/metrics")
    assert status == 200
    assert (
        'bananas_jobs_processed_total{job_name="echo",routing_key="default",status="completed"} 1.0'
    ) in body
    assert 'bananas_queue_depth{priority="normal",routing_key="default"} 0.0' in body
    assert http_get(worker.port, "/nope")[0] == 404


def test_worker_registers_with_a_heartbeat(spawn: Spawn, qc: Client) -> None:
    worker = spawn(WORKER_CONCURRENCY="7", WORKER_ROUTING_KEYS="a,b", WORKER_MODE="specialized")
    [info] = qc.workers()
    assert (info.pid, info.concurrency, info.routing_keys) == (worker.pid, 7, ["a", "b"])
    worker.stop()
    assert qc.workers() == []


def test_bad_configuration_stops_startup(spawn: Spawn) -> None:
    worker = spawn(wait_ready=False, JOB_TIMEOUT="soon")
    assert worker.process is not None and worker.process.wait(20) == 2
    assert "JOB_TIMEOUT='soon' is not valid" in worker.log()
    assert "Go duration" in worker.log()


def test_redis_restart_is_survived(single_redis: RedisServer, prefix: str, tag: str) -> None:
    server = RedisServer(single_redis.binary).start()
    proc = WorkerProcess(server.url, prefix).start()
    try:
        with Client(server.url, prefix=prefix) as c:
            assert c.submit_and_wait("echo", {"test": tag}, timeout=10).is_success()
            server.stop()
            eventually(lambda: http_get(proc.port, "/readyz")[0] == 503, what="readyz false")
            server.start()
            eventually(lambda: http_get(proc.port, "/readyz")[0] == 200, 15, what="readyz true")
            assert c.submit_and_wait("echo", {"test": tag}, timeout=10).is_success()
    finally:
        proc.cleanup()
        server.cleanup()
