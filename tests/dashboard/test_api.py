"""Endpoint tests of every JSON API the dashboard's pages use, on a real Redis and real workers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from bananas import Client, Job, JobStatus, Schedule
from bananas.dashboard import DashboardSettings
from bananas.worker_runtime import Registry, Worker
from tests.dashboard.conftest import READ_TOKEN, api, handlers
from tests.dashboard.server import DashboardServer
from tests.support.proxy import CommandCountingProxy
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

WorkerFactory = Callable[..., Worker]


def test_queues_and_overview_count_what_redis_holds(admin: httpx.Client, sdk: Client) -> None:
    for i in range(7):
        sdk.submit("ok", {"i": i}, priority=("high", "normal", "low")[i % 3])
    sdk.submit("ok", {"gpu": 1}, routing_key="gpu", priority="low")
    sdk.submit("ok", {"later": 1}, delay=3600)
    queues = {q["routing_key"]: q for q in admin.get("/api/queues").json()["queues"]}
    assert queues["default"]["depth"] == {"high": 3, "normal": 2, "low": 2}
    assert queues["default"]["scheduled"] == 1 and queues["default"]["dead"] == 0
    assert queues["gpu"]["depth"] == {"high": 0, "normal": 0, "low": 1}
    assert queues["default"]["oldest_age"] is not None
    overview = admin.get("/api/overview").json()
    assert overview["totals"] == {"queued": 8, "scheduled": 1, "in_flight": 0, "dead": 0}
    assert overview["workers"]["count"] == 0
    page = admin.get("/").text
    assert '<div class="value" id="total-queued">8</div>' in page


def test_ready_jobs_are_paginated_in_priority_order(admin: httpx.Client, sdk: Client) -> None:
    low = sdk.submit_many([{"name": "ok", "payload": i, "priority": "low"} for i in range(30)])
    high = sdk.submit_many([{"name": "ok", "payload": i, "priority": "high"} for i in range(15)])
    first = admin.get("/api/jobs", params={"state": "ready", "count": 20}).json()
    assert first["total"] == 45 and first["pages"] == 3
    assert [j["id"] for j in first["jobs"]] == high + low[:5]
    third = admin.get("/api/jobs", params={"state": "ready", "count": 20, "page": 3}).json()
    assert [j["id"] for j in third["jobs"]] == low[25:]
    only_low = admin.get(
        "/api/jobs", params={"state": "ready", "priority": "low", "count": 5, "order": "reverse"}
    ).json()
    assert only_low["total"] == 30
    assert [j["id"] for j in only_low["jobs"]] == low[::-1][:5]


def test_scheduled_jobs_show_their_due_time_and_run_now_moves_them(
    admin: httpx.Client, sdk: Client
) -> None:
    job_id = sdk.submit("ok", {"x": 1}, delay=600)
    rows = admin.get("/api/jobs", params={"state": "scheduled"}).json()["jobs"]
    assert [r["id"] for r in rows] == [job_id]
    due = datetime.fromisoformat(rows[0]["at"]).timestamp()
    assert 590 < due - datetime.now(UTC).timestamp() <= 600
    reply = admin.post(f"/api/jobs/{job_id}/actions/run_now", params={"routing_key": "default"})
    assert reply.status_code == 200 and reply.json()["count"] == 1
    job = sdk.get_job(job_id)
    assert job is not None and job.status is JobStatus.PENDING


def test_dead_jobs_show_their_reason_and_requeue_brings_them_back(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    ids = [sdk.submit("boom", i, max_retries=0) for i in range(3)]
    worker = worker_factory(handlers())
    eventually(lambda: sdk.queue_stats().dead == 3, what="3 dead jobs")
    worker.stop()
    page = admin.get("/api/jobs", params={"state": "dead"}).json()
    assert {r["id"] for r in page["jobs"]} == set(ids)
    assert all("PermanentError: boom" in r["error"] for r in page["jobs"])
    html = admin.get(f"/jobs/{ids[0]}").text
    assert 'id="job-traceback"' in html and "Traceback" in html and "boom" in html
    reply = admin.post(f"/api/jobs/{ids[0]}/actions/requeue")
    assert reply.json()["count"] == 1
    stats = sdk.queue_stats()
    assert stats.dead == 2 and stats.queued == 1


def test_in_flight_jobs_are_listed_with_their_lease(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    gate = threading.Event()
    registry = Registry()
    registry.register("hold", lambda job: gate.wait(20))
    worker = worker_factory(registry)
    job_id = sdk.submit("hold")
    try:
        eventually(
            lambda: any(job_id in w.running for w in sdk.workers()), what="a heartbeat naming it"
        )
        rows = admin.get("/api/jobs", params={"state": "in_flight"}).json()["jobs"]
        assert [r["id"] for r in rows] == [job_id]
        assert rows[0]["at_in"] > 0, "a lease deadline in the future"
        assert rows[0]["worker"] == worker.id and rows[0]["lease_age"] != "-"
        assert worker.id in admin.get("/jobs", params={"state": "in_flight"}).text
        assert f"/jobs/{job_id}" in admin.get("/workers").text, "the worker's running jobs"
        assert admin.get(f"/api/jobs/{job_id}").json()["actions"] == []
    finally:
        gate.set()
    eventually(lambda: sdk.get_result(job_id), what="the job finished")


def test_in_flight_jobs_show_the_progress_their_handler_reports(
    dashboard: DashboardServer, admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    from tests.dashboard.conftest import ADMIN_TOKEN

    halfway, finish = threading.Event(), threading.Event()

    def copy(job: Job) -> str:
        job.set_progress(25, "copied 1 of 4 files")
        halfway.wait(20)
        job.set_progress(75, {"files": 3, "of": 4})
        finish.wait(20)
        return "copied"

    registry = Registry()
    registry.register("copy", copy)
    registry.register("hold_quiet", lambda job: finish.wait(20))
    quiet = sdk.submit("hold_quiet")  # in flight too, reports nothing
    job_id = sdk.submit("copy")
    worker = worker_factory(registry, concurrency=4)
    params = {"state": "in_flight"}
    try:

        def reported(percent: float) -> dict[str, object] | None:
            rows = admin.get("/api/jobs", params=params).json()["jobs"]
            row = next((r for r in rows if r["id"] == job_id), None)
            return row if row and row["progress"] == percent and row["worker"] != "-" else None

        row = eventually(lambda: reported(25), what="25% on the in-flight page")
        assert row["worker"] == worker.id and row["lease_age"] != "-"
        assert (row["progress_text"], row["progress_message"]) == ("25%", "copied 1 of 4 files")
        detail = admin.get(f"/api/jobs/{job_id}").json()
        assert detail["running"]["progress"] == 25 and detail["running"]["worker"] == worker.id
        assert 'id="job-progress"' in admin.get(f"/jobs/{job_id}").text
        page = admin.get("/jobs", params=params).text
        assert '<progress max="100" value="25.0">' in page and "copied 1 of 4 files" in page

        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with (
            httpx.Client(base_url=dashboard.url, headers=headers, timeout=20) as http,
            http.stream("GET", "/api/stream", params={"view": "jobs", **params}) as stream,
        ):
            updates = _updates(stream)
            assert "25%" in next(updates)
            halfway.set()
            pushed = next(u for u in updates if "75%" in u)
        assert "&#34;files&#34;:3" in pushed, "a non-string info as compact JSON"
        quiet_row = next(
            r for r in admin.get("/api/jobs", params=params).json()["jobs"] if r["id"] == quiet
        )
        assert (quiet_row["progress"], quiet_row["progress_text"]) == (None, "-")
    finally:
        halfway.set()
        finish.set()
    assert sdk.wait_for_result(job_id, 10).result == "copied"
    done = admin.get(f"/api/jobs/{job_id}").json()
    assert done["running"] is None, "no progress shown once it finished"


def test_job_detail_has_payload_options_attempts_and_result(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    job_id = sdk.submit("ok", {"answer": 42}, priority="high", max_retries=5, description="d")
    before = admin.get(f"/api/jobs/{job_id}").json()
    assert before["job"]["status"] == "pending" and before["job"]["max_retries"] == 5
    assert before["actions"] == ["cancel", "delete"] and before["result"] is None
    worker_factory(handlers())
    sdk.wait_for_result(job_id, 10)
    after = admin.get(f"/api/jobs/{job_id}").json()
    assert after["job"]["status"] == "completed"
    assert after["result"]["result"] == {"answer": 42}
    assert orjson.loads(after["payload_json"]) == {"answer": 42}
    assert admin.get("/api/jobs/no-such-job").status_code == 404
    html = admin.get(f"/jobs/{job_id}").text
    assert "completed" in html and "&#34;answer&#34;: 42" in html


def test_cancel_and_delete(admin: httpx.Client, sdk: Client) -> None:
    a, b = sdk.submit("ok", 1), sdk.submit("ok", 2, delay=60)
    assert admin.post(f"/api/jobs/{a}/actions/cancel").json()["count"] == 1
    assert sdk.get_job(a).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert admin.post(f"/api/jobs/{b}/actions/delete").json()["count"] == 1
    assert sdk.get_job(b) is None
    assert sdk.queue_stats().scheduled == 0
    assert admin.post(f"/api/jobs/{a}/actions/explode").status_code == 400


def test_search_by_id_and_by_substring_with_a_visible_limit(
    admin: httpx.Client, sdk: Client
) -> None:
    ids = sdk.submit_many(
        [{"name": "email.send", "payload": {"to": f"user{i}@example.org"}} for i in range(30)]
    )
    sdk.submit("report.build", {"month": "may"})
    by_id = admin.get("/api/search", params={"q": ids[3]}).json()
    assert by_id["by_id"]["id"] == ids[3]
    found = admin.get("/api/search", params={"q": "USER1", "state": "ready"}).json()
    assert {j["id"] for j in found["jobs"]} == {ids[1], *ids[10:20]}
    assert found["scanned"] == 31 and found["complete"]
    by_name = admin.get("/api/search", params={"q": "report"}).json()
    assert [j["name"] for j in by_name["jobs"]] == ["report.build"]
    limited = admin.get("/api/search", params={"q": "user", "limit": 10}).json()
    assert limited["scanned"] == 10 and not limited["complete"] and len(limited["jobs"]) == 10
    assert "limit of 10 reached" in admin.get("/search", params={"q": "user", "limit": 10}).text


def test_bulk_on_a_selection_and_on_everything_matching(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    boom = [sdk.submit("boom", {"batch": "a" if i < 12 else "b"}, max_retries=0) for i in range(20)]
    worker = worker_factory(handlers())
    eventually(lambda: sdk.queue_stats().dead == 20, what="20 dead jobs")
    worker.stop()
    selected = admin.post(
        "/api/bulk", json={"action": "delete", "routing_key": "default", "ids": boom[:2]}
    ).json()
    assert selected["count"] == 2
    matching = {"routing_key": "default", "state": "dead", "query": '"a"'}
    preview = admin.post("/api/bulk/preview", json={"filter": matching}).json()
    assert preview["count"] == 10 and not preview["limited"]
    moved = admin.post(
        "/api/bulk", json={"action": "requeue", "filter": matching, "expected": 10}
    ).json()
    assert moved["count"] == 10
    stats = sdk.queue_stats()
    assert stats.dead == 8 and stats.queued == 10
    everything = {"routing_key": "default", "state": "dead"}
    assert admin.post("/api/bulk/preview", json={"filter": everything}).json()["count"] == 8
    purged = admin.post("/api/bulk", json={"action": "delete", "filter": everything}).json()
    assert purged["count"] == 8 and sdk.queue_stats().dead == 0
    wrong = admin.post("/api/bulk", json={"action": "run_now", "filter": everything})
    assert wrong.status_code == 400


def test_bulk_run_now_and_delete_walk_a_whole_state(admin: httpx.Client, sdk: Client) -> None:
    sdk.submit_many([{"name": "ok", "payload": i, "delay": 900} for i in range(1200)])
    sdk.submit_many([{"name": "ok", "payload": i, "priority": "low"} for i in range(700)])
    done = admin.post(
        "/api/bulk",
        json={"action": "run_now", "filter": {"routing_key": "default", "state": "scheduled"}},
    ).json()
    assert done["count"] == 1200
    stats = sdk.queue_stats()
    assert stats.scheduled == 0 and stats.queued == 1900
    gone = admin.post(
        "/api/bulk",
        json={
            "action": "delete",
            "filter": {"routing_key": "default", "state": "ready", "priority": "low"},
        },
    ).json()
    assert gone["count"] == 700 and sdk.queue_stats().queued == 1200


def test_workers_and_the_cron_leader(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    w = worker_factory(handlers(), concurrency=3, routing_keys=("default", "gpu"))
    eventually(lambda: sdk.workers(), what="a heartbeat")
    rows = admin.get("/api/workers").json()["workers"]
    assert [r["id"] for r in rows] == [w.id]
    assert rows[0]["routing_keys"] == ["default", "gpu"] and rows[0]["concurrency"] == 3
    assert w.id in admin.get("/workers").text


def test_schedules_show_next_and_last_fire(admin: httpx.Client, sdk: Client) -> None:
    sdk.register_schedule(Schedule(id="nightly", cron="0 3 * * *", job="ok", timezone="UTC"))
    rows = admin.get("/api/schedules").json()["schedules"]
    assert [r["id"] for r in rows] == ["nightly"]
    nxt = datetime.fromisoformat(rows[0]["next_fire"])
    assert nxt.hour == 3 and nxt.minute == 0 and nxt > datetime.now(UTC)
    assert rows[0]["last_fire"] is None and rows[0]["run_count"] == 0


def test_audit_log_records_who_what_and_how_many(admin: httpx.Client, sdk: Client) -> None:
    ids = [sdk.submit("ok", i, delay=60) for i in range(3)]
    admin.post("/api/bulk", json={"action": "run_now", "routing_key": "default", "ids": ids})
    admin.post(f"/api/jobs/{ids[0]}/actions/cancel")
    entries = admin.get("/api/audit").json()["entries"]
    assert [(e["action"], e["count"], e["who"]) for e in entries] == [
        ("cancel", 1, "token-admin-1"),
        ("bulk run_now", 3, "token-admin-1"),
    ]
    assert entries[1]["ids"] == ids
    assert "bulk run_now" in admin.get("/audit").text


def test_the_audit_log_is_capped(admin: httpx.Client, sdk: Client) -> None:
    from bananas.admin import Admin

    admin_ops = Admin(sdk.broker)
    for i in range(5):
        sdk.run(admin_ops.record_audit(orjson.dumps({"i": i}).decode(), cap=3))
    entries, total = sdk.run(admin_ops.audit(0, 10))
    assert total == 3 and [orjson.loads(e)["i"] for e in entries] == [4, 3, 2]


def test_live_stream_pushes_an_update_when_a_job_completes(
    dashboard: DashboardServer, sdk: Client, worker_factory: WorkerFactory
) -> None:
    from tests.dashboard.conftest import ADMIN_TOKEN

    sdk.submit("ok", 1)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        httpx.Client(base_url=dashboard.url, headers=headers, timeout=20) as http,
        http.stream("GET", "/api/stream", params={"view": "overview"}) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        updates = _updates(stream)
        first = next(updates)
        assert 'id="total-completed">0<' in first
        worker_factory(handlers())
        second = next(updates)
        assert 'id="total-completed">1<' in second


def _updates(stream: httpx.Response):  # type: ignore[no-untyped-def]
    event = ""
    for line in stream.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "update":
            yield orjson.loads(line[6:])["html"]


def test_job_detail_stream(dashboard: DashboardServer, sdk: Client) -> None:
    from tests.dashboard.conftest import ADMIN_TOKEN

    job_id = sdk.submit("ok", {"k": "v"})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        httpx.Client(base_url=dashboard.url, headers=headers, timeout=20) as http,
        http.stream("GET", "/api/stream", params={"view": "job", "job_id": job_id}) as stream,
    ):
        assert job_id in next(_updates(stream))


def test_unknown_state_and_view_are_bad_requests(admin: httpx.Client) -> None:
    assert admin.get("/api/jobs", params={"state": "nope"}).status_code == 400
    assert admin.get("/api/stream", params={"view": "nope"}).status_code == 400
    assert admin.get("/api/jobs", params={"routing_key": "bad key!"}).status_code == 400


def _job(sdk: Client, job_id: str) -> Job:
    job = sdk.get_job(job_id)
    assert job is not None
    return job


def test_overview_throughput_counts_what_real_workers_did(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    ok = [sdk.submit("ok", i) for i in range(4)]
    boom = [sdk.submit("boom", i, max_retries=0) for i in range(2)]
    worker = worker_factory(handlers())
    for job_id in ok + boom:
        sdk.wait_for_result(job_id, 10)
    worker.stop()
    tp = admin.get("/api/overview", params={"window": 60}).json()["throughput"]
    assert tp["totals"] == {"completed": 4, "failed": 2, "retried": 0}
    assert tp["window"] == 60 and tp["bucket"] == 1 and tp["svg"].startswith("<svg")
    day = admin.get("/api/overview", params={"window": 1440}).json()["throughput"]
    assert day["totals"]["completed"] == 4 and day["bucket"] == 10
    assert 'id="tp-completed">4<' in admin.get("/").text
    row = admin.get("/api/queues").json()["queues"][0]
    assert row["last_hour"] == {"completed": 4, "failed": 2, "retried": 0}


def test_overview_percentiles_of_what_real_workers_ran(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    registry = handlers()

    @registry.handler("nap")
    async def nap(job: Job) -> None:
        await asyncio.sleep(job.payload)

    naps = [sdk.submit("nap", 0.25, routing_key="gpu") for _ in range(3)]
    quick = [sdk.submit("ok", i) for i in range(6)]
    worker = worker_factory(registry, routing_keys=["default", "gpu"])
    for job_id in naps + quick:
        sdk.wait_for_result(job_id, 10)
    worker.stop()
    timings = admin.get("/api/overview", params={"window": 60}).json()["timings"]
    rows = {r["routing_key"]: r for r in timings["routes"]}
    assert rows["gpu"]["run"]["n"] == 3 and rows["default"]["run"]["n"] == 6
    assert 0.25 / 2**0.5 <= rows["gpu"]["run"]["p50"] < 0.25 * 2**0.5, "within a bucket"
    assert rows["default"]["run"]["p99"] < 0.25
    assert rows["gpu"]["wait"]["n"] == 3 and rows["gpu"]["wait"]["p50"] is not None
    p99 = [v for v in timings["run"]["lines"]["p99"] if v is not None]
    assert p99 and max(p99) >= 0.25, "all routing keys: the slow jobs set the p99"
    assert timings["run"]["svg"].startswith("<svg") and 'data-line="p95"' in timings["run"]["svg"]
    week = admin.get("/api/overview", params={"window": 10080}).json()["timings"]
    assert {r["routing_key"]: r["run"]["n"] for r in week["routes"]} == {"gpu": 3, "default": 6}
    assert week["point_minutes"] == 360 and len(week["run"]["lines"]["p50"]) == 28
    page = admin.get("/").text
    assert 'id="timings"' in page and '<tr data-routing-key="gpu">' in page


def test_results_pages_completed_jobs_newest_first_with_their_results(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    first = [sdk.submit("ok", {"n": i}) for i in range(3)]
    worker = worker_factory(handlers())
    for job_id in first:
        sdk.wait_for_result(job_id, 10)
    later = sdk.submit("ok", {"n": 99})
    sdk.wait_for_result(later, 10)
    failed = sdk.submit("boom", 1, max_retries=0)
    sdk.wait_for_result(failed, 10)
    worker.stop()
    sdk.redis.delete(sdk.broker.route("default").result(first[0]))  # as if its TTL passed
    data = admin.get("/api/results", params={"routing_key": "default", "count": 2}).json()
    assert data["total"] == 4 and data["pages"] == 2, "completed jobs only, not the dead one"
    assert data["results"][0]["id"] == later and data["results"][0]["result"] == {"n": 99}
    assert data["results"][0]["name"] == "ok" and data["results"][0]["duration"] is not None
    back = admin.get("/api/results", params={"count": 2, "page": 2}).json()["results"]
    assert {r["id"] for r in back} | {r["id"] for r in data["results"]} == {*first, later}
    oldest = admin.get("/api/results", params={"order": "reverse", "count": 1}).json()
    assert oldest["results"][0]["id"] in first
    gone = next(r for r in data["results"] + back if r["id"] == first[0])
    assert gone["expired"] is True and gone["result"] is None
    page = admin.get("/results", params={"routing_key": "default"}).text
    assert f'<tr data-job-id="{later}">' in page and "expired (past its success TTL)" in page
    assert 'data-state-tab="results"' in admin.get("/jobs").text


def test_a_results_page_sends_the_same_commands_whatever_its_size(
    settings: DashboardSettings,
    start_dashboard: Callable[[DashboardSettings], DashboardServer],
    single_redis: RedisServer,
    sdk: Client,
    worker_factory: WorkerFactory,
) -> None:
    ids = sdk.submit_many([{"name": "ok", "payload": i} for i in range(60)])
    worker = worker_factory(handlers())
    for job_id in ids:
        sdk.wait_for_result(job_id, 10)
    worker.stop()
    proxy = CommandCountingProxy(single_redis.port).start()
    try:
        http = api(start_dashboard(replace(settings, redis_url=proxy.url)))

        def sent(count: int) -> tuple[Counter[str], list[dict[str, object]]]:
            before = proxy.snapshot()
            rows = http.get("/api/results", params={"count": count}).json()["results"]
            return proxy.snapshot() - before, rows

        sent(1)  # the first call loads the script (NOSCRIPT, then EVAL) on a fresh server
        small, five = sent(5)
        large, fifty = sent(50)
        assert len(five) == 5 and len(fifty) == 50
        assert all(r["result"] is not None for r in fifty), "every row's result was read"
        assert small == large, f"{small} for 5 rows, {large} for 50"
        assert large == Counter({"SMEMBERS": 1, "ZCARD": 1, "ZREVRANGE": 1, "EVALSHA": 1})
        http.close()
    finally:
        proxy.close()


def test_kubernetes_page_says_why_it_is_hidden(
    settings: DashboardSettings,
    start_dashboard: Callable[[DashboardSettings], DashboardServer],
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-kubeconfig")
    with contextlib.closing(api(start_dashboard(replace(settings, kubeconfig=missing)))) as http:
        view = http.get("/api/kubernetes").json()
        assert view["available"] is False and "No Kubernetes credentials" in view["reason"]
        page = http.get("/kubernetes")
        assert page.status_code == 200 and 'id="kube-unavailable"' in page.text
        assert 'href="/kubernetes"' in http.get("/").text
    off = start_dashboard(replace(settings, kubernetes=False))
    with contextlib.closing(api(off, READ_TOKEN)) as http:
        view = http.get("/api/kubernetes").json()
        assert view == {"available": False, "reason": "The Kubernetes page is turned off."}
    assert httpx.get(off.url + "/api/kubernetes").status_code == 401


def test_schedule_suspend_resume_and_trigger(admin: httpx.Client, sdk: Client) -> None:
    sdk.register_schedule(
        Schedule(id="hourly", cron="0 * * * *", job="ok", payload={"p": 1}, routing_key="gpu")
    )
    assert 'data-schedule-action="suspend"' in admin.get("/schedules").text
    assert admin.post("/api/schedules/hourly/actions/suspend").status_code == 200
    assert sdk.schedules()[0].enabled is False
    assert admin.get("/api/schedules").json()["schedules"][0]["next_fire"] is None
    assert admin.post("/api/schedules/hourly/actions/resume").status_code == 200
    assert sdk.schedules()[0].enabled is True
    fired = admin.post("/api/schedules/hourly/actions/trigger").json()
    job = sdk.get_job(fired["job_id"])
    assert job is not None and job.payload == {"p": 1} and job.routing_key == "gpu"
    assert admin.post("/api/schedules/nope/actions/trigger").status_code == 404
    assert admin.post("/api/schedules/hourly/actions/explode").status_code == 400
    actions = [e["action"] for e in admin.get("/api/audit").json()["entries"]]
    assert actions == ["schedule trigger", "schedule resume", "schedule suspend"]


def test_pause_is_offered_only_when_the_sdk_has_it(admin: httpx.Client, sdk: Client) -> None:
    from bananas import AsyncClient

    sdk.submit("ok", 1)
    has_pause = callable(getattr(AsyncClient, "pause", None))
    assert admin.get("/api/queues").json()["can_pause"] is has_pause
    assert ("data-queue-action" in admin.get("/queues").text) is has_pause
    reply = admin.post("/api/queues/default/actions/pause")
    assert reply.status_code == (200 if has_pause else 501)


def test_the_stream_says_when_redis_cannot_be_read(
    settings: DashboardSettings, start_dashboard: Callable[[DashboardSettings], DashboardServer]
) -> None:
    from tests.conftest import BINARIES
    from tests.dashboard.conftest import ADMIN_TOKEN
    from tests.support.servers import RedisServer

    own = RedisServer(BINARIES.get("redis") or BINARIES["valkey"]).start()
    try:
        server = start_dashboard(replace(settings, redis_url=own.url))
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with (
            httpx.Client(base_url=server.url, headers=headers, timeout=20) as http,
            http.stream("GET", "/api/stream", params={"view": "queues"}) as stream,
        ):
            events = _events(stream)
            assert next(events)[0] == "update"
            own.stop()
            kind, data = next(e for e in events if e[0] != "tick")
            assert kind == "problem" and "cannot reach Redis" in orjson.loads(data)["error"]
    finally:
        own.cleanup()


def _events(stream: httpx.Response):  # type: ignore[no-untyped-def]
    event = ""
    for line in stream.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, line[6:]


def test_a_workflow_step_belongs_to_its_workflow(
    admin: httpx.Client, sdk: Client, worker_factory: WorkerFactory
) -> None:
    from bananas import chain, task

    wf_id = sdk.submit_workflow(chain(task("boom", 1, max_retries=0), task("ok", 2)), name="wf")
    first = f"{wf_id}:0"
    worker = worker_factory(handlers())
    eventually(lambda: sdk.queue_stats().dead == 1, what="the first step dead-lettered")
    worker.stop()
    detail = admin.get(f"/api/jobs/{first}").json()
    assert detail["workflow"]["id"] == wf_id and detail["workflow"]["status"] == "failed"
    assert detail["actions"] == ["requeue", "cancel_workflow"]
    assert wf_id in admin.get(f"/jobs/{first}").text
    refused = admin.post(f"/api/jobs/{first}/actions/delete")
    assert refused.status_code == 409 and "cancel the workflow" in refused.json()["error"]
    gone = admin.post("/api/bulk", json={"action": "delete", "ids": [first]}).json()
    assert gone["count"] == 0 and sdk.queue_stats().dead == 1, "bulk delete skips the step"
    # Requeued from the dashboard, the step resumes its workflow (the client's way).
    assert admin.post(f"/api/jobs/{first}/actions/requeue").json()["count"] == 1
    info = sdk.get_workflow(wf_id)
    assert info is not None and info.status.value == "running"
    cancelled = admin.post(f"/api/workflows/{wf_id}/actions/cancel").json()
    assert cancelled["cancelled"] is True
    assert sdk.get_workflow(wf_id).status.value == "cancelled"  # type: ignore[union-attr]
    assert admin.get("/api/audit").json()["entries"][0]["action"] == "workflow cancel"
