"""Progress and watch (every backend), with the test playing the worker."""

from __future__ import annotations

import asyncio

import pytest

from bananas import AsyncClient, Client, JobNotFoundError, JobStatus
from bananas.broker import Outcome
from bananas.models import JobResult


async def test_watch_is_woken_by_progress_and_ends_with_the_result(aclient: AsyncClient) -> None:
    job_id = await aclient.submit("a", routing_key="gpu")
    broker = aclient.broker
    [item] = await aclient.run(broker.fetch("gpu", 1, 30_000))
    events = aclient.watch(job_id, timeout=20)
    first = await anext(events)
    assert first.status is JobStatus.PROCESSING and first.progress is None
    waiting = asyncio.ensure_future(anext(events))
    assert await aclient.run(broker.set_progress("gpu", job_id, item.attempt, 40, {"rows": 4}))
    second = await asyncio.wait_for(waiting, 10)
    assert (second.progress, second.progress_info) == (40, {"rows": 4})
    job = await aclient.get_job(job_id)
    assert job is not None and job.progress == 40
    waiting = asyncio.ensure_future(anext(events))
    body = JobResult(job_id=job_id, status=JobStatus.COMPLETED, result=7).model_dump_json()
    assert await aclient.run(broker.ack("gpu", [Outcome(job_id, item.attempt, body, 60_000)]))
    last = await asyncio.wait_for(waiting, 10)
    assert last.result is not None and last.result.result == 7 and last.progress == 40
    with pytest.raises(StopAsyncIteration):
        await anext(events)
    assert await aclient.redis.scard(broker.route("gpu").watchers(job_id)) == 0


def test_a_stale_attempt_cannot_report(client: Client) -> None:
    job_id = client.submit("a")
    [item] = client.run(client.broker.fetch("default", 1, 30_000))
    assert not client.run(client.broker.set_progress("default", job_id, item.attempt + 1, 5, None))
    assert client.run(client.broker.progress("default", job_id)) is None


def test_watching_a_finished_or_missing_job(client: Client) -> None:
    from tests.integration.test_client import complete_next

    job_id = client.submit("a")
    complete_next(client, result=3)
    events = list(client.watch(job_id, timeout=5))
    assert events[-1].result is not None and events[-1].result.result == 3
    with pytest.raises(JobNotFoundError):
        next(client.watch("no-such-job"))


def test_set_progress_checks_the_percent() -> None:
    from bananas import Job

    job = Job(name="a")
    job.set_progress(10)  # outside a worker it only records the value
    assert job.progress == 10
    with pytest.raises(ValueError, match="percent"):
        job.set_progress(101)
