"""A blocked event loop: an ``async def`` handler that calls ``time.sleep`` for longer
than the lease. A watchdog thread notices the loop has stopped turning, logs which
job's handler blocks it, exports it as a metric and keeps the worker's leases alive
from the thread, so neither the blocking job nor the jobs fetched with it run twice
or are dead-lettered as "worker lost"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bananas import Client, JobSpec
from bananas.keys import KeySpace
from tests.chaos.common import ROUTE, Fleet, new_tag, outcome, raw, wait_drained
from tests.support.processes import http_get
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(120)

LEASE_S = 2.0
BLOCK_MS = 5 * LEASE_S * 1000 // 2


@pytest.fixture
def queue(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(single_redis.binary).start()
    yield server
    server.cleanup()


def test_a_handler_blocking_the_loop_past_the_lease_runs_once(
    queue: RedisServer, single_redis: RedisServer
) -> None:
    tag, prefix = new_tag(), f"block{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    env = {"LEASE_DURATION": f"{LEASE_S}s", "WORKER_CONCURRENCY": "4", "JOB_TIMEOUT": "60s"}
    with (
        Fleet(queue.url, single_redis.url, prefix, **env) as fleet,
        Client(queue.url, prefix=prefix) as client,
    ):
        workers = [fleet.spawn() for _ in range(3)]
        blockers = client.submit_many(
            JobSpec("work", {"tag": tag, "n": -i, "block_ms": BLOCK_MS}, priority="high")
            for i in range(1, 2)
        )
        others = client.submit_many(
            JobSpec("work", {"tag": tag, "n": i, "ms": 200}) for i in range(24)
        )
        wait_drained(raw(queue), route, fleet, timeout=90)
        result = outcome(raw(queue), raw(single_redis), tag, route, blockers + others)
        logs = fleet.logs()
        metrics = "".join(http_get(w.port, "/metrics")[1] for w in workers)
    print("blocked loop:", result)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result
    named = [b for b in blockers if b in logs and "blocked" in logs]
    assert named, f"no log line names the blocking job\n{logs}"
    assert "bananas_event_loop_blocked_seconds" in metrics
