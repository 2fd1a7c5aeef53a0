"""The queue engine's guarantees, driven through the broker API on every backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bananas import Client, JobSpec, JobStatus, Priority
from bananas.broker import Leased, Outcome
from bananas.models import JobResult
from tests.support.clock import FakeClock

LEASE_MS = 10_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def qc(redis_url: str, prefix: str, clock: FakeClock) -> Iterator[Client]:
    with Client(redis_url, prefix=prefix, clock=clock) as c:
        yield c


def fetch(c: Client, count: int = 10, *, route: str = "default", fair: int = 0) -> list[Leased]:
    return c.run(c.broker.fetch(route, count, LEASE_MS, fair=fair))


def expire(c: Client, job_id: str, route: str = "default") -> None:
    """Make a lease's deadline pass: deadlines are Redis' own clock, which a test cannot
    move, so the deadline is moved instead (to the epoch)."""
    assert c.redis.zadd(c.broker.route(route).leases, {job_id: 0}, xx=True, ch=True) == 1


def make_due(c: Client, job_id: str, route: str = "default") -> None:
    """The same for a scheduled job's due time."""
    assert c.redis.zadd(c.broker.route(route).scheduled, {job_id: 0}, xx=True, ch=True) == 1


def redis_now_ms(c: Client) -> int:
    seconds, micros = c.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def done(item: Leased, result: object = None) -> Outcome:
    body = JobResult(job_id=item.id, status=JobStatus.COMPLETED, result=result)
    return Outcome(item.id, item.attempt, body.model_dump_json(), 60_000)


def failed(item: Leased, retry_in_ms: int, error: str = "boom") -> Outcome:
    body = JobResult(job_id=item.id, status=JobStatus.FAILED, error=error)
    return Outcome(item.id, item.attempt, body.model_dump_json(), 60_000, error, retry_in_ms)


def test_strict_priority_inside_a_routing_key(qc: Client) -> None:
    low = qc.submit("j", priority="low")
    normal = qc.submit("j", priority="normal")
    high = qc.submit("j", priority="high")
    assert [x.id for x in fetch(qc)] == [high, normal, low]


def test_fair_turn_takes_one_of_each_lower_priority_first(qc: Client) -> None:
    qc.submit_many([JobSpec("j", priority="high") for _ in range(5)])
    low = qc.submit("j", priority="low")
    normal = qc.submit("j", priority="normal")
    assert [x.id for x in fetch(qc, 3)][:1] != [normal]
    taken = [x.id for x in fetch(qc, 3, fair=1)]
    assert taken[:2] == [normal, low]


def test_fair_turn_serves_low_even_with_one_free_slot(qc: Client) -> None:
    qc.submit_many([JobSpec("j", priority="high") for _ in range(5)])
    normal = qc.submit("j", priority="normal")
    low = qc.submit("j", priority="low")
    assert [x.id for x in fetch(qc, 1, fair=2)] == [low]
    assert [x.id for x in fetch(qc, 1, fair=1)] == [normal]


def test_fifo_within_a_priority_and_batch_fetch(qc: Client) -> None:
    ids = qc.submit_many([JobSpec("j", {"i": i}) for i in range(25)])
    got = fetch(qc, 10) + fetch(qc, 10) + fetch(qc, 10)
    assert [x.id for x in got] == ids
    assert all(x.attempt == 1 for x in got)
    assert qc.queue_stats().in_flight == 25


def test_routing_keys_are_isolated(qc: Client) -> None:
    qc.submit("render", routing_key="gpu")
    assert fetch(qc, route="default") == []
    assert len(fetch(qc, route="gpu")) == 1


def test_ack_stores_result_and_clears_the_job(qc: Client, redis_url: str) -> None:
    job_id = qc.submit("add", [1, 2])
    item = fetch(qc)[0]
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.PROCESSING and job.attempts == 1
    assert qc.run(qc.broker.ack("default", [done(item, 3)])) == [True]
    result = qc.get_result(job_id)
    assert result is not None and result.result == 3
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.name == "add"
    stats = qc.queue_stats()
    assert (stats.queued, stats.in_flight) == (0, 0)
    ttl = qc.redis.pttl(qc.broker.route("default").result(job_id))
    assert 0 < ttl <= 60_000


