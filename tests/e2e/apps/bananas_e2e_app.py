"""The handlers the pod tier's worker pods run (``BANANAS_APP=bananas_e2e_app``).

This directory is the worker image's ``/app`` for the e2e tests: the process
kubelet puts it on ``PYTHONPATH``, and ``hack/e2e-kind.sh`` copies this file
into the image it builds for kind.

``ledger_sleep`` keeps a ledger in Redis (REDIS_URL, the pod's own) so a test
can tell, after the fact, whether a job was cut short or run twice:

* ``<ledger>:starts`` and ``<ledger>:finishes``: hashes job id -> count;
* ``<ledger>:events``: a list of JSON records ``{"job", "pod", "event", "t"}``
  with event ``start`` or ``finish``.

A job that was interrupted has a start and no finish; one that ran twice has
two starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis.asyncio as aioredis

from bananas import Job
from bananas.worker_runtime.registry import Registry

registry = Registry()
_redis: aioredis.Redis | None = None


def _client() -> aioredis.Redis:
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    return _redis


_COUNTS = {"start": "starts", "finish": "finishes"}


async def _note(ledger: str, job: Job, event: str) -> None:
    record = {"job": job.id, "pod": os.environ.get("POD_NAME", ""), "event": event}
    record["t"] = round(time.time(), 3)
    pipe = _client().pipeline(transaction=True)
    pipe.hincrby(f"{ledger}:{_COUNTS[event]}", job.id, 1)
    pipe.rpush(f"{ledger}:events", json.dumps(record))
    await pipe.execute()


@registry.handler("ledger_sleep")
async def ledger_sleep(job: Job) -> dict[str, Any]:
    """Sleep ``payload["seconds"]``, noting start and finish in ``payload["ledger"]``."""
    ledger = str(job.payload["ledger"])
    await _note(ledger, job, "start")
    await asyncio.sleep(float(job.payload.get("seconds", 0)))
    await _note(ledger, job, "finish")
    return {"pod": os.environ.get("POD_NAME", "")}


@registry.handler("tick")
async def tick(job: Job) -> None:
    """What the e2e CronSchedules fire."""
