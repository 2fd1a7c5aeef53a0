"""The dashboard's APIs on every backend: Redis, Valkey and a Redis Cluster.

The other dashboard suites run on one plain server; this one walks the reads and the
actions once per backend, so a key or script that breaks Cluster's one-slot rule, or
a command Valkey answers differently, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from bananas import Client, JobResult, JobStatus
from bananas.broker import Outcome
from bananas.dashboard import DashboardSettings
from tests.dashboard.conftest import api
from tests.dashboard.server import DashboardServer

pytestmark = pytest.mark.timeout(90)


def test_reads_and_actions(
    redis_url: str,
    prefix: str,
    client: Client,
    settings: DashboardSettings,
    start_dashboard: Callable[[DashboardSettings], DashboardServer],
) -> None:
    server = start_dashboard(replace(settings, redis_url=redis_url, prefix=prefix))
    http = api(server)
    ready = client.submit_many([{"name": "mail", "payload": {"n": i}} for i in range(6)])
    later = client.submit_many(
        [{"name": "gpu.train", "payload": i, "routing_key": "gpu", "delay": 600} for i in range(3)]
    )
    broker = client.broker
    leased = client.run(broker.fetch("default", 2, 30_000))
    body = JobResult(job_id=leased[0].id, status=JobStatus.COMPLETED, result=1).model_dump_json()
    client.run(broker.ack("default", [Outcome(leased[0].id, leased[0].attempt, body, 60_000)]))
    client.run(
        broker.fail(
            "default", [Outcome(leased[1].id, leased[1].attempt, "{}", 60_000, error="bad")]
        )
    )

    results = http.get("/api/results", params={"routing_key": "default"}).json()["results"]
    assert [(r["id"], r["result"]) for r in results] == [(leased[0].id, 1)]
    running = client.run(broker.fetch("default", 1, 30_000))[0]
    assert client.run(broker.set_progress("default", running.id, running.attempt, 40, "half"))
    rows = http.get("/api/jobs", params={"routing_key": "default", "state": "in_flight"}).json()
    assert [(j["id"], j["progress"], j["progress_message"]) for j in rows["jobs"]] == [
        (running.id, 40, "half")
    ]
    client.run(broker.ack("default", [Outcome(running.id, running.attempt, "2", 60_000)]))

    totals = http.get("/api/overview").json()
    assert totals["totals"] == {"queued": 3, "scheduled": 3, "in_flight": 0, "dead": 1}
    assert totals["throughput"]["totals"] == {"completed": 2, "failed": 1, "retried": 0}
    page = http.get("/api/jobs", params={"routing_key": "default", "state": "ready"}).json()
    assert [j["id"] for j in page["jobs"]] == ready[3:]
    dead = http.get("/api/jobs", params={"routing_key": "default", "state": "dead"}).json()
    assert [(j["id"], j["error"]) for j in dead["jobs"]] == [(ready[1], "bad")]
    found = http.get("/api/search", params={"q": '"n": 4', "routing_key": "default"}).json()
    assert found["jobs"] == [] and found["scanned"] == 3, "payloads are compact JSON"
    found = http.get("/api/search", params={"q": '"n":4', "routing_key": "default"}).json()
    assert [j["id"] for j in found["jobs"]] == [ready[4]]
    assert http.get(f"/api/jobs/{later[0]}").json()["job"]["routing_key"] == "gpu"

    moved = http.post(
        "/api/bulk",
        json={"action": "run_now", "filter": {"routing_key": "gpu", "state": "scheduled"}},
    ).json()
    assert moved["count"] == 3 and client.queue_stats("gpu").queued == 3
    assert http.post(f"/api/jobs/{ready[1]}/actions/requeue").json()["count"] == 1
    assert http.post(f"/api/jobs/{ready[3]}/actions/delete").json()["count"] == 1
    assert client.queue_stats().queued == 3 and client.queue_stats().dead == 0
    audit = http.get("/api/audit").json()
    assert [e["count"] for e in audit["entries"]] == [1, 1, 3]
    http.close()
