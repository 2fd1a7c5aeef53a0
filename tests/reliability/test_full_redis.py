"""A full Redis. Under ``maxmemory`` with ``noeviction``, work that needs memory (fetch,
enqueue, promote) is refused while work that frees it (ack, fail, renew, release, reap)
still runs; submit raises :class:`RedisOutOfMemoryError` naming the limit; a worker that
cannot take work says so on ``/readyz``; once memory is freed nothing ran twice and
nothing was dead-lettered for it. Under an evicting policy (``allkeys-lru``) a worker
refuses to start, naming the policy and the fix, and a client warns."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from bananas import Client, JobSpec
from bananas.errors import RedisOutOfMemoryError
from bananas.keys import KeySpace
from tests.chaos.common import ROUTE, Fleet, counters, new_tag, outcome, raw, readyz, wait_drained
from tests.support.processes import WorkerProcess, http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

MAXMEMORY = 24 * 1024 * 1024
FILLER = 256 * 1024


def _server(binary: str, policy: str) -> RedisServer:
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", policy]
    return RedisServer(binary, args).start()


@pytest.fixture
def full(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = _server(single_redis.binary, "noeviction")
    yield server
    server.cleanup()


def fill(r: redis.Redis) -> tuple[int, int]:
    """Write filler strings until Redis refuses one for lack of memory, then lower
    ``maxmemory`` a little under what is used, so that the few jobs finishing meanwhile
    cannot free enough to bring Redis back under its limit. Returns (fillers, limit)."""
    n = 0
    while True:
        try:
            r.set(f"filler:{n}", b"x" * FILLER)
        except redis.exceptions.OutOfMemoryError:
            break
        n += 1
    limit = int(r.info("memory")["used_memory"]) - 2 * 1024 * 1024
    r.config_set("maxmemory", limit)
    return n, limit


def test_noeviction_refuses_new_work_and_finishes_old(
    full: RedisServer, single_redis: RedisServer
) -> None:
    tag, prefix = new_tag(), f"oom{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    q = raw(full)
    env = {"LEASE_DURATION": "2s", "WORKER_CONCURRENCY": "8", "RETRY_BACKOFF_MAX": "0.2s"}
    with (
        Fleet(full.url, single_redis.url, prefix, **env) as fleet,
        Client(full.url, prefix=prefix) as client,
    ):
        specs = [JobSpec("work", {"tag": tag, "n": i, "ms": 20}) for i in range(3000)]
        ids = client.submit_many(specs)
        workers = [fleet.spawn() for _ in range(2)]
        eventually(lambda: counters(q, route).get("completed", 0) >= 200, 30, what="work starts")
        fillers, limit = fill(q)
        with pytest.raises(RedisOutOfMemoryError) as refused:
            client.submit("work", {"tag": tag, "ms": 0})
        # A worker that cannot take work says so (and why) instead of looping on it.
        not_ready = eventually(
            lambda: all(readyz(w) == 503 for w in workers), 15, what="/readyz 503 under OOM"
        )
        reasons = [http_get(w.port, "/readyz")[1] for w in workers]
        completed_in_oom = counters(q, route).get("completed", 0)
        q.delete(*(f"filler:{i}" for i in range(fillers)))
        q.config_set("maxmemory", MAXMEMORY)
        eventually(lambda: all(readyz(w) == 200 for w in workers), 15, what="/readyz back")
        wait_drained(q, route, fleet, timeout=90)
        result = outcome(q, raw(single_redis), tag, route, ids)
    print("noeviction:", result, "| readyz reasons:", reasons, "| completed", completed_in_oom)
    assert "maxmemory" in str(refused.value) and str(limit) in str(refused.value)
    assert refused.value.maxmemory == limit
    assert not_ready and all("memory" in r for r in reasons), reasons
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result


@pytest.fixture
def evicting(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = _server(single_redis.binary, "allkeys-lru")
    yield server
    server.cleanup()


def test_a_worker_refuses_an_evicting_policy_unless_told(
    evicting: RedisServer, prefix: str
) -> None:
    refused = WorkerProcess(evicting.url, prefix)
    try:
        refused.start(wait_ready=False)
        assert refused.process is not None
        code = refused.process.wait(30)
        log = refused.log()
    finally:
        refused.cleanup()
    assert code == 2, log
    assert "allkeys-lru" in log and "noeviction" in log, log
    assert "EVICTION_POLICY_CHECK" in log, "the message names the override"
    allowed = WorkerProcess(evicting.url, prefix, env={"EVICTION_POLICY_CHECK": "warn"})
    try:
        allowed.start()
        log = allowed.log()
    finally:
        allowed.cleanup()
    assert "allkeys-lru" in log and "WARNING" in log, log


def test_a_client_warns_about_an_evicting_policy(
    evicting: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "bananas"), Client(evicting.url, prefix=prefix) as c:
        c.submit("work", {"n": 1})
        c.submit("work", {"n": 2})
    warnings = [r.getMessage() for r in caplog.records if "allkeys-lru" in r.getMessage()]
    assert len(warnings) == 1, "one warning per client, naming the policy"
    assert "noeviction" in warnings[0]
