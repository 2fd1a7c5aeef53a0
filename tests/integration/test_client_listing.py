"""Listing jobs by state, running a scheduled job now, deleting one dead letter and
forgetting an empty routing key: contract tests on every backend (Cluster included)."""

from __future__ import annotations

import pytest

from bananas import Client, InvalidJobError, JobNotFoundError, JobStatus
from bananas.broker import Outcome


def test_list_jobs_by_state(client: Client) -> None:
    ready = [client.submit("a", {"i": i}, priority=p) for i, p in enumerate(["low", "high"])]
    later = client.submit("b", delay=3600, routing_key="gpu")
    sooner = client.submit("b", delay=60, routing_key="gpu")
    jobs, total = client.list_jobs("ready")
    assert total == 2 and [j.id for j in jobs] == [ready[1], ready[0]]  # high first
    jobs, total = client.list_jobs("scheduled", "gpu")
    assert total == 2 and [j.id for j in jobs] == [sooner, later]
    assert all(j.status is JobStatus.SCHEDULED and j.scheduled_for for j in jobs)
    page, total = client.list_jobs("ready", offset=1, count=5)
    assert total == 2 and [j.id for j in page] == [ready[0]]
    assert client.list_jobs("dead") == ([], 0)
    with pytest.raises(InvalidJobError, match="unknown state"):
        client.list_jobs("sleeping")


def test_run_now_promotes_a_scheduled_job(client: Client) -> None:
    job_id = client.submit("b", delay=3600)
    assert client.run_now(job_id)
    job = client.get_job(job_id)
    assert job is not None and job.status is JobStatus.PENDING
    assert not client.run_now(job_id)  # not scheduled any more
    with pytest.raises(JobNotFoundError):
        client.run_now("no-such-job")


def test_delete_one_dead_letter(client: Client) -> None:
    job_id = client.submit("c", max_retries=0)
    leased = client.run(client.broker.fetch("default", 1, 10_000))
    assert [x.id for x in leased] == [job_id]
    failed = Outcome(job_id, leased[0].attempt, '{"job_id":"x","status":"failed"}', 60_000, "E")
    client.run(client.broker.fail("default", [failed]))
    assert client.list_jobs("dead")[1] == 1
    assert client.delete_dead(job_id)
    assert not client.delete_dead(job_id)
    assert client.queue_stats().dead == 0


def test_forget_an_empty_routing_key(client: Client) -> None:
    job_id = client.submit("d", routing_key="typo")
    assert not client.forget_route("typo")
    client.cancel(job_id)
    assert client.forget_route("typo")
    assert "typo" not in [s.routing_key for s in client.all_queue_stats()]
