"""Job ids are unique across the whole prefix (every backend): the id index and its claim."""

from __future__ import annotations

import threading

from bananas import Client, JobSpec
from bananas.broker import ID_CLAIM_GRACE_MS
from tests.integration.test_client import complete_next

ROUTES = ("default", "gpu", "email")


def total_queued(client: Client) -> int:
    return sum(client.queue_stats(rk).queued for rk in ROUTES)


def test_one_job_id_on_two_routing_keys_is_one_job(client: Client) -> None:
    first = client.submit("report", {"n": 1}, job_id="report-7", routing_key="gpu")
    second = client.submit("report", {"n": 2}, job_id="report-7", routing_key="email")
    assert first == second == "report-7"
    assert client.queue_stats("gpu").queued == 1
    assert client.queue_stats("email").queued == 0
    job = client.get_job("report-7")
    assert job is not None and (job.routing_key, job.payload) == ("gpu", {"n": 1})


def test_a_finished_job_keeps_its_id_on_every_routing_key(client: Client) -> None:
    client.submit("report", job_id="r-1", routing_key="gpu")
    complete_next(client, "gpu", result=5)
    client.submit("report", job_id="r-1", routing_key="email")
    assert client.queue_stats("email").queued == 0
    result = client.get_result("r-1")
    assert result is not None and result.result == 5


def test_submit_many_claims_each_explicit_id(client: Client) -> None:
    client.submit("a", job_id="x-1", routing_key="gpu")
    ids = client.submit_many(
        [
            JobSpec("a", job_id="x-1", routing_key="email"),
            JobSpec("a", job_id="x-2", routing_key="email"),
            JobSpec("a", routing_key="email"),
        ]
    )
    assert ids[:2] == ["x-1", "x-2"] and len(ids) == 3
    assert client.queue_stats("email").queued == 2
    assert client.queue_stats("gpu").queued == 1


def test_submit_and_wait_on_a_duplicate_waits_for_the_owner(client: Client) -> None:
    client.submit("add", job_id="sum-1", routing_key="gpu")
    waiter: dict[str, object] = {}

    def wait() -> None:
        with Client(client.url, prefix=client.broker.keys.prefix) as other:
            waiter["result"] = other.submit_and_wait(
                "add", job_id="sum-1", routing_key="email", timeout=10
            )

    thread = threading.Thread(target=wait)
    thread.start()
    complete_next(client, "gpu", result=3)
    thread.join(15)
    assert getattr(waiter.get("result"), "result", None) == 3
    assert client.queue_stats("email").queued == 0


def test_an_interrupted_claim_is_safe(client: Client) -> None:
    keys = client.broker.keys
    # step 1 done on gpu, step 2 never ran: the entry names a key without the job
    client.run(client.broker.claim_id("j-1", "gpu", 60_000))
    client.submit("a", job_id="j-1", routing_key="email")
    assert client.queue_stats("email").queued == 0, "a claim inside its grace is respected"
    client.submit("a", job_id="j-1", routing_key="gpu")
    assert client.queue_stats("gpu").queued == 1, "the retry on the claimed key enqueues"
    # a claim older than the grace whose key holds nothing is taken over
    client.redis.set(keys.job_id("j-2"), f"gpu|{0}")
    client.submit("a", job_id="j-2", routing_key="email")
    assert client.queue_stats("email").queued == 1
    assert ID_CLAIM_GRACE_MS > 0
    job = client.get_job("j-2")
    assert job is not None and job.routing_key == "email"


def test_fifty_concurrent_submitters_of_one_id_store_one_job(client: Client) -> None:
    start = threading.Barrier(50)
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        try:
            with Client(client.url, prefix=client.broker.keys.prefix) as own:
                own.ping()
                start.wait(10)
                own.submit("a", {"i": i}, job_id="hot", routing_key=ROUTES[i % 3])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert total_queued(client) == 1
