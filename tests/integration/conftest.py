"""Fixtures shared by the integration tests that run real worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from bananas import Client
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer

Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def qc(single_redis: RedisServer, prefix: str) -> Iterator[Client]:
    with Client(single_redis.url, prefix=prefix) as c:
        yield c


@pytest.fixture
def spawn(single_redis: RedisServer, prefix: str) -> Iterator[Spawn]:
    procs: list[WorkerProcess] = []

    def start(wait_ready: bool = True, command: str = "worker", **env: str) -> WorkerProcess:
        proc = WorkerProcess(single_redis.url, prefix, env=env, command=command)
        procs.append(proc)
        return proc.start(wait_ready)

    yield start
    for proc in procs:
        proc.cleanup()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]
