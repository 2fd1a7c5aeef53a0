"""Dead-letter retention per routing key and result TTLs per submit (every backend)."""

from __future__ import annotations

import pytest

from bananas import Client, InvalidJobError
from bananas.broker import DEAD_LETTER_CAP, DEAD_LETTER_MAX_AGE_MS, Outcome
from bananas.records import decode_job


def dead_letter_next(client: Client, routing_key: str = "default") -> int:
    """Play a worker whose job fails for good; returns how many old ones retention trimmed."""
    [item] = client.run(client.broker.fetch(routing_key, 1, 30_000))
    failure = Outcome(item.id, item.attempt, '{"job_id":"x","status":"failed"}', 0, "boom", -1)
    reply = client.run(client.broker.fail_batch(routing_key, [failure]))
    return reply.trimmed


def test_the_defaults_are_sidekiqs(client: Client) -> None:
    assert client.run(client.broker.retention("default")) == (10_000, 180 * 86_400_000)
    assert (DEAD_LETTER_CAP, DEAD_LETTER_MAX_AGE_MS) == (10_000, 180 * 86_400_000)


def test_a_count_bound_trims_the_oldest_first(client: Client) -> None:
    client.set_retention("gpu", max_dead=3)
    ids = [client.submit("a", routing_key="gpu", max_retries=0) for _ in range(5)]
    trimmed = [dead_letter_next(client, "gpu") for _ in ids]
    assert trimmed == [0, 0, 0, 1, 1]
    kept = {d.job_id for d in client.dead_letters("gpu")}
    assert len(kept) == 3 and kept <= set(ids)
    gone = next(iter(set(ids) - kept))
    jobs = client.broker.route("gpu").jobs
    assert not client.redis.hexists(jobs, gone), "a trimmed job's record goes too"
    client.set_retention("gpu", max_dead=None)
    assert client.run(client.broker.retention("gpu"))[0] == DEAD_LETTER_CAP


def test_an_age_bound_trims_what_is_older(client: Client) -> None:
    client.set_retention("default", max_dead_age=3600)
    old = client.submit("a", max_retries=0)
    dead_letter_next(client)
    dead = client.broker.route("default").dead
    client.redis.zadd(dead, {old: 1})  # dead-lettered long ago
    client.submit("a", max_retries=0)
    assert dead_letter_next(client) == 1
    assert old not in [d.job_id for d in client.dead_letters()]


def complete_as_the_worker_does(client: Client) -> None:
    """Ack the next job with the result TTL its record carries (as the executor does)."""
    [item] = client.run(client.broker.fetch("default", 1, 30_000))
    ttl_ms = int(decode_job(item.record).success_ttl * 1000)
    ok = client.run(client.broker.ack("default", [Outcome(item.id, item.attempt, "{}", ttl_ms)]))
    assert ok == [True]


def test_result_ttls_per_submit(client: Client) -> None:
    short = client.submit("a", success_ttl=5)
    long = client.submit("a", success_ttl=7200, failure_ttl=60)
    job = client.get_job(long)
    assert job is not None and (job.success_ttl, job.failure_ttl) == (7200, 60)
    complete_as_the_worker_does(client)
    complete_as_the_worker_does(client)
    r = client.broker.route("default")
    assert 0 < client.redis.pttl(r.result(short)) <= 5000
    assert 5000 < client.redis.pttl(r.result(long)) <= 7_200_000
    with pytest.raises(InvalidJobError):
        client.submit("a", success_ttl=-1)
    with pytest.raises(InvalidJobError):
        client.set_retention("default", max_dead=-1)
