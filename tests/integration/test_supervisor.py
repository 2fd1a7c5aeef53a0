"""``bananas worker --processes N`` as real processes against a real Redis.

A ledger in Redis (``tests.apps.handlers``) records every run with its process id, so
each test checks from outside that nothing was lost and nothing ran twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

from bananas import Client, JobSpec, JobStatus
from bananas.worker_runtime.group_metrics import parse
from tests.integration.conftest import Spawn
from tests.support.processes import WorkerProcess, http_get, ledger
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


def runs(single_redis: RedisServer, tag: str, what: str = "ran") -> Counter[str]:
    return Counter(row[1] for row in ledger(single_redis, tag) if row[0] == what)


def full_log(proc: WorkerProcess) -> str:
    return Path(proc.log_path).read_text()


def metric(port: int, name: str, **labels: str) -> float:
    status, body = http_get(port, "/metrics")
    assert status == 200
    key = (name, tuple(sorted(labels.items())))
    for family in parse(body).values():
        if key in family.samples:
            return family.samples[key]
    return 0.0


def test_a_killed_child_is_restarted_and_its_job_recovered_by_lease(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="1", LEASE_DURATION="2s")
    jobs = qc.submit_many([JobSpec("sleep", {"test": tag, "seconds": 1.5}) for _ in range(2)])
    eventually(lambda: len(runs(single_redis, tag, "start")) == 2, what="both jobs started")
    starts = {row[1]: row[4] for row in ledger(single_redis, tag) if row[0] == "start"}
    assert len(set(starts.values())) == 2, "one job in each child"
    victim_job, victim = jobs[0], int(starts[jobs[0]])
    os.kill(victim, signal.SIGKILL)
    eventually(lambda: "was killed by SIGKILL" in full_log(group), what="the death logged")
    for job_id in jobs:
        assert qc.wait_for_result(job_id, timeout=20).is_success(), "a job was lost"
    rerun = [r for r in ledger(single_redis, tag) if r[0] == "start" and r[1] == victim_job]
    assert len(rerun) == 2 and rerun[-1][4] != str(victim) and rerun[-1][5] == "2"
    assert runs(single_redis, tag, "done") == {jobs[0]: 1, jobs[1]: 1}
    eventually(group.ready, 20, what="the group ready again with a new child")
    assert group.process is not None and group.process.poll() is None
    assert f"worker process 0 (pid {victim})" in full_log(group) or (
        f"worker process 1 (pid {victim})" in full_log(group)
    )


def test_sigterm_drains_every_child_and_the_supervisor_exits_0(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="2", SHUTDOWN_TIMEOUT="20s")
    running = qc.submit_many([JobSpec("sleep", {"test": tag, "seconds": 1}) for _ in range(4)])
    eventually(lambda: len(runs(single_redis, tag, "start")) == 4, what="four jobs started")
    pids = {row[4] for row in ledger(single_redis, tag)}
    assert len(pids) == 2, "both children took jobs"
    waiting = qc.submit_many([JobSpec("echo", {"test": tag}, priority="low") for _ in range(3)])
    assert group.stop() == 0
    for job_id in running:
        result = qc.get_result(job_id)
        assert result is not None and result.is_success(), "a running job was cut short"
    for job_id in waiting:  # handed back (or finished, if a child fetched it first)
        job = qc.get_job(job_id)
        assert job is not None and job.status in (JobStatus.PENDING, JobStatus.COMPLETED)
    assert qc.queue_stats().in_flight == 0
    assert qc.workers() == []
    log = full_log(group)
    assert log.count("exited with code 0") == 2 and "all worker processes stopped" in log
    spawn()  # a fresh worker finishes what was handed back: nothing was lost
    for job_id in waiting:
        assert qc.wait_for_result(job_id, timeout=10).is_success()
    assert set(runs(single_redis, tag, "done").values()) == {1}
    assert set(runs(single_redis, tag).values()) == {1}


def test_a_second_signal_ends_the_childrens_grace(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", SHUTDOWN_TIMEOUT="60s")
    job_id = qc.submit("sleep", {"test": tag, "seconds": 30})
    eventually(lambda: runs(single_redis, tag, "start"), what="job started")
    group.signal(signal.SIGTERM)
    eventually(lambda: "draining 2 worker process(es)" in group.log(), what="drain started")
    started = time.monotonic()
    group.signal(signal.SIGINT)
    assert group.process is not None and group.process.wait(15) == 0
    assert time.monotonic() - started < 10
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.PENDING, "not handed straight back"


def test_recycling_by_job_count_loses_and_duplicates_nothing(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="2", WORKER_MAX_JOBS_PER_CHILD="5")
    jobs = qc.submit_many([JobSpec("echo", {"test": tag, "i": i}) for i in range(40)])
    for job_id in jobs:
        assert qc.wait_for_result(job_id, timeout=60).is_success()
    ran = runs(single_redis, tag)
    assert ran == dict.fromkeys(jobs, 1), "every job ran exactly once"
    per_pid = Counter(row[4] for row in ledger(single_redis, tag))
    # A child stops fetching at its 5th job; what it holds by then (at most one job
    # per slot) still finishes there.
    assert max(per_pid.values()) <= 5 + 2
    assert len(per_pid) >= 40 // 7
    assert full_log(group).count("(finished 5 job(s))") >= len(per_pid) - 2
    # A recycled child is counted when its drain ends, which may come after its results.
    eventually(
        lambda: (
            metric(group.port, "bananas_worker_process_exits_total", reason="recycled")
            >= len(per_pid) - 2
        ),
        what="the recycled children counted",
    )
    labels = {"job_name": "echo", "routing_key": "default", "status": "completed"}
    eventually(  # recycled children's counts are kept
        lambda: metric(group.port, "bananas_jobs_processed_total", **labels) == 40,
        what="all 40 jobs counted",
    )
    assert metric(group.port, "bananas_jobs_processed_total", **labels) == 40, "never more"


def test_a_recycled_child_is_replaced_while_it_drains(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(
        WORKER_PROCESSES="1",
        WORKER_CONCURRENCY="2",
        WORKER_MAX_JOBS_PER_CHILD="1",
        SHUTDOWN_TIMEOUT="30s",
    )
    long = qc.submit("sleep", {"test": tag, "seconds": 4})
    eventually(lambda: runs(single_redis, tag, "start"), what="the long job started")
    first = qc.submit("echo", {"test": tag})  # the old child's 1st finished job: recycle
    eventually(lambda: "is recycling (finished 1 job(s))" in full_log(group), what="recycle")
    later = qc.submit("echo", {"test": tag})
    assert qc.wait_for_result(later, timeout=10).is_success()
    assert qc.get_result(long) is None, "the replacement waited for the whole drain"
    assert qc.wait_for_result(long, timeout=15).is_success()
    rows = ledger(single_redis, tag)
    pid_of = {row[1]: row[4] for row in rows}
    assert pid_of[later] != pid_of[long] == pid_of[first]
    assert [row[0] for row in rows if row[1] == long] == ["start", "done"], "ran once"
    drained = f"(pid {pid_of[long]}) exited with code 0 after its drain"
    eventually(lambda: drained in full_log(group), what="the old child's exit")
    # (the replacement, limited to one job too, may have been recycled since)
    assert metric(group.port, "bananas_worker_process_exits_total", reason="recycled") >= 1


def test_recycling_by_memory_loses_and_duplicates_nothing(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="1", WORKER_MAX_MEMORY_PER_CHILD="110")
    payload = {"test": tag, "mib": 16, "seconds": 0.3}
    jobs = qc.submit_many([JobSpec("hog", payload) for _ in range(16)])
    for job_id in jobs:
        assert qc.wait_for_result(job_id, timeout=90).is_success()
    assert runs(single_redis, tag, "start") == dict.fromkeys(jobs, 1), "a job ran twice"
    assert runs(single_redis, tag, "done") == dict.fromkeys(jobs, 1)
    log = full_log(group)
    assert "recycling (resident memory" in log and "> 110 MiB)" in log
    assert len({row[4] for row in ledger(single_redis, tag)}) >= 3


def test_one_metrics_endpoint_sums_all_children(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="1")
    jobs = qc.submit_many([JobSpec("sleep", {"test": tag, "seconds": 0.2}) for _ in range(8)])
    for job_id in jobs:
        assert qc.wait_for_result(job_id, timeout=20).is_success()
    per_pid = Counter(row[4] for row in ledger(single_redis, tag) if row[0] == "done")
    assert len(per_pid) == 2, "both children ran jobs"
    for _ in range(3):
        qc.submit("echo", {"test": tag}, delay=3600)
    labels = {"job_name": "sleep", "routing_key": "default"}
    total = metric(group.port, "bananas_jobs_processed_total", status="completed", **labels)
    assert total == 8 == sum(per_pid.values())
    assert metric(group.port, "bananas_job_duration_seconds_count", **labels) == 8
    scheduled = metric(group.port, "bananas_jobs_scheduled", routing_key="default")
    assert scheduled == 3, "a queue gauge read from Redis is not counted once per child"
    assert metric(group.port, "bananas_worker_processes") == 2
    assert http_get(group.port, "/healthz")[0] == 200


def test_a_crash_looping_group_is_unhealthy(spawn: Spawn, tag: str) -> None:
    # Every child exits 3 at start (its Redis is not there): the slot restarts with
    # backoff, logs why, and after a few failures in a row /healthz says so.
    group = spawn(
        wait_ready=False,
        WORKER_PROCESSES="1",
        WORKER_MAX_JOBS_PER_CHILD="100",
        REDIS_URL="redis://127.0.0.1:1",
    )
    eventually(lambda: "exited with code 3" in full_log(group), 30, what="first failure")
    assert http_get(group.port, "/readyz")[0] == 503
    eventually(
        lambda: http_get(group.port, "/healthz")[0] == 503, 60, interval=0.2, what="unhealthy"
    )
    assert "failure 5 in a row" in full_log(group)
    assert group.stop() == 0


def test_a_configuration_error_stops_the_group_with_code_2(spawn: Spawn) -> None:
    group = spawn(wait_ready=False, WORKER_PROCESSES="2", BANANAS_APP="tests.apps.no_such_module")
    assert group.process is not None and group.process.wait(30) == 2
    assert "bad configuration" in full_log(group)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_children_do_not_outlive_a_killed_supervisor(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    group = spawn(WORKER_PROCESSES="2", WORKER_CONCURRENCY="1")
    jobs = qc.submit_many([JobSpec("sleep", {"test": tag, "seconds": 1}) for _ in range(2)])
    eventually(lambda: len(runs(single_redis, tag, "start")) == 2, what="both jobs started")
    children = {int(row[4]) for row in ledger(single_redis, tag)}
    group.kill()  # SIGKILL: no signal reaches the children, their link just closes
    eventually(lambda: all(gone(pid) for pid in children), 20, what="the children exited")
    for job_id in jobs:  # they drained: the running jobs finished, nothing was left leased
        result = qc.get_result(job_id)
        assert result is not None and result.is_success()
    assert qc.queue_stats().in_flight == 0
    assert "the supervisor went away: draining" in full_log(group)