def test_stale_token_is_refused_after_reap_and_redelivery(qc: Client, clock: FakeClock) -> None:
    qc.submit("slow")
    first = fetch(qc)[0]
    assert qc.run(qc.broker.reap("default"))[:2] == (0, 0)
    expire(qc, first.id)
    assert qc.run(qc.broker.reap("default"))[:2] == (1, 0)
    second = fetch(qc)[0]
    assert (second.id, second.attempt) == (first.id, 2)
    assert qc.run(qc.broker.ack("default", [done(first)])) == [False]
    assert qc.run(qc.broker.fail("default", [failed(first, -1)])) == [0]
    assert qc.run(qc.broker.renew("default", [(first.id, 1)], LEASE_MS)) == [first.id]
    assert qc.run(qc.broker.ack("default", [done(second)])) == [True]


def test_renew_keeps_the_lease_alive(qc: Client, clock: FakeClock) -> None:
    qc.submit("long")
    item = fetch(qc)[0]
    leases = qc.broker.route("default").leases
    for _ in range(3):
        expire(qc, item.id)
        assert qc.run(qc.broker.renew("default", [(item.id, item.attempt)], LEASE_MS)) == []
        assert qc.run(qc.broker.reap("default"))[:2] == (0, 0)
        # The new deadline is Redis' clock plus the lease, whatever the host's clock says.
        assert abs(qc.redis.zscore(leases, item.id) - redis_now_ms(qc) - LEASE_MS) < 1000
    expire(qc, item.id)
    assert qc.run(qc.broker.reap("default"))[:2] == (1, 0)


def test_deadlines_are_redis_clock_not_the_hosts(qc: Client, clock: FakeClock) -> None:
    clock.advance(3600)  # this host's clock is an hour fast
    qc.submit("j")
    later = qc.submit("j", delay=5)
    item = fetch(qc)[0]
    route = qc.broker.route("default")
    assert abs(qc.redis.zscore(route.leases, item.id) - redis_now_ms(qc) - LEASE_MS) < 1000
    assert abs(qc.redis.zscore(route.scheduled, later) - redis_now_ms(qc) - 5000) < 1000
    assert qc.run(qc.broker.reap("default"))[:2] == (0, 0), "a fast host reaped a live lease"
    moved, due_in = qc.run(qc.broker.promote("default"))
    assert moved == 0 and due_in is not None and 4000 < due_in <= 5000


def test_reaped_job_goes_back_to_the_head(qc: Client, clock: FakeClock) -> None:
    crashed = qc.submit("a", priority="low")
    fetch(qc, 1)
    later = qc.submit("b", priority="low")
    expire(qc, crashed)
    qc.run(qc.broker.reap("default"))
    assert [x.id for x in fetch(qc)] == [crashed, later]


def test_poison_job_is_dead_lettered_after_max_deliveries(qc: Client, clock: FakeClock) -> None:
    job_id = qc.submit("crashes_worker", max_retries=1)
    for expected in [(1, 0), (0, 1)]:
        assert len(fetch(qc)) == 1
        expire(qc, job_id)
        assert qc.run(qc.broker.reap("default"))[:2] == expected
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert "lease expired 2 times" in job.error
    result = qc.get_result(job_id)
    assert result is not None and result.is_failed()
    assert [d.job_id for d in qc.dead_letters()] == [job_id]


