"""The dashboard driven by a real browser: Chromium through chromedriver (Selenium).

Chromium and chromedriver are found on PATH (Debian's ``chromium`` and
``chromium-driver``; ``BANANAS_CHROMIUM`` / ``BANANAS_CHROMEDRIVER`` override). Each
test gets a fresh profile. Screenshots of every page go to ``.artifacts/dashboard/``
(gitignored), for a person to look at after a run.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from bananas import Client, Job, Schedule
from tests.dashboard.conftest import ADMIN_TOKEN, READ_TOKEN, RunningWorker, handlers
from tests.dashboard.server import DashboardServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "dashboard"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,1000",
)


def _binary(env: str, *names: str) -> str:
    found = os.environ.get(env) or next((p for n in names if (p := shutil.which(n))), None)
    if not found:
        pytest.fail(f"no {names[0]} found (install chromium and chromium-driver, or set {env})")
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = _binary("BANANAS_CHROMIUM", "chromium", "chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    service = Service(executable_path=_binary("BANANAS_CHROMEDRIVER", "chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(driver: WebDriver, server: DashboardServer, token: str) -> None:
    driver.get(server.url + "/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait(driver, lambda d: d.find_elements(By.ID, "total-queued"))


def wait(driver: WebDriver, check: Callable[[WebDriver], Any], timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)


def text(driver: WebDriver, element_id: str) -> str:
    """The element's visible text, read in one script call (a live update may swap it)."""
    found = driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.innerText.trim() : null",
        element_id,
    )
    return "" if found is None else str(found)


def count(driver: WebDriver, selector: str) -> int:
    return int(
        driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector)
    )


def fetch(driver: WebDriver, method: str, path: str, csrf: bool) -> int:
    """Status of a same-origin fetch made by the page itself (cookies included)."""
    script = """
        const [method, path, csrf, done] = arguments;
        const headers = {"Content-Type": "application/json"};
        if (csrf) headers["X-CSRF-Token"] = document.querySelector('meta[name=csrf-token]').content;
        fetch(path, {method, headers, credentials: "same-origin",
                     body: method === "POST" ? "{}" : undefined}).then(r => done(r.status));
    """
    return int(driver.execute_async_script(script, method, path, csrf))


def test_pages_render_with_the_right_numbers(
    browser: WebDriver,
    dashboard: DashboardServer,
    sdk: Client,
    worker_factory: Callable[..., RunningWorker],
) -> None:
    sdk.submit_many([{"name": "ok", "payload": {"n": i}, "priority": "high"} for i in range(4)])
    sdk.submit_many([{"name": "report", "payload": {"n": i}} for i in range(9)])
    sdk.submit("ok", {"gpu": True}, routing_key="gpu")
    sdk.submit_many([{"name": "ok", "payload": i, "delay": 3600} for i in range(2)])
    sdk.register_schedule(Schedule(id="nightly-report", cron="0 3 * * *", job="report"))
    sign_in(browser, dashboard, ADMIN_TOKEN)
    assert text(browser, "total-queued") == "14"
    assert text(browser, "total-scheduled") == "2"
    assert text(browser, "total-dead") == "0"
    shot(browser, "overview")

    browser.get(dashboard.url + "/queues")
    cells = browser.execute_script(
        "const out = {}; document.querySelectorAll('tr[data-routing-key=default] td[data-col]')"
        ".forEach(td => { out[td.dataset.col] = td.innerText.trim(); }); return out"
    )
    assert (cells["high"], cells["normal"], cells["low"], cells["scheduled"]) == (
        "4",
        "9",
        "0",
        "2",
    )
    shot(browser, "queues")

    browser.get(dashboard.url + "/jobs?routing_key=default&state=ready")
    assert text(browser, "jobs-total") == "13"
    assert count(browser, "#jobs-table tbody tr[data-job-id]") == 13
    shot(browser, "jobs-ready")
    # The priority filter submits itself (a script handler: the CSP forbids inline ones).
    Select(browser.find_element(By.NAME, "priority")).select_by_visible_text("high")
    wait(browser, lambda d: text(d, "jobs-total") == "4")
    assert "priority=high" in browser.current_url
    browser.get(dashboard.url + "/jobs?routing_key=default&state=scheduled")
    assert text(browser, "jobs-total") == "2"
    assert "in 59m" in text(browser, "jobs-table")
    shot(browser, "jobs-scheduled")

    browser.get(dashboard.url + "/search?q=report&state=ready")
    assert text(browser, "search-count") == "9" and text(browser, "search-scanned") == "13"
    shot(browser, "search")

    browser.execute_script("document.querySelector('#jobs-table tbody tr[data-job-id] a').click()")
    wait(browser, lambda d: text(d, "job-status"))
    assert text(browser, "job-status") == "pending"
    assert '"n"' in text(browser, "job-payload")
    shot(browser, "job")

    worker = worker_factory(handlers(), concurrency=2)
    eventually(lambda: sdk.workers(), what="a heartbeat")
    browser.get(dashboard.url + "/workers")
    assert worker.id in text(browser, "workers-table")
    shot(browser, "workers")
    browser.get(dashboard.url + "/schedules")
    assert "nightly-report" in text(browser, "schedules-table")
    shot(browser, "schedules")

    def drained() -> bool:
        stats = sdk.queue_stats()
        return stats.queued == 0 and stats.in_flight == 0

    eventually(drained, what="the worker drained the default queue")
    browser.get(dashboard.url + "/results?routing_key=default")
    assert text(browser, "results-total") == "4"
    assert count(browser, "#results-table tbody tr[data-job-id]") == 4
    shot(browser, "results")
    browser.get(dashboard.url + "/")
    wait(browser, lambda d: count(d, "#timings tr[data-routing-key=default]") == 1)
    assert count(browser, "#timings svg.chart [data-line=p99]") == 2, "a wait and a run dot"
    shot(browser, "overview-after-a-run")


