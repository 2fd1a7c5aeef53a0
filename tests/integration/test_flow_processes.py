"""Flow control with several real ``bananas worker`` processes: global guarantees."""

from __future__ import annotations

import time

import pytest

from bananas import Client, JobSpec, JobStatus
from tests.integration.conftest import Spawn
from tests.support.processes import ledger
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


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


def spans(rows: list[list[str]], killed_at: float) -> list[tuple[float, float, str]]:
    """(start, end, job id) of every run in a ledger of ``span`` jobs; a run with no end
    (its worker was killed) ends at ``killed_at``."""
    starts: dict[tuple[str, str, str], float] = {}
    out = []
    for row in rows:
        what, job_id, pid, attempt = row[0], row[1], row[4], row[5]
        kind, _, at = what.partition("@")
        if kind == "start":
            starts[(job_id, pid, attempt)] = float(at)
        else:
            out.append((starts.pop((job_id, pid, attempt)), float(at), job_id))
    out += [(start, killed_at, key[0]) for key, start in starts.items()]
    return out


def most_at_once(runs: list[tuple[float, float, str]]) -> int:
    events = sorted([(s, 1) for s, _, _ in runs] + [(e, -1) for _, e, _ in runs])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_a_concurrency_limit_holds_across_workers_and_a_kill(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    qc.set_limit("tenant:*", concurrency=2)
    workers = [spawn(WORKER_CONCURRENCY="4", LEASE_DURATION="2s") for _ in range(3)]
    ids = qc.submit_many(
        [JobSpec("span", {"test": tag, "seconds": 0.2}, group="tenant:7") for _ in range(24)]
    )
    eventually(lambda: len(ledger(single_redis, tag)) >= 8, what="some runs")
    running = [r[4] for r in ledger(single_redis, tag) if r[0].startswith("start")]
    victim = next(w for w in workers if str(w.pid) == running[-1])  # it runs a job now
    victim.kill()
    killed_at = time.time()
    for job_id in ids:
        assert qc.wait_for_result(job_id, timeout=60).is_success()
    runs = spans(ledger(single_redis, tag), killed_at)
    assert most_at_once(runs) == 2, "the limit is 2, and 3 workers x 4 slots could run 12"
    assert len({r[2] for r in runs}) == 24


def test_a_rate_limit_holds_across_workers(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    qc.set_limit("sms", rate="20/s")
    for _ in range(3):
        spawn(WORKER_CONCURRENCY="4")
    # 30 s at 20/s (the window): 2 in the first burst, then 600 intervals
    ids = qc.submit_many([JobSpec("span", {"test": tag}, group="sms") for _ in range(602)])
    for job_id in ids:
        assert qc.wait_for_result(job_id, timeout=60).is_success()
    starts = sorted(s for s, _, _ in spans(ledger(single_redis, tag), 0.0))
    # the default burst at 20/s is 2: the first two start together
    rate = (len(starts) - 2) / (starts[-1] - starts[1])
    assert 18 <= rate <= 22, f"{rate:.1f} jobs/s for a limit of 20/s"


def test_a_small_group_is_not_stuck_behind_a_big_one(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str
) -> None:
    for _ in range(3):
        spawn(WORKER_CONCURRENCY="4")
    big = [JobSpec("span", {"test": tag, "seconds": 0.02}, group="big") for _ in range(2000)]
    qc.submit_many(big)
    eventually(lambda: len(ledger(single_redis, tag)) >= 100, what="the big group to run")
    small = qc.submit_many([JobSpec("span", {"test": tag}, group="small") for _ in range(10)])
    for job_id in small:
        assert qc.wait_for_result(job_id, timeout=60).is_success()
    rows = ledger(single_redis, tag)
    started = [r for r in rows if r[0].startswith("start")]
    first_small = min(i for i, r in enumerate(started) if r[1] in small)
    last_small = max(i for i, r in enumerate(started) if r[1] in small)
    big_between = sum(1 for r in started[first_small:last_small] if r[1] not in small)
    # round robin: one big job per small one, plus what the 12 slots had in flight
    assert big_between <= 10 + 2 * 12, f"{big_between} big jobs started while the small ran"
    assert last_small < 1000, "the small group waited for half the big one"


@pytest.mark.parametrize("handler", ["report_progress", "sync_report_progress"])
def test_watch_yields_progress_pushed_by_the_worker_and_ends_with_the_result(
    spawn: Spawn, qc: Client, single_redis: RedisServer, tag: str, handler: str
) -> None:
    spawn()
    job_id = qc.submit(handler, {"test": tag})
    events = qc.watch(job_id, timeout=30)
    seen = [next(events)]
    while seen[-1].progress != 50:
        seen.append(next(events))
    job = qc.get_job(job_id)
    assert job is not None and (job.progress, job.progress_info) == (50, {"step": 1})
    assert job.status is JobStatus.PROCESSING
    with single_redis.client() as r:
        r.rpush(f"go:{tag}", 1)
    rest = list(events)
    last = rest[-1]
    assert last.result is not None and last.result.result == "reported"
    assert last.status is JobStatus.COMPLETED
    progress = [e.progress for e in seen + rest if e.progress is not None]
    assert progress[0] == 50 and progress[-1] in (50, 100)
    assert progress == sorted(progress), "progress arrives in order"
