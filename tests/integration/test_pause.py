"""Pause and resume (every backend): fetch skips paused queues; a resume wakes workers."""

from __future__ import annotations

import threading

import pytest

from bananas import AsyncClient, Client, InvalidJobError, Priority
from tests.support.servers import blocked_clients
from tests.support.waiting import eventually


def fetch_ids(client: Client, routing_key: str = "default", count: int = 10) -> list[str]:
    return [j.id for j in client.run(client.broker.fetch(routing_key, count, 30_000))]


def test_a_paused_key_is_not_fetched_and_still_takes_submits(client: Client) -> None:
    assert client.pause("default") == [Priority.HIGH, Priority.NORMAL, Priority.LOW]
    job_id = client.submit("a", {"n": 1})
    assert fetch_ids(client) == []
    stats = client.queue_stats()
    assert stats.queued == 1 and stats.paused == [Priority.HIGH, Priority.NORMAL, Priority.LOW]
    assert client.paused() == {"default": [Priority.HIGH, Priority.NORMAL, Priority.LOW]}
    assert client.resume("default") == []
    assert fetch_ids(client) == [job_id]
    assert client.paused() == {} and client.queue_stats().paused == []


def test_pausing_some_priorities_serves_the_others(client: Client) -> None:
    low = client.submit("a", priority="low")
    high = client.submit("a", priority="high")
    client.pause("default", ["low"])
    assert client.pause("default", [Priority.NORMAL]) == [Priority.NORMAL, Priority.LOW]
    normal = client.submit("a")
    assert fetch_ids(client) == [high]
    assert client.resume("default", ["normal"]) == [Priority.LOW]
    assert fetch_ids(client) == [normal]
    client.resume("default")
    assert fetch_ids(client) == [low]


def test_a_paused_backlog_leaves_no_wake_token(client: Client) -> None:
    """Workers must not wake each other for jobs none of them may fetch (no busy loop)."""
    client.submit_many([{"name": "a"} for _ in range(5)])
    client.pause("default")
    wake = client.broker.route("default").wake
    client.redis.delete(wake)
    assert fetch_ids(client, count=1) == []
    assert client.redis.llen(wake) == 0
    client.resume("default")
    assert client.redis.llen(wake) == 1
    assert len(fetch_ids(client, count=1)) == 1
    assert client.redis.llen(wake) == 1, "the baton is passed while unpaused jobs remain"


def test_resume_wakes_a_blocked_worker(client: Client, redis_url: str) -> None:
    client.pause("gpu")
    client.submit("a", routing_key="gpu")
    client.redis.delete(client.broker.route("gpu").wake)
    before = blocked_clients(redis_url)
    woken: list[bool] = []

    def wait() -> None:
        with Client(redis_url, prefix=client.broker.keys.prefix) as other:
            woken.append(
                other.run(other.broker.wait_for_work(["gpu"], 10, cluster=other.is_cluster))
            )

    thread = threading.Thread(target=wait)
    thread.start()
    eventually(lambda: blocked_clients(redis_url) > before, what="the waiter to block")
    client.resume("gpu")
    thread.join(10)
    assert woken == [True]


def test_pause_checks_its_arguments(client: Client) -> None:
    with pytest.raises(ValueError, match="routing key"):
        client.pause("no spaces")
    with pytest.raises(InvalidJobError, match="priority"):
        client.pause("default", ["urgent"])


async def test_async_pause_and_resume(aclient: AsyncClient) -> None:
    assert await aclient.pause("email", ["high"]) == [Priority.HIGH]
    assert await aclient.paused() == {"email": [Priority.HIGH]}
    assert await aclient.run(aclient.broker.paused("email")) == [Priority.HIGH]
    assert await aclient.resume("email") == []
    assert await aclient.paused() == {}


def test_cli_pause_resume_and_queues(
    client: Client,
    redis_url: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bananas.cli import main

    monkeypatch.setenv("BANANAS_PREFIX", prefix)
    client.submit("a", routing_key="gpu")
    assert main(["pause", "gpu", "--priority", "low", "--redis-url", redis_url]) == 0
    assert capsys.readouterr().out.strip() == "gpu: paused low"
    assert main(["pause", "gpu", "--redis-url", redis_url]) == 0
    assert main(["queues", "--redis-url", redis_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].split()[0] == "gpu" and out[-1].split()[-1] == "all"
    assert main(["resume", "gpu", "--redis-url", redis_url]) == 0
    assert capsys.readouterr().out.strip() == "gpu: paused -"
    assert client.paused() == {}
