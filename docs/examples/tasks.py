"""The handlers every example in docs/guide.md submits to.

Run them with a worker process from this folder:

    cd docs/examples
    REDIS_URL=redis://localhost:6379 bananas worker --app tasks

The guide quotes these handlers; ``run_snippets.py`` checks that the quotes are
verbatim, then runs the guide's client snippets against a worker serving this module.
Side effects (e-mail, storage, payments) are stand-ins that log what they would do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from bananas import Job, PermanentError, Retry
from bananas.worker_runtime import Registry

log = logging.getLogger(__name__)
registry = Registry()


# -- stand-ins for your own services ---------------------------------------------------------


class ApiResponse:
    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.body = body
        self.headers = {"Retry-After": "30"} if status_code == 429 else {}


def send_mail(to: str, subject: str, body: str) -> None:
    log.info("mail to %s: %s", to, subject)


async def call_partner_api(payload: dict[str, Any]) -> ApiResponse:
    """Answers with the status code the payload asks for (200 unless told otherwise)."""
    await asyncio.sleep(0.01)
    status = int(payload.get("simulate_status", 200))
    return ApiResponse(status, {"ok": status == 200})


_charged: set[str] = set()


def already_charged(order_id: str) -> bool:
    return order_id in _charged


def charge(order_id: str, amount: float) -> str:
    _charged.add(order_id)
    return f"ch_{order_id}"


# -- quick start -------------------------------------------------------------------------------


@registry.handler("send_welcome_email")
async def send_welcome_email(job: Job) -> None:
    email, name = job.payload["email"], job.payload["name"]
    log.info("sending welcome email to %s (%s)", name, email)


# -- handlers ----------------------------------------------------------------------------------


class EmailPayload(BaseModel):
    to: str
    subject: str
    body: str = ""


@registry.handler("send_email")
def send_email(job: Job) -> dict[str, str]:
    try:
        payload = job.unmarshal_payload(EmailPayload)
    except ValidationError as exc:  # a bad payload stays bad: don't retry it
        raise PermanentError(f"bad payload: {exc}") from exc
    if "@" not in payload.to:
        raise PermanentError(f"invalid recipient {payload.to!r}")  # no retry: to the DLQ
    send_mail(payload.to, payload.subject, payload.body)
    return {"sent_to": payload.to}


@registry.handler("resize_image")
async def resize_image(job: Job) -> dict[str, Any]:
    url = job.payload["image_url"]
    width, height = job.payload["width"], job.payload["height"]
    await asyncio.sleep(0.05)  # download, resize, upload: cancelled here at the deadline
    return {"url": url.replace(".jpg", f"_{width}x{height}.jpg")}


class Report(BaseModel):
    start_date: date
    end_date: date
    total_sales: float
    order_count: int


@registry.handler("generate_report")
def generate_report(job: Job) -> Report:
    start = date.fromisoformat(job.payload["start_date"])
    end = date.fromisoformat(job.payload["end_date"])
    time.sleep(0.1)  # a blocking query: fine in a sync handler, it runs in a thread
    days = (end - start).days + 1
    return Report(start_date=start, end_date=end, total_sales=days * 1234.5, order_count=days * 7)


@registry.handler("call_partner_api")
async def call_partner(job: Job) -> dict[str, Any]:
    response = await call_partner_api(job.payload)
    if response.status_code == 429:  # rate limited: come back when they say so
        raise Retry("partner API rate limit", delay=float(response.headers["Retry-After"]))
    if 400 <= response.status_code < 500:  # our request is wrong: retrying won't help
        raise PermanentError(f"partner API refused the request: {response.status_code}")
    if response.status_code >= 500:  # their outage: retry with backoff
        raise RuntimeError(f"partner API error {response.status_code}")
    return response.body


@registry.handler("process_payment")
def process_payment(job: Job) -> dict[str, str]:
    order_id, amount = job.payload["order_id"], float(job.payload["amount"])
    if amount <= 0:
        raise PermanentError(f"invalid amount {amount}")
    if already_charged(order_id):  # a retry or a redelivery after a crash
        return {"order_id": order_id, "charge": "already done"}
    return {"order_id": order_id, "charge": charge(order_id, amount)}


# -- complex payloads --------------------------------------------------------------------------


class Item(BaseModel):
    sku: str
    qty: int
    price: float


class OrderPayload(BaseModel):
    order_id: str
    customer_id: str
    items: list[Item]
    total: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


@registry.handler("process_order")
def process_order(job: Job) -> dict[str, Any]:
    order = job.unmarshal_payload(OrderPayload)
    units = sum(item.qty for item in order.items)
    return {"order_id": order.order_id, "units": units, "source": order.metadata.get("source")}


# -- small handlers the routing and priority examples submit to --------------------------------


@registry.handler("send_otp")
async def send_otp(job: Job) -> None:
    log.info("OTP %s to %s", job.payload["code"], job.payload["phone"])


@registry.handler("process_image")
async def process_image(job: Job) -> dict[str, str]:
    return {"thumbnail": job.payload["url"].replace(".jpg", "_thumb.jpg")}


@registry.handler("send_reminder")
async def send_reminder(job: Job) -> None:
    log.info("reminder for user %s", job.payload["user_id"])


@registry.handler("import_rows")
async def import_rows(job: Job) -> dict[str, int]:
    rows = job.payload["rows"]
    for done, _row in enumerate(rows, start=1):
        job.set_progress(100 * done / len(rows), {"rows": done})
    return {"imported": len(rows)}


@registry.handler("process_data")
async def process_data(job: Job) -> dict[str, int]:
    rows = job.payload["rows"]
    return {"rows": len(rows), "total": sum(rows)}


# -- workflows ---------------------------------------------------------------------------------


@registry.handler("fetch_page")
async def fetch_page(job: Job) -> str:
    return f"the text of {job.payload['url']} in a few words"


@registry.handler("count_words")
async def count_words(job: Job) -> int:
    (text,) = job.parent_results  # the previous step's result
    return len(text.split())


@registry.handler("store_count")
async def store_count(job: Job) -> dict[str, int]:
    return {"stored": job.parent_results[0]}


@registry.handler("score_doc")
async def score_doc(job: Job) -> int:
    doc = job.payload["doc"]
    if doc == "":
        raise PermanentError("empty document")
    return len(doc)


@registry.handler("sum_scores")
async def sum_scores(job: Job) -> dict[str, int]:
    # a chord's callback gets the members' results in member order; with
    # on_failure="mark" a failed member is None and its error is in parent_errors
    scores = [s for s in job.parent_results if s is not None]
    return {"total": sum(scores), "failed": sum(1 for e in job.parent_errors if e)}


@registry.handler("load_sales")
async def load_sales(job: Job) -> list[int]:
    return [120, 80]


@registry.handler("load_costs")
async def load_costs(job: Job) -> list[int]:
    return [50, 30]


@registry.handler("build_report")
async def build_report(job: Job) -> dict[str, int]:
    sales, costs = job.parent_results  # the children's results, in order
    return {"profit": sum(sales) - sum(costs)}


# -- periodic tasks ----------------------------------------------------------------------------


@registry.handler("cleanup_old_data")
def cleanup_old_data(job: Job) -> dict[str, Any]:
    cutoff = datetime.now(UTC) - timedelta(days=job.payload["days"])
    log.info("deleting records older than %s", cutoff.date())
    return {"cutoff": cutoff.isoformat(), "deleted": 0}


@registry.handler("generate_hourly_report")
async def generate_hourly_report(job: Job) -> None:
    log.info("hourly report for the slot fired as %s", job.id)


registry.cron(
    "0 2 * * *",
    "cleanup_old_data",
    id="nightly-cleanup",
    payload={"days": 30},
    priority="low",
    timezone="Europe/Berlin",
)
registry.cron("0 * * * *", "generate_hourly_report", id="hourly-report")
