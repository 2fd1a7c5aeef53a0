"""Fixtures of the dashboard suites: a real dashboard on a real Redis, and real workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from bananas import Client, Job
from bananas.dashboard import AuthMode, BasicUser, DashboardSettings, Role
from bananas.worker_runtime import Registry, Worker
from tests.dashboard.server import DashboardServer
from tests.support.servers import RedisServer

ADMIN_TOKEN = "admin-token-for-tests"
READ_TOKEN = "read-token-for-tests"


@pytest.fixture
def settings(single_redis: RedisServer, prefix: str) -> DashboardSettings:
    """Token auth with one admin and one read-only token, a fast live interval."""
    return DashboardSettings(
        redis_url=single_redis.url,
        prefix=prefix,
        auth=AuthMode.TOKEN,
        admin_tokens=(ADMIN_TOKEN,),
        read_tokens=(READ_TOKEN,),
        users=(BasicUser("ada", "pw-ada", Role.ADMIN), BasicUser("bob", "pw-bob", Role.READ)),
        live_interval=0.3,
        scan_limit=1000,
        page_size=20,
    )


@pytest.fixture
def start_dashboard() -> Iterator[Callable[[DashboardSettings], DashboardServer]]:
    """Start dashboards with given settings; all are stopped at the end of the test."""
    started: list[DashboardServer] = []

    def start(s: DashboardSettings) -> DashboardServer:
        server = DashboardServer(s).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def dashboard(
    settings: DashboardSettings, start_dashboard: Callable[[DashboardSettings], DashboardServer]
) -> DashboardServer:
    return start_dashboard(settings)


def api(server: DashboardServer, token: str = ADMIN_TOKEN) -> httpx.Client:
    """An HTTP client signed in with ``token`` (bearer), CSRF header set from /api/me."""
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    me = http.get("/api/me").json()
    http.headers["X-CSRF-Token"] = me["csrf"]
    return http


@pytest.fixture
def admin(dashboard: DashboardServer) -> Iterator[httpx.Client]:
    http = api(dashboard)
    yield http
    http.close()


@pytest.fixture
def sdk(single_redis: RedisServer, prefix: str) -> Iterator[Client]:
    with Client(single_redis.url, prefix=prefix) as c:
        yield c


class RunningWorker:
    """A real worker on its own thread and event loop; ``stop`` drains it (once)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.id = worker.id
        self.stopped = False
        worker.start_in_thread()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.worker.stop_in_thread()


@pytest.fixture
def worker_factory(
    single_redis: RedisServer, prefix: str
) -> Iterator[Callable[..., RunningWorker]]:
    """Start real in-process workers serving ``registry``; all stop at the end of the test."""
    workers: list[RunningWorker] = []

    def start(registry: Registry, **options: object) -> RunningWorker:
        w = Worker(registry, redis_url=single_redis.url, prefix=prefix, metrics_port=0, **options)
        workers.append(RunningWorker(w))
        return workers[-1]

    yield start
    for w in workers:
        w.stop()


def handlers() -> Registry:
    """``ok`` returns its payload, ``boom`` always fails for good."""
    from bananas import PermanentError

    registry = Registry()

    @registry.handler("ok")
    async def ok(job: Job) -> object:
        return job.payload

    @registry.handler("boom")
    async def boom(job: Job) -> None:
        raise PermanentError(f"boom {job.payload}")

    return registry
