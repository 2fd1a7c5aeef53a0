"""Hostile records and settings: a record or key that some other producer (or a
corrupted restore) wrote wrong is dead-lettered with the reason, never takes innocent
jobs with it, and never leaves a job leased; settings Redis cannot store are refused
by the client before anything is written."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest

from bananas import Client, JobSpec, Priority
from bananas.keys import KeySpace, RouteKeys
from tests.chaos.common import ROUTE, Fleet, counters, new_tag, outcome, raw, readyz
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(90)

INNOCENT = 10


@pytest.fixture
def queue(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(single_redis.binary).start()
    yield server
    server.cleanup()


class Scene:
    """A queue server, the ledger, one worker, and innocent jobs submitted around a bad one."""

    def __init__(self, queue: RedisServer, ledger: RedisServer) -> None:
        self.tag, self.prefix = new_tag(), f"bad{new_tag()}"
        self.route: RouteKeys = KeySpace(self.prefix).route(ROUTE)
        self.q, self.ledger = raw(queue), raw(ledger)
        self.client = Client(queue.url, prefix=self.prefix)
        self.fleet = Fleet(queue.url, ledger.url, self.prefix, WORKER_CONCURRENCY="4")

    def innocents(self, n: int = INNOCENT) -> list[str]:
        specs = [JobSpec("work", {"tag": self.tag, "n": i}) for i in range(n)]
        return self.client.submit_many(specs)

    def finished(self, ids: list[str]) -> bool:
        return all(self.q.exists(self.route.result(i)) for i in ids)

    def close(self) -> None:
        self.client.close()
        self.fleet.close()


@pytest.fixture
def scene(queue: RedisServer, single_redis: RedisServer) -> Iterator[Scene]:
    s = Scene(queue, single_redis)
    yield s
    s.close()


def _dead_reason(scene: Scene, job_id: str) -> str:
    assert scene.q.zscore(scene.route.dead, job_id) is not None, "not dead-lettered"
    return str(scene.q.hget(scene.route.errors, job_id))


def test_a_non_integer_attempts_field_dead_letters_that_job_only(scene: Scene) -> None:
    before = scene.innocents(5)
    bad = scene.client.submit("work", {"tag": scene.tag, "n": -1})
    scene.q.hset(scene.route.attempts, bad, "two")
    after = scene.innocents(5)
    worker = scene.fleet.spawn()
    eventually(lambda: scene.finished([*before, *after]), 30, what=scene.fleet.logs)
    result = outcome(scene.q, scene.ledger, scene.tag, scene.route, before + after)
    print("non-integer attempts:", result)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result
    assert "attempts counter" in _dead_reason(scene, bad)
    job = scene.client.get_job(bad)
    assert job is not None and job.status.value == "failed" and "attempts" in (job.error or "")
    assert scene.q.zcard(scene.route.leases) == 0
    assert readyz(worker) == 200


def test_a_jobs_key_of_the_wrong_type_drains_nothing(scene: Scene) -> None:
    ids = scene.innocents()
    scene.q.rename(scene.route.jobs, f"{scene.route.jobs}:saved")
    scene.q.set(scene.route.jobs, "not a hash")
    worker = scene.fleet.spawn(wait_ready=False)
    # The worker says what is wrong, and leaves the queue as it was.
    eventually(lambda: "wrong type" in worker.log().lower(), 20, what=worker.log)
    assert scene.q.llen(scene.route.queue(Priority.NORMAL)) == INNOCENT, "the queue was drained"
    assert scene.q.zcard(scene.route.leases) == 0
    scene.q.delete(scene.route.jobs)
    scene.q.rename(f"{scene.route.jobs}:saved", scene.route.jobs)
    eventually(lambda: scene.finished(ids), 30, what=worker.log)
    result = outcome(scene.q, scene.ledger, scene.tag, scene.route, ids)
    print("wrong-type jobs key:", result)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result


def test_a_queue_entry_without_record_is_counted_and_logged(scene: Scene) -> None:
    ids = scene.innocents(5)
    scene.q.rpush(scene.route.queue(Priority.NORMAL), "ghost-entry")
    ids += scene.innocents(5)
    worker = scene.fleet.spawn()
    eventually(lambda: scene.finished(ids), 30, what=worker.log)
    eventually(lambda: "ghost-entry" in worker.log(), 10, what=worker.log)
    assert counters(scene.q, scene.route).get("orphaned") == 1
    result = outcome(scene.q, scene.ledger, scene.tag, scene.route, ids)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result


def test_an_infinite_ttl_in_a_record_fails_that_job_and_the_worker_serves_on(
    scene: Scene,
) -> None:
    bad = scene.client.submit("work", {"tag": scene.tag, "n": -1})
    record = str(scene.q.hget(scene.route.jobs, bad))
    scene.q.hset(
        scene.route.jobs, bad, re.sub(r'"success_ttl":[^,}]+', '"success_ttl":1e999', record)
    )
    ids = scene.innocents()
    worker = scene.fleet.spawn()
    eventually(lambda: scene.finished(ids), 30, what=worker.log)
    eventually(lambda: scene.q.zscore(scene.route.dead, bad) is not None, 20, what=worker.log)
    assert "success_ttl" in _dead_reason(scene, bad)
    assert scene.q.zcard(scene.route.leases) == 0, "a job stayed leased"
    assert readyz(worker) == 200
    assert scene.client.submit_and_wait("echo", {"still": "serving"}, timeout=10).is_success()


@pytest.mark.parametrize("value", [1e20, math.inf, -1.0, math.nan])
@pytest.mark.parametrize("setting", ["success_ttl", "failure_ttl"])
def test_a_client_refuses_ttls_redis_cannot_store(
    queue: RedisServer, setting: str, value: float
) -> None:
    with pytest.raises(ValueError, match=f"{setting} must be a finite number of seconds"):
        Client(queue.url, **{setting: value})


@pytest.mark.parametrize("option", ["delay", "timeout"])
def test_submit_refuses_durations_redis_cannot_store(queue: RedisServer, option: str) -> None:
    with Client(queue.url, prefix="bounds") as client:
        for value in (1e20, math.inf, math.nan):
            with pytest.raises(ValueError, match=f"{option} must be a finite number"):
                client.submit("work", {}, **{option: value})
        with pytest.raises(ValueError, match="max_retries must be a whole number"):
            client.submit("work", {}, max_retries=2**40)
        assert raw_keys(queue) == [], "something was written"


def raw_keys(queue: RedisServer) -> list[str]:
    with queue.client() as r:
        return sorted(r.keys("bounds:*"))
