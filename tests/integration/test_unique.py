"""Unique jobs and debounce (every backend): one live job per unique key of a routing key."""

from __future__ import annotations

import threading

import pytest

from bananas import AsyncClient, Client, InvalidJobError, JobSpec, JobStatus
from bananas.broker import Outcome
from tests.integration.test_client import complete_next
from tests.support.waiting import eventually


def test_unique_for_returns_the_live_job(client: Client) -> None:
    first = client.submit("report", {"day": 1, "kind": "a"}, unique_for=600)
    again = client.submit("report", {"kind": "a", "day": 1}, unique_for=600)
    other = client.submit("report", {"day": 2, "kind": "a"}, unique_for=600)
    assert again == first != other, "the default key is the name and the canonical payload"
    assert client.queue_stats().queued == 2
    keyed = client.submit("report", {"day": 3}, unique_for=600, unique_key="report:42")
    assert client.submit("report", {"day": 4}, unique_for=600, unique_key="report:42") == keyed
    lock = client.broker.route("default").unique("report:42")
    assert 0 < client.redis.pttl(lock) <= 600_000


def test_the_lock_goes_when_the_job_completes(client: Client) -> None:
    first = client.submit("a", unique_for=600)
    complete_next(client)
    second = client.submit("a", unique_for=600)
    assert second != first and client.queue_stats().queued == 1


def test_the_lock_goes_when_the_job_is_cancelled_or_dead_lettered(client: Client) -> None:
    first = client.submit("a", unique_for=600)
    assert client.cancel(first)
    second = client.submit("a", unique_for=600)
    assert second != first
    [leased] = client.run(client.broker.fetch("default", 1, 30_000))
    assert leased.id == second
    client.run(client.broker.fail("default", [Outcome(second, leased.attempt, "{}", 0, "boom")]))
    job = client.get_job(second)
    assert job is not None and job.status is JobStatus.FAILED
    third = client.submit("a", unique_for=600)
    assert third not in (first, second)


def test_a_crashed_workers_job_keeps_its_lock(client: Client) -> None:
    first = client.submit("a", unique_for=600)
    assert [j.id for j in client.run(client.broker.fetch("default", 1, 1))] == [first]
    assert client.submit("a", unique_for=600) == first, "a running job holds its key"
    eventually(lambda: client.run(client.broker.reap("default"))[:2] == (1, 0), what="the reap")
    assert client.submit("a", unique_for=600) == first, "a reaped job still holds it"
    complete_next(client)
    assert client.submit("a", unique_for=600) != first


def test_fifty_concurrent_unique_submitters_create_one_job(client: Client) -> None:
    start = threading.Barrier(50)
    ids: list[str] = []

    def submit(i: int) -> None:
        with Client(client.url, prefix=client.broker.keys.prefix) as own:
            own.ping()
            start.wait(10)
            ids.append(own.submit("a", {"i": i}, unique_for=60, unique_key="one"))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == 50 and len(set(ids)) == 1
    assert client.queue_stats().queued == 1


def test_debounce_replaces_the_payload_and_pushes_the_due_time(client: Client) -> None:
    first = client.submit("sync", {"n": 1}, debounce=30, unique_key="user:7")
    before = client.get_job(first)
    second = client.submit("sync", {"n": 2}, debounce=60, unique_key="user:7")
    assert second == first
    job = client.get_job(first)
    assert before is not None and job is not None
    assert job.payload == {"n": 2} and job.status is JobStatus.SCHEDULED
    assert before.scheduled_for is not None and job.scheduled_for is not None
    assert job.scheduled_for > before.scheduled_for
    assert client.queue_stats().scheduled == 1


def promoted(client: Client) -> bool:
    return client.run(client.broker.promote("default"))[0] > 0


def test_debounce_takes_a_ready_job_back(client: Client) -> None:
    first = client.submit("sync", {"n": 1}, debounce=0.01)
    eventually(lambda: promoted(client), what="the job to be due")
    assert client.queue_stats().queued == 1
    assert client.submit("sync", {"n": 2}, debounce=600) == first
    stats = client.queue_stats()
    assert (stats.queued, stats.scheduled) == (0, 1)
    job = client.get_job(first)
    assert job is not None and job.payload == {"n": 2}


def test_debounce_leaves_a_started_job_alone(client: Client) -> None:
    first = client.submit("sync", {"n": 1}, debounce=0.01)
    eventually(lambda: promoted(client), what="the job to be due")
    [leased] = client.run(client.broker.fetch("default", 1, 30_000))
    assert leased.id == first and '"n":1' in leased.record
    started = client.submit("sync", {"n": 3}, debounce=600)
    assert started != first, "a started job is not touched: a new pending job"
    job = client.get_job(started)
    assert job is not None and job.payload == {"n": 3} and job.status is JobStatus.SCHEDULED


def test_unique_options_are_checked(client: Client) -> None:
    for options in (
        {"unique_key": "k"},
        {"unique_for": 0},
        {"unique_for": 10, "debounce": 10},
        {"unique_for": 10, "job_id": "x"},
        {"debounce": 10, "delay": 5},
        {"unique_for": 10, "unique_key": ""},
    ):
        with pytest.raises(InvalidJobError):
            client.submit("a", **options)  # type: ignore[arg-type]


def test_submit_many_with_unique_jobs(client: Client) -> None:
    ids = client.submit_many(
        [
            JobSpec("a", {"x": 1}, unique_for=60),
            JobSpec("a", {"x": 1}, unique_for=60),
            JobSpec("a", {"x": 1}),
        ]
    )
    assert ids[0] == ids[1] != ids[2]
    assert client.queue_stats().queued == 2


async def test_async_unique(aclient: AsyncClient) -> None:
    first = await aclient.submit("a", unique_for=60, routing_key="email")
    assert await aclient.submit("a", unique_for=60, routing_key="email") == first
