"""The browsing and managing operations (``bananas.admin``) on every backend, Cluster included."""

from __future__ import annotations

import pytest

from bananas import Client, JobStatus
from bananas import broker as broker_module
from bananas.admin import Admin, JobState
from bananas.broker import Leased, Outcome
from bananas.models import JobResult
from bananas.timings import bucket, merge, tally

pytestmark = pytest.mark.timeout(60)


def test_pages_of_each_state(client: Client) -> None:
    admin = Admin(client.broker)
    high = client.submit_many([{"name": "a", "payload": i, "priority": "high"} for i in range(3)])
    low = client.submit_many([{"name": "b", "payload": i, "priority": "low"} for i in range(4)])
    later = client.submit("c", delay=100)
    page = client.run(admin.page("default", JobState.READY, 2, 3))
    assert page.total == 7 and [r.id for r in page.rows] == [high[2], low[0], low[1]]
    assert page.rows[0].job is not None and page.rows[0].job.status is JobStatus.PENDING
    back = client.run(admin.page("default", JobState.READY, 0, 2, reverse=True))
    assert [r.id for r in back.rows] == [low[3], low[2]]
    scheduled = client.run(admin.page("default", JobState.SCHEDULED))
    assert [r.id for r in scheduled.rows] == [later] and scheduled.rows[0].at is not None
    assert client.run(admin.state_size("default", JobState.READY, None)) == 7
    assert client.run(admin.run_now("default", [later, "missing"])) == 1
    assert client.queue_stats().queued == 8


def test_in_flight_and_dead_pages_and_delete(client: Client) -> None:
    admin, broker = Admin(client.broker), client.broker
    ids = client.submit_many([{"name": "x", "payload": i} for i in range(3)])
    leased = client.run(broker.fetch("default", 3, 30_000))
    assert [j.id for j in leased] == ids
    in_flight = client.run(admin.page("default", JobState.IN_FLIGHT))
    assert {r.id for r in in_flight.rows} == set(ids)
    assert client.run(admin.delete("default", [ids[0]])) == 0, "a running job is left alone"
    client.run(broker.fail("default", [Outcome(ids[0], 1, "{}", 60_000, error="bad")]))
    dead = client.run(admin.page("default", JobState.DEAD))
    assert [(r.id, r.error) for r in dead.rows] == [(ids[0], "bad")]
    assert client.run(admin.delete("default", [ids[0]])) == 1
    assert client.get_job(ids[0]) is None and client.queue_stats().dead == 0


def test_delete_ready_and_scheduled(client: Client) -> None:
    admin = Admin(client.broker)
    a = client.submit("x", 1, priority="low")
    b = client.submit("x", 2, delay=60)
    assert client.run(admin.delete("default", [a, b, "nope"])) == 2
    stats = client.queue_stats()
    assert stats.queued == 0 and stats.scheduled == 0
    assert client.get_job(a) is None and client.get_job(b) is None


def test_leader_and_audit(client: Client) -> None:
    admin = Admin(client.broker)
    assert client.run(admin.leader("cron")) is None
    client.run(client.broker.lead("cron", "me", 10_000))
    assert client.run(admin.leader("cron")) == "me"
    client.run(admin.record_audit('{"a": 1}'))
    assert client.run(admin.audit()) == (['{"a": 1}'], 1)


