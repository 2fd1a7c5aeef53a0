"""Redis Sentinel: the client finds the master through sentinels (``redis+sentinel://``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bananas import Client, JobStatus
from tests.support.ports import free_port
from tests.support.servers import BINARIES_FOR_SENTINEL, RedisServer
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def sentinel_url() -> Iterator[str]:
    if not BINARIES_FOR_SENTINEL:
        pytest.fail("no redis-server/valkey-server to run a sentinel with")
    binary = BINARIES_FOR_SENTINEL
    master = RedisServer(binary).start()
    sentinel = RedisServer(binary, port=free_port())
    sentinel.workdir = master.workdir + "-sentinel"
    os.makedirs(sentinel.workdir, exist_ok=True)
    conf = os.path.join(sentinel.workdir, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(
            f"port {sentinel.port}\nbind 127.0.0.1\n"
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        )
    sentinel.extra_args = ["--sentinel"]
    sentinel.binary_args = [conf]
    sentinel.start()
    try:
        with sentinel.client() as s:
            eventually(
                lambda: s.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster"),
                what="sentinel knows the master",
            )
        yield f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster"
    finally:
        sentinel.cleanup()
        master.cleanup()


def test_client_through_sentinel(sentinel_url: str, prefix: str) -> None:
    with Client(sentinel_url, prefix=prefix) as client:
        job_id = client.submit("via_sentinel", {"ok": True}, priority="high")
        job = client.get_job(job_id)
        assert job is not None and job.status is JobStatus.PENDING
        assert client.queue_stats().queued == 1
