"""A full Redis. Under ``maxmemory`` with ``noeviction``, work that needs memory (fetch,
enqueue, promote) is refused while work that frees it (ack, fail, renew, release, reap)
still runs; submit raises :class:`RedisOutOfMemoryError` naming the limit; a worker that
cannot take work says so on ``/readyz``; once memory is freed nothing ran twice and
nothing was dead-lettered for it. Under an evicting policy (``allkeys-lru``) a worker
refuses to start, naming the policy and the fix, and a client warns."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest

from bananas import Client
from tests.chaos import CI, Servers, table
from tests.chaos.fill_redis import MAXMEMORY, full_redis
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(120)


def test_noeviction_refuses_new_work_and_finishes_old(servers: Servers, rng: random.Random) -> None:
    report = full_redis(servers, CI, rng)
    print(table([report]))
    d = report.details
    assert "maxmemory" in d["submit refused with"]
    assert str(d["limit (bytes)"]) in d["submit refused with"]
    assert all("memory" in r for r in d["/readyz reasons"]), d["/readyz reasons"]
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), d


def _server(binary: str, policy: str) -> RedisServer:
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", policy]
    return RedisServer(binary, args).start()


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
