"""The demo ``bananas dev --demo`` runs: each job kind of the seed's use-case table.

Handlers print what they do as they do it; :func:`drive` submits the jobs and
prints what the client sees (ids, results, the dead-letter queue, the cron status).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bananas import AsyncClient, Job, JobStatus
from bananas.worker_runtime.registry import Registry

registry = Registry()
_T0 = time.monotonic()

#: Routing keys the demo's worker serves, in order.
ROUTES = ("email", "gpu", "default")


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - _T0:6.2f}s] {who:<8} {text}", flush=True)


@registry.handler("send_otp_email")
async def send_otp_email(job: Job) -> dict[str, Any]:
    say(
        "worker",
        f"sending OTP {job.payload['code']} to {job.payload['to']} "
        f"(priority {job.priority}, route {job.routing_key})",
    )
    return {"delivered": True}


@registry.handler("process_image")
async def process_image(job: Job) -> dict[str, Any]:
    say("worker", f"resizing {job.payload['url']} on the gpu pool")
    await asyncio.sleep(0.3)
    return {"thumbnail": job.payload["url"].replace(".jpg", "_thumb.jpg")}


@registry.handler("send_reminder")
async def send_reminder(job: Job) -> None:
    late = (datetime.now(UTC) - job.scheduled_for).total_seconds() if job.scheduled_for else 0
    say("worker", f"reminder for user {job.payload['user_id']} ({late * 1000:.0f} ms after due)")


@registry.handler("generate_report")
def generate_report(job: Job) -> dict[str, Any]:
    say("worker", f"building the {job.payload['period']} report in a thread")
    time.sleep(0.5)
    return {"rows": 1234, "period": job.payload["period"]}


@registry.handler("deliver_webhook")
async def deliver_webhook(job: Job) -> None:
    say("worker", f"POST {job.payload['url']} (attempt {job.attempts} of {job.max_retries + 1})")
    raise ConnectionError("endpoint answered 503")


@registry.handler("nightly_cleanup")
async def nightly_cleanup(job: Job) -> dict[str, int]:
    say("worker", f"cleanup fired by cron as job {job.id}")
    return {"removed": 42}


registry.cron(
    "* * * * *",
    "nightly_cleanup",
    id="cleanup",
    description="every minute in the demo; '0 3 * * *' in real life",
)


async def drive(client: AsyncClient, *, cron_wait: float = 65.0) -> None:
    """Submit one job of each kind and narrate what happens."""
    say("client", "high-priority OTP email -> route 'email'")
    await client.submit(
        "send_otp_email",
        {"to": "ada@example.com", "code": "481516"},
        priority="high",
        routing_key="email",
    )
    say("client", "image job -> route 'gpu'")
    image = await client.submit(
        "process_image", {"url": "https://example.com/cat.jpg"}, routing_key="gpu"
    )
    say("client", "reminder scheduled 2 s from now")
    await client.submit(
        "send_reminder", {"user_id": "123"}, scheduled_for=datetime.now(UTC) + timedelta(seconds=2)
    )
    say("client", "webhook that always fails: 2 retries with backoff, then the DLQ")
    hook = await client.submit(
        "deliver_webhook", {"url": "https://example.com/hook"}, max_retries=2
    )
    say("client", "report through submit_and_wait ...")
    report = await client.submit_and_wait(
        "generate_report", {"period": "monthly"}, priority="low", timeout=30
    )
    say("client", f"report result: {report.result} in {report.duration * 1000:.0f} ms")
    thumb = await client.wait_for_result(image, timeout=30)
    say("client", f"image result: {thumb.result}")
    failed = await client.wait_for_result(hook, timeout=60)
    say("client", f"webhook ended {failed.status}: {failed.error}")
    for dead in await client.dead_letters():
        say("client", f"dead-letter queue: {dead.job_id} after {dead.attempts} attempts")
    await _wait_for_cron(client, cron_wait)
    stats = {s.routing_key: s.queued for s in await client.all_queue_stats()}
    say("client", f"queues now: {stats}. Done.")


async def _wait_for_cron(client: AsyncClient, limit: float) -> None:
    deadline = time.monotonic() + limit
    status = await client.schedule_status("cleanup")
    if status and status.next_schedule_time:
        say("client", f"cron 'cleanup' fires next at {status.next_schedule_time:%H:%M:%S} UTC")
    while time.monotonic() < deadline:
        status = await client.schedule_status("cleanup")
        if status and status.last_job_id:
            job = await client.get_job(status.last_job_id)
            if job and job.status is JobStatus.COMPLETED:
                say(
                    "client",
                    f"cron fired {status.run_count} time(s); "
                    f"next at {status.next_schedule_time:%H:%M:%S} UTC",
                )
                return
        await asyncio.sleep(0.5)
    say("client", "cron did not fire in time")
