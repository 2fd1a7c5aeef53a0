"""The SDK against a real server (every backend): submit, read back, bad input, results."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from bananas import (
    AsyncClient,
    BananasConnectionError,
    Client,
    InvalidJobError,
    InvalidRoutingKeyError,
    JobNotFoundError,
    JobSpec,
    JobStatus,
    PayloadTooLargeError,
    Priority,
    WaitTimeoutError,
)
from bananas.broker import Outcome
from bananas.models import JobResult
from bananas.records import encode
from tests.support.clock import FakeClock
from tests.support.servers import blocked_clients
from tests.support.waiting import eventually


class Email(BaseModel):
    to: str
    subject: str


def complete_next(client: Client, routing_key: str = "default", result: object = None) -> str:
    """Play a worker: lease the next job and ack it with ``result``."""
    broker = client.broker
    leased = client.run(broker.fetch(routing_key, 1, 30_000))
    assert leased, "nothing to fetch"
    item = leased[0]
    body = JobResult(job_id=item.id, status=JobStatus.COMPLETED, result=result, duration=0.01)
    ok = client.run(
        broker.ack(routing_key, [Outcome(item.id, item.attempt, body.model_dump_json(), 60_000)])
    )
    assert ok == [True]
    return item.id


def test_submit_and_read_back(client: Client) -> None:
    job_id = client.submit(
        "send_email",
        {"to": "a@example.com", "subject": "hi"},
        priority="high",
        routing_key="email",
        description="welcome",
    )
    job = client.get_job(job_id)
    assert job is not None
    assert (job.name, job.priority, job.routing_key, job.status) == (
        "send_email",
        Priority.HIGH,
        "email",
        JobStatus.PENDING,
    )
    assert job.description == "welcome" and job.max_retries == 3 and job.attempts == 0
    assert job.unmarshal_payload(Email) == Email(to="a@example.com", subject="hi")
    stats = client.queue_stats("email")
    assert stats.depth == {Priority.HIGH: 1, Priority.NORMAL: 0, Priority.LOW: 0}


def test_same_job_id_twice_stores_one_job(client: Client) -> None:
    first = client.submit("report", {"n": 1}, job_id="report-2026-01-01")
    second = client.submit("report", {"n": 2}, job_id="report-2026-01-01")
    assert first == second == "report-2026-01-01"
    assert client.queue_stats().queued == 1
    job = client.get_job(first)
    assert job is not None and job.payload == {"n": 1}
    complete_next(client)
    client.submit("report", {"n": 3}, job_id="report-2026-01-01")
    assert client.queue_stats().queued == 0, "a finished job whose result is kept is not re-run"


def test_submit_many_groups_by_route_and_priority(client: Client) -> None:
    specs = [JobSpec("resize", {"i": i}, routing_key="gpu", priority="low") for i in range(700)]
    specs += [{"name": "mail", "payload": {"i": 1}, "priority": "high"}]
    ids = client.submit_many(specs)
    assert len(ids) == len(set(ids)) == 701
    assert client.queue_stats("gpu").depth[Priority.LOW] == 700
    assert client.queue_stats("default").depth[Priority.HIGH] == 1
    assert [s.routing_key for s in client.all_queue_stats()] == ["default", "gpu"]


def test_delayed_job_is_scheduled_until_due(redis_url: str, prefix: str) -> None:
    clock = FakeClock()
    with Client(redis_url, prefix=prefix, clock=clock) as client:
        job_id = client.submit("remind", {"u": 1}, delay=3600)
        job = client.get_job(job_id)
        assert job is not None and job.status is JobStatus.SCHEDULED
        assert job.scheduled_for is not None
        moved, due_in = client.run(client.broker.promote("default"))
        assert moved == 0 and due_in is not None and 3590_000 < due_in <= 3600_000
        clock.advance(3601)  # the host's clock does not make it due: Redis' clock does
        assert client.run(client.broker.promote("default"))[0] == 0
        scheduled = client.broker.route("default").scheduled
        client.redis.zadd(scheduled, {job_id: 0}, xx=True)
        moved, next_due = client.run(client.broker.promote("default"))
        assert (moved, next_due) == (1, None)
        job = client.get_job(job_id)
        assert job is not None and job.status is JobStatus.PENDING


def test_scheduled_for_must_be_aware(client: Client) -> None:
    with pytest.raises(InvalidJobError, match="timezone-aware"):
        client.submit("x", scheduled_for=datetime(2030, 1, 1))
    at = datetime.now(UTC) + timedelta(hours=1)
    job = client.get_job(client.submit_job_scheduled("x", None, "low", at))
    assert job is not None and job.status is JobStatus.SCHEDULED


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"payload": {"when": object()}}, InvalidJobError, "not JSON-serialisable"),
        ({"priority": "urgent"}, InvalidJobError, "use one of high, normal, low"),
        ({"routing_key": "gpu pool"}, InvalidRoutingKeyError, "letters, digits"),
        ({"routing_key": "x" * 65}, InvalidRoutingKeyError, "1-64 characters"),
        ({"payload": "x" * (1024 * 1024 + 1)}, PayloadTooLargeError, "above the limit"),
        ({"max_retries": -1}, InvalidJobError, "max_retries"),
        ({"delay": -5}, InvalidJobError, "delay must be a finite number of seconds, at least 0"),
        ({"delay": float("inf")}, InvalidJobError, "delay must be a finite number"),
        ({"timeout": 1e20}, InvalidJobError, "timeout must be a finite number"),
        ({"max_retries": 2**40}, InvalidJobError, "max_retries must be a whole number"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    client: Client, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        client.submit("job", **kwargs)  # type: ignore[arg-type]
    assert client.all_queue_stats() == []


def test_empty_name_is_refused(client: Client) -> None:
    with pytest.raises(InvalidJobError, match="non-empty handler name"):
        client.submit("  ")


def test_unreachable_redis_names_url_without_password() -> None:
    with (
        Client("redis://:hunter2@127.0.0.1:1/0") as client,
        pytest.raises(BananasConnectionError) as caught,
    ):
        client.submit("x")
    assert "127.0.0.1:1" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_ids(client: Client) -> None:
    assert client.get_job("nope") is None
    assert client.get_result("nope") is None
    with pytest.raises(JobNotFoundError):
        client.cancel("nope")
    with pytest.raises(JobNotFoundError):
        client.wait_for_result("nope", timeout=0.1)


def test_cancel_before_start_only(client: Client) -> None:
    waiting = client.submit("a")
    running = client.submit("b")
    assert client.cancel(waiting) is True
    assert client.run(client.broker.fetch("default", 1, 30_000))[0].id == running
    assert client.cancel(running) is False
    job = client.get_job(waiting)
    assert job is not None and job.status is JobStatus.CANCELLED
    result = client.get_result(waiting)
    assert result is not None and result.is_failed() and result.status is JobStatus.CANCELLED
    assert client.queue_stats().queued == 0


def test_result_written_before_the_waiter_arrives_is_not_missed(client: Client) -> None:
    job_id = client.submit("add", [1, 2])
    complete_next(client, result=3)
    result = client.wait_for_result(job_id, timeout=1)
    assert result.is_success() and result.unmarshal_result(int) == 3


def test_waiter_is_woken_by_push(client: Client, redis_url: str) -> None:
    job_id = client.submit("add", [1, 2])
    woke: list[float] = []
    idle = blocked_clients(redis_url)

    def worker() -> None:
        eventually(lambda: blocked_clients(redis_url) > idle, what="the waiter blocking")
        complete_next(client, result={"sum": 3})
        woke.append(time.monotonic())

    thread = threading.Thread(target=worker)
    thread.start()
    result = client.wait_for_result(job_id, timeout=10)
    arrived = time.monotonic()
    thread.join()
    assert result.result == {"sum": 3}
    assert arrived - woke[0] < 1.0, "the waiter must wake on the push, not on a timeout"


def test_wait_times_out(client: Client) -> None:
    job_id = client.submit("slow")
    with pytest.raises(WaitTimeoutError):
        client.wait_for_result(job_id, timeout=0.2)


def test_submit_and_wait_round_trip(client: Client, redis_url: str) -> None:
    idle = blocked_clients(redis_url)

    def worker() -> None:  # once the job is stored and its waiter blocks
        eventually(lambda: blocked_clients(redis_url) > idle, what="the waiter blocking")
        complete_next(client, "rpc", 42)

    thread = threading.Thread(target=worker)
    thread.start()
    result = client.submit_and_wait("rpc_call", {"x": 1}, routing_key="rpc", timeout=10)
    thread.join()
    assert result.is_success() and result.result == 42


def test_seed_aliases(client: Client) -> None:
    a = client.submit_job("send_email", {"to": "x"}, "normal", "Welcome email")
    b = client.submit_job_with_route("process_image", {"url": "u"}, Priority.HIGH, "gpu")
    job_a, job_b = client.get_job(a), client.get_job(b)
    assert job_a is not None and job_a.description == "Welcome email"
    assert job_b is not None and job_b.routing_key == "gpu" and job_b.priority is Priority.HIGH


def test_payload_models_are_encoded_as_json(client: Client) -> None:
    job = client.get_job(client.submit("send", Email(to="a@b", subject="s")))
    assert job is not None and job.payload == {"to": "a@b", "subject": "s"}
    assert encode({"a": 1}) == '{"a":1}'


async def test_async_client_round_trip(aclient: AsyncClient) -> None:
    job_id = await aclient.submit("send", {"a": 1}, priority="low", routing_key="email")
    job = await aclient.get_job(job_id)
    assert job is not None and job.priority is Priority.LOW
    ids = await aclient.submit_many([JobSpec("x") for _ in range(3)])
    assert len(ids) == 3
    assert (await aclient.queue_stats()).queued == 3
    assert await aclient.cancel(ids[0]) is True
    assert await aclient.ping()