def test_a_live_update_appears_without_reload_when_a_job_completes(
    browser: WebDriver,
    dashboard: DashboardServer,
    sdk: Client,
    worker_factory: Callable[..., RunningWorker],
) -> None:
    job_id = sdk.submit("ok", {"live": 1})
    sign_in(browser, dashboard, ADMIN_TOKEN)
    wait(browser, lambda d: text(d, "live-status") == "live")
    assert text(browser, "total-completed") == "0" and text(browser, "total-queued") == "1"
    browser.execute_script("window.__same_page = true")
    worker_factory(handlers())
    sdk.wait_for_result(job_id, 10)
    wait(browser, lambda d: text(d, "total-completed") == "1")
    assert text(browser, "total-queued") == "0"
    assert browser.execute_script("return window.__same_page === true"), "the page reloaded"
    assert int(browser.find_element(By.ID, "live").get_attribute("data-updates") or 0) >= 1
    shot(browser, "overview-live")

    browser.find_element(By.ID, "live-toggle").click()
    wait(browser, lambda d: text(d, "live-status") == "paused")
    updates = browser.find_element(By.ID, "live").get_attribute("data-updates")
    second = sdk.submit("ok", {"live": 2})
    sdk.wait_for_result(second, 10)
    # Paused: the page keeps what it showed; live again, it catches up.
    assert browser.find_element(By.ID, "live").get_attribute("data-updates") == updates
    assert text(browser, "total-completed") == "1"
    browser.find_element(By.ID, "live-toggle").click()
    wait(browser, lambda d: text(d, "total-completed") == "2")
    # The chart is read again every 6 s; it then shows both completions of this minute.
    wait(browser, lambda d: text(d, "tp-completed") == "2", timeout=20)
    assert count(browser, "#throughput svg polyline") == 3
    shot(browser, "overview-chart")


def test_in_flight_progress_updates_live_on_the_jobs_and_job_pages(
    browser: WebDriver,
    dashboard: DashboardServer,
    sdk: Client,
    worker_factory: Callable[..., RunningWorker],
) -> None:
    steps = [threading.Event() for _ in range(3)]

    def convert(job: Job) -> str:
        for n, step in enumerate(steps):
            job.set_progress(30 * n + 10, f"frame {n + 1} of 3")
            step.wait(30)
        return "converted"

    registry = handlers()
    registry.register("convert", convert)
    worker = worker_factory(registry)
    job_id = sdk.submit("convert", {"video": "a.mp4"})
    try:
        sign_in(browser, dashboard, ADMIN_TOKEN)
        browser.get(dashboard.url + "/jobs?routing_key=default&state=in_flight")
        wait(browser, lambda d: text(d, "live-status") == "live")

        def cell(col: str) -> str:
            found = browser.execute_script(
                "const td = document.querySelector("
                "`#jobs-table tr[data-job-id='${arguments[0]}'] td[data-col=${arguments[1]}]`);"
                "return td ? td.innerText.trim() : ''",
                job_id,
                col,
            )
            return str(found)

        wait(browser, lambda d: cell("progress") == "10% frame 1 of 3")
        # The worker is named by its heartbeat, which may come after the first report.
        wait(browser, lambda d: cell("worker") == worker.id)
        assert cell("lease_age") != "-"
        browser.execute_script("window.__same_page = true")
        steps[0].set()
        wait(browser, lambda d: cell("progress") == "40% frame 2 of 3")
        bar = browser.find_element(By.CSS_SELECTOR, f"tr[data-job-id='{job_id}'] progress")
        assert bar.get_attribute("value") == "40"
        assert browser.execute_script("return window.__same_page === true"), "the page reloaded"
        shot(browser, "jobs-in-flight-progress")

        browser.get(f"{dashboard.url}/jobs/{job_id}")
        assert text(browser, "job-status") == "processing"
        assert text(browser, "job-progress") == "40% frame 2 of 3"
        assert text(browser, "job-worker").startswith(worker.id)
        wait(browser, lambda d: text(d, "live-status") == "live")
        browser.execute_script("window.__same_page = true")
        steps[1].set()
        wait(browser, lambda d: text(d, "job-progress") == "70% frame 3 of 3")
        assert browser.execute_script("return window.__same_page === true"), "the page reloaded"
        shot(browser, "job-progress")
        steps[2].set()
        wait(browser, lambda d: text(d, "job-status") == "completed")
        assert not browser.find_elements(By.ID, "job-progress"), "a finished job has no progress"
    finally:
        for step in steps:
            step.set()