def test_ack_and_fail_count_outcomes_per_minute(client: Client) -> None:
    admin, broker = Admin(client.broker), client.broker
    ids = client.submit_many([{"name": "x", "payload": i} for i in range(5)])
    leased = client.run(broker.fetch("default", 5, 30_000))
    minute = int(broker.clock() // 60)
    client.run(broker.ack("default", [Outcome(j.id, j.attempt, "1", 60_000) for j in leased[:3]]))
    client.run(
        broker.fail(
            "default",
            [
                Outcome(leased[3].id, leased[3].attempt, "{}", 60_000, error="e", retry_in_ms=0),
                Outcome(leased[4].id, leased[4].attempt, "{}", 60_000, error="e"),
            ],
        )
    )
    stale = Outcome(ids[0], 1, "1", 60_000)
    client.run(broker.ack("default", [stale]))  # refused: it was acked already
    counts = client.run(admin.throughput("default", minute - 1, minute + 1))
    assert sum(c.get("completed", 0) for c in counts.values()) == 3
    assert sum(c.get("retried", 0) for c in counts.values()) == 1
    assert sum(c.get("failed", 0) for c in counts.values()) == 1
    ttl = client.redis.pttl(broker.route("default").throughput(minute // 60))
    assert 7 * 24 * 3600 * 1000 < ttl <= 8 * 24 * 3600 * 1000


def test_ack_and_fail_count_timings_per_minute_and_hour(client: Client) -> None:
    admin, broker = Admin(client.broker), client.broker
    client.submit_many([{"name": "x", "payload": i} for i in range(4)])
    leased = client.run(broker.fetch("default", 4, 30_000))
    minute = int(broker.clock() // 60)
    done = [Outcome(j.id, j.attempt, "1", 60_000) for j in leased[:3]]
    client.run(broker.ack("default", done, tally([(0.01, 0.5), (0.01, 2.0), (0.02, None)])))
    failed = Outcome(leased[3].id, leased[3].attempt, "{}", 60_000, error="e")
    client.run(broker.fail("default", [failed], tally([(4.0, 0.5)])))
    per_minute = client.run(admin.timings("default", minute - 1, minute + 1))
    run: dict[int, int] = {}
    wait: dict[int, int] = {}
    for kinds in per_minute.values():
        merge(run, kinds.get("run", {}))
        merge(wait, kinds.get("wait", {}))
    assert run == {bucket(0.01): 2, bucket(0.02): 1, bucket(4.0): 1}
    assert wait == {bucket(0.5): 2, bucket(2.0): 1}
    hourly = client.run(admin.timings("default", minute // 60 - 1, minute // 60 + 1, hourly=True))
    assert sum(sum(k["run"].values()) for k in hourly.values()) == 4
    r = broker.route("default")
    assert 2 * 3600_000 < client.redis.pttl(r.timing_minutes(minute // 60)) <= 3 * 3600_000
    assert 7 * 86400_000 < client.redis.pttl(r.timing_hours(minute // 1440)) <= 8 * 86400_000
    client.run(broker.ack("default", [done[0]], ""))  # refused, and nothing to count
    again = client.run(admin.timings("default", minute // 60 - 1, minute // 60 + 1, hourly=True))
    assert again == hourly


def test_ack_indexes_completed_jobs_and_keeps_the_newest(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_module, "COMPLETED_INDEX_CAP", 3)
    admin, broker = Admin(client.broker), client.broker
    ids = client.submit_many([{"name": "x", "payload": i} for i in range(5)])
    leased = client.run(broker.fetch("default", 5, 30_000))

    def done(j: Leased) -> Outcome:
        body = JobResult(job_id=j.id, status=JobStatus.COMPLETED, result=j.id)
        return Outcome(j.id, j.attempt, body.model_dump_json(), 60_000)

    client.run(broker.ack("default", [done(j) for j in leased[:2]]))
    _next_redis_millisecond(client)
    client.run(broker.ack("default", [done(j) for j in leased[2:]]))
    page = client.run(admin.completed_page("default", 0, 10))
    assert page.total == 3 and {r.id for r in page.rows} == set(ids[2:])
    assert [r.result.result for r in page.rows if r.result] == [r.id for r in page.rows]
    assert all(r.job is not None and r.job.name == "x" for r in page.rows)
    older = client.run(admin.completed_page("default", 0, 10, oldest_first=True))
    assert [r.completed_at for r in older.rows] == sorted(r.completed_at for r in page.rows)
    stale = Outcome(ids[0], 1, "1", 60_000)
    client.run(broker.ack("default", [stale]))  # refused: not indexed again
    assert client.run(admin.completed_page("default", 0, 10)).total == 3


def test_progress_of_a_page_of_running_jobs_is_one_read_of_this_attempt_s_reports(
    client: Client,
) -> None:
    admin, broker = Admin(client.broker), client.broker
    ids = client.submit_many([{"name": "x", "payload": i} for i in range(3)])
    leased = client.run(broker.fetch("default", 3, 30_000))
    first, second, quiet = leased
    assert client.run(broker.set_progress("default", first.id, first.attempt, 20, "a"))
    assert client.run(broker.set_progress("default", second.id, second.attempt, 50, {"n": 2}))
    rows = [(first.id, first.attempt), (second.id, second.attempt), (quiet.id, quiet.attempt)]
    assert client.run(admin.progress("default", rows)) == [(20.0, "a"), (50.0, {"n": 2}), None]
    # The same job on its next delivery has reported nothing yet: the last attempt's
    # progress is not its progress (nor in get_job). Its lease is made to expire (the
    # deadline moved to the epoch: Redis' clock cannot be moved) and it is reaped.
    r = client.broker.route("default")
    assert client.redis.zadd(r.leases, {first.id: 0}, xx=True, ch=True) == 1
    assert client.run(broker.reap("default"))[:2] == (1, 0)
    again = client.run(broker.fetch("default", 1, 30_000))[0]
    assert (again.id, again.attempt) == (first.id, first.attempt + 1)
    assert client.run(admin.progress("default", [(again.id, again.attempt)])) == [None]
    job = client.get_job(again.id)
    assert job is not None and job.progress is None
    assert client.run(admin.progress("default", [])) == []
    assert ids == [first.id, second.id, quiet.id]


def _next_redis_millisecond(client: Client) -> None:
    """Return once Redis' own clock has moved past the millisecond it reads now."""
    seconds, micros = client.redis.time()
    start = seconds * 1000 + micros // 1000
    while True:
        seconds, micros = client.redis.time()
        if seconds * 1000 + micros // 1000 > start:
            return
