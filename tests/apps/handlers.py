"""Handlers the process-level tests run in real worker subprocesses.

Every handler records what it did in Redis (a "ledger") so a test can check, from
outside the worker, which jobs ran, where, in which order and how often.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import redis

from bananas import Job, PermanentError
from bananas.worker_runtime import Registry

registry = Registry()
log = logging.getLogger(__name__)
_ledger: redis.Redis | None = None


def ledger() -> redis.Redis:
    """A plain connection to the test's Redis (LEDGER_URL), for recording runs."""
    global _ledger
    if _ledger is None:
        _ledger = redis.Redis.from_url(os.environ["LEDGER_URL"], decode_responses=True)
    return _ledger


def record(job: Job, what: str = "ran") -> None:
    ledger().rpush(
        f"ledger:{job.payload.get('test', 'x')}",
        f"{what}|{job.id}|{job.name}|{job.routing_key}|{os.getpid()}|{job.attempts}",
    )


@registry.handler("echo")
async def echo(job: Job) -> Any:
    record(job)
    return job.payload


@registry.handler("sync_echo")
def sync_echo(job: Job) -> Any:
    record(job)
    return {"thread": True, **job.payload}


@registry.handler("chatty")
async def chatty(job: Job) -> str:
    log.info("handler line of %s", job.payload.get("test"))  # no job fields passed
    return "said"


@registry.handler("sync_chatty")
def sync_chatty(job: Job) -> str:
    log.info("thread line of %s", job.payload.get("test"))
    return "said"


@registry.handler("sleep")
async def sleep(job: Job) -> str:
    record(job, "start")
    await asyncio.sleep(float(job.payload["seconds"]))
    record(job, "done")
    return "slept"


@registry.handler("sync_sleep")
def sync_sleep(job: Job) -> str:
    record(job, "start")
    time.sleep(float(job.payload["seconds"]))
    record(job, "done")
    return "slept"


@registry.handler("flaky")
async def flaky(job: Job) -> str:
    record(job)
    if job.attempts <= int(job.payload.get("fail_times", 1)):
        raise RuntimeError(f"flaky failure {job.attempts}")
    return "recovered"


@registry.handler("permanent")
async def permanent(job: Job) -> None:
    record(job)
    raise PermanentError("bad input, do not retry")


@registry.handler("exits")
async def exits(job: Job) -> None:
    record(job)
    raise SystemExit(3)


@registry.handler("unserialisable")
async def unserialisable(job: Job) -> object:
    record(job)
    return object()


@registry.handler("noop")
async def noop(job: Job) -> None:
    return None


@registry.handler("span")
async def span(job: Job) -> None:
    """Record when it started and ended (epoch seconds): the flow tests count overlaps."""
    record(job, f"start@{time.time()!r}")
    await asyncio.sleep(float(job.payload.get("seconds", 0)))
    record(job, f"end@{time.time()!r}")


@registry.handler("report_progress")
async def report_progress(job: Job) -> str:
    """Half way, then wait for the test's go (a token on go:<test>), then done."""
    job.set_progress(50, {"step": 1})
    await asyncio.to_thread(ledger().blpop, [f"go:{job.payload['test']}"], 20)
    job.set_progress(100, {"step": 2})
    return "reported"


@registry.handler("sync_report_progress")
def sync_report_progress(job: Job) -> str:
    """The same from a thread of the pool."""
    job.set_progress(50, {"step": 1})
    ledger().blpop([f"go:{job.payload['test']}"], 20)
    job.set_progress(100, {"step": 2})
    return "reported"


_hoard: list[bytes] = []


@registry.handler("hog")
async def hog(job: Job) -> str:
    """Keep ``mib`` MiB resident for the life of the process (the memory-recycling test)."""
    record(job, "start")
    _hoard.append(b"\x01" * (int(job.payload["mib"]) * 1024 * 1024))
    await asyncio.sleep(float(job.payload.get("seconds", 0)))
    record(job, "done")
    return "held"