def test_bulk_requeue_of_all_matching_moves_the_stated_count(
    browser: WebDriver,
    dashboard: DashboardServer,
    sdk: Client,
    worker_factory: Callable[..., RunningWorker],
) -> None:
    sdk.submit_many([{"name": "boom", "payload": i, "max_retries": 0} for i in range(25)])
    worker = worker_factory(handlers())
    eventually(lambda: sdk.queue_stats().dead == 25, what="25 dead jobs")
    worker.stop()
    sign_in(browser, dashboard, ADMIN_TOKEN)
    browser.get(dashboard.url + "/jobs?routing_key=default&state=dead")
    assert text(browser, "jobs-total") == "25"
    browser.find_element(
        By.CSS_SELECTOR, 'button[data-bulk="requeue"][data-scope="filter"]'
    ).click()
    wait(browser, lambda d: d.find_element(By.ID, "confirm").is_displayed())
    stated = text(browser, "confirm-text")
    assert stated == "requeue 25 dead job(s) on default?"
    shot(browser, "bulk-confirm")
    browser.find_element(By.ID, "confirm-ok").click()
    wait(browser, lambda d: "requeue: 25 job(s)" in text(d, "flash"))
    stats = sdk.queue_stats()
    assert stats.dead == 0 and stats.queued == 25
    wait(browser, lambda d: text(d, "jobs-total") == "0")
    browser.get(dashboard.url + "/audit")
    assert "bulk requeue (all matching)" in text(browser, "audit-table")
    shot(browser, "audit")


def test_a_read_only_user_sees_no_action_buttons_and_gets_403(
    browser: WebDriver, dashboard: DashboardServer, sdk: Client
) -> None:
    job_id = sdk.submit("ok", 1, delay=600)
    sign_in(browser, dashboard, READ_TOKEN)
    assert text(browser, "who").endswith("read")
    browser.get(f"{dashboard.url}/jobs/{job_id}")
    assert text(browser, "job-status") == "scheduled"
    assert count(browser, "button[data-action]") == 0
    browser.get(dashboard.url + "/jobs?state=scheduled")
    assert count(browser, "button[data-bulk], input.select") == 0
    assert fetch(browser, "POST", f"/api/jobs/{job_id}/actions/run_now", csrf=True) == 403
    assert sdk.queue_stats().scheduled == 1
    shot(browser, "read-only")


def test_unauthenticated_gets_401_and_a_csrf_less_post_is_refused(
    browser: WebDriver, dashboard: DashboardServer, sdk: Client
) -> None:
    job_id = sdk.submit("ok", 1, delay=600)
    browser.get(dashboard.url + "/")
    assert browser.find_elements(By.NAME, "token"), "the sign-in form"
    assert fetch(browser, "GET", "/api/queues", csrf=False) == 401
    assert fetch(browser, "POST", f"/api/jobs/{job_id}/actions/delete", csrf=False) == 401
    sign_in(browser, dashboard, ADMIN_TOKEN)
    assert fetch(browser, "POST", f"/api/jobs/{job_id}/actions/delete", csrf=False) == 403
    assert sdk.get_job(job_id) is not None, "the CSRF-less POST changed nothing"
    assert fetch(browser, "POST", f"/api/jobs/{job_id}/actions/delete", csrf=True) == 200
    assert sdk.get_job(job_id) is None