def test_failure_retries_then_dead_letters(qc: Client, clock: FakeClock) -> None:
    job_id = qc.submit("flaky", max_retries=2)
    for attempt in (1, 2):
        item = fetch(qc)[0]
        assert item.attempt == attempt
        retry_at = 5_000
        assert qc.run(qc.broker.fail("default", [failed(item, retry_at, f"e{attempt}")])) == [1]
        job = qc.get_job(job_id)
        assert job is not None and job.status is JobStatus.SCHEDULED and job.error == f"e{attempt}"
        assert fetch(qc) == []
        assert qc.run(qc.broker.promote("default"))[0] == 0
        make_due(qc, job_id)
        assert qc.run(qc.broker.promote("default"))[0] == 1
    item = fetch(qc)[0]
    assert qc.run(qc.broker.fail("default", [failed(item, -1, "final")])) == [2]
    dead = qc.dead_letters()
    assert [(d.job_id, d.attempts, d.error) for d in dead] == [(job_id, 3, "final")]
    assert dead[0].job is not None and dead[0].job.name == "flaky"
    assert qc.wait_for_result(job_id, timeout=1).error == "final"


def test_dead_letter_requeue_and_purge(qc: Client, clock: FakeClock) -> None:
    ids = qc.submit_many([JobSpec("bad", max_retries=0) for _ in range(3)])
    for item in fetch(qc):
        qc.run(qc.broker.fail("default", [failed(item, -1)]))
    assert qc.queue_stats().dead == 3
    assert qc.requeue_dead(ids[0]) is True
    assert qc.requeue_dead(ids[0]) is False
    job = qc.get_job(ids[0])
    assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0
    assert qc.get_result(ids[0]) is None, "the old failure must not satisfy a new waiter"
    seen: list[int] = []
    assert qc.purge_dead(progress=seen.append) == 2
    assert seen == [2] and qc.queue_stats().dead == 0
    assert qc.get_job(ids[1]) is not None  # the failure result is still kept
    item = fetch(qc)[0]
    qc.run(qc.broker.fail("default", [failed(item, -1)]))
    assert qc.requeue_all_dead() == 1 and qc.queue_stats().queued == 1


def test_release_hands_jobs_back_without_counting_the_attempt(qc: Client) -> None:
    first, second = qc.submit_many([JobSpec("a", priority="high"), JobSpec("b")])
    held = fetch(qc)
    released = qc.run(
        qc.broker.release(
            "default",
            [
                (x.id, x.attempt, Priority.HIGH)
                if x.id == first
                else (x.id, x.attempt, Priority.NORMAL)
                for x in held
            ],
        )
    )
    assert released == 2
    again = fetch(qc)
    assert [(x.id, x.attempt) for x in again] == [(first, 1), (second, 1)]


def test_stats_report_oldest_ready_age(qc: Client, clock: FakeClock) -> None:
    assert qc.queue_stats().oldest_age is None
    qc.submit("x", priority="low")
    clock.advance(30)
    qc.submit("y", priority="high")
    stats = qc.queue_stats()
    assert stats.oldest_age is not None and 29 < stats.oldest_age < 40


def test_earlier_delayed_job_wakes_the_promoter(qc: Client) -> None:
    r = qc.broker.route("default")
    qc.submit("later", delay=600)
    assert qc.redis.lpop(r.schedwake) == "1"
    qc.submit("even_later", delay=900)
    assert qc.redis.llen(r.schedwake) == 0
    qc.submit("sooner", delay=60)
    assert qc.redis.llen(r.schedwake) == 1


def test_enqueue_wakes_idle_workers_once(qc: Client) -> None:
    r = qc.broker.route("default")
    qc.submit_many([JobSpec("x") for _ in range(5)])
    assert qc.redis.llen(r.wake) == 1
    qc.redis.delete(r.wake)
    fetch(qc, 2)
    assert qc.redis.llen(r.wake) == 1, "jobs left after a fetch pass the baton on"
    qc.redis.delete(r.wake)
    fetch(qc, 10)
    assert qc.redis.llen(r.wake) == 0


def test_stats_count_the_scheduled_jobs_due_within_a_window(redis_url: str, prefix: str) -> None:
    """The operator sizes a pool at zero by the jobs due within one poll (Redis' clock)."""
    with Client(redis_url, prefix=prefix) as c:
        c.submit("soon", delay=2)
        c.submit("later", delay=3600)
        stats = c.queue_stats()
        assert (stats.scheduled, stats.due) == (2, 0)
        assert c.queue_stats(due_within=15).due == 1
        assert c.queue_stats(due_within=7200).due == 2
