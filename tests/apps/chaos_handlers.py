"""Handlers for the reliability tests and ``python -m tests.chaos``.

The fault scenarios kill workers and Redis itself, so the ledger that proves what
ran lives in a *separate* Redis (``LEDGER_URL``) that no scenario touches. For
every run of ``work`` it keeps, under ``chaos:<tag>:``:

- ``first``  HASH job id -> time the first run started (HSETNX: later runs keep it)
- ``owner``  HASH job id -> pid of the process that started the latest run
- ``starts`` HASH job id -> runs started
- ``runs``   HASH job id -> completed runs (HINCRBY once the handler body is done)

``work`` holds its slot with ``asyncio.sleep`` for ``ms`` milliseconds, and with
``block_ms`` also *blocks the event loop* with ``time.sleep`` (the mistake the
blocked-loop watchdog exists for).

A completed run is counted *before* the worker acknowledges the job, so a run whose
ack never reached Redis (the worker died, or its lease was reaped) shows up here as
a duplicate when the job runs again: exactly what at-least-once allows and what the
scenarios measure.

The other handlers misbehave on purpose (huge results, ``KeyboardInterrupt``,
``MemoryError``) or echo what they were given (the inert-payload checks).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis.asyncio as aioredis

from bananas import Job
from bananas.worker_runtime import Registry

registry = Registry()
_ledger: aioredis.Redis | None = None


def _aledger() -> aioredis.Redis:
    """One asyncio connection pool per worker process (the worker runs one loop)."""
    global _ledger
    if _ledger is None:
        _ledger = aioredis.Redis.from_url(os.environ["LEDGER_URL"], decode_responses=True)
    return _ledger


def ledger_key(tag: str, what: str) -> str:
    """A key of the chaos ledger of one scenario run."""
    return f"chaos:{tag}:{what}"


@registry.handler("work")
async def work(job: Job) -> dict[str, Any]:
    """Record the start, hold the slot for ``ms`` milliseconds, count the completed run."""
    tag = job.payload["tag"]
    ledger = _aledger()
    async with ledger.pipeline(transaction=False) as pipe:
        pipe.hsetnx(ledger_key(tag, "first"), job.id, repr(time.time()))
        pipe.hset(ledger_key(tag, "owner"), job.id, os.getpid())
        pipe.hincrby(ledger_key(tag, "starts"), job.id, 1)
        await pipe.execute()
    ms = float(job.payload.get("ms", 0))
    if ms:
        await asyncio.sleep(ms / 1000)
    block_ms = float(job.payload.get("block_ms", 0))
    if block_ms:
        # The bug these tests hunt: blocking the event loop inside ``async def``.
        time.sleep(block_ms / 1000)
    await ledger.hincrby(ledger_key(tag, "runs"), job.id, 1)
    return {"n": job.payload.get("n"), "pid": os.getpid()}


@registry.handler("echo")
async def echo(job: Job) -> Any:
    """Return the payload untouched (and say which Python type it arrived as)."""
    return {"type": type(job.payload).__name__, "payload": job.payload}


@registry.handler("big_result")
async def big_result(job: Job) -> str:
    """Return a string of ``bytes`` characters (above MAX_RESULT_BYTES on purpose)."""
    return "x" * int(job.payload["bytes"])


@registry.handler("interrupt")
async def interrupt(job: Job) -> None:
    raise KeyboardInterrupt("handler pressed ctrl-c")


@registry.handler("sync_interrupt")
def sync_interrupt(job: Job) -> None:
    raise KeyboardInterrupt("sync handler pressed ctrl-c")


@registry.handler("oom")
async def oom(job: Job) -> None:
    raise MemoryError("handler ran out of memory")


@registry.handler("sync_oom")
def sync_oom(job: Job) -> None:
    raise MemoryError("sync handler ran out of memory")


@registry.handler("nap")
async def nap(job: Job) -> str:
    """Hold a slot for ``seconds`` without touching any Redis (for ACL and drain tests)."""
    await asyncio.sleep(float(job.payload.get("seconds", 0.1)))
    return "rested"


@registry.handler("slow_sync")
def slow_sync(job: Job) -> str:
    """A thread-pool handler that holds its slot (for drain and ACL tests)."""
    time.sleep(float(job.payload.get("seconds", 0.1)))
    return "done"


# -- workflows (tests.chaos.kill_workflows) ---------------------------------------------------


@registry.handler("wf_member")
async def wf_member(job: Job) -> int:
    """A chord member: hold the slot ``ms``, count the completed run, return ``i``."""
    tag = job.payload["tag"]
    await asyncio.sleep(float(job.payload.get("ms", 0)) / 1000)
    await _aledger().hincrby(ledger_key(tag, "runs"), job.id, 1)
    return int(job.payload["i"])


@registry.handler("wf_callback")
async def wf_callback(job: Job) -> dict[str, Any]:
    """A chord callback: count its starts and record what it was given."""
    tag = job.payload["tag"]
    ledger = _aledger()
    await ledger.hincrby(ledger_key(tag, "callback"), "starts", 1)
    results = job.parent_results
    ok = results == list(range(int(job.payload["n"])))
    await ledger.hset(ledger_key(tag, "callback"), mapping={"count": len(results), "ok": int(ok)})
    await ledger.hincrby(ledger_key(tag, "callback"), "runs", 1)
    return {"count": len(results), "sum": sum(results)}


@registry.handler("wf_step")
async def wf_step(job: Job) -> int:
    """A chain step ``i``: log its start with what it received, hold ``ms``, return ``i``."""
    tag, i = job.payload["tag"], int(job.payload["i"])
    ledger = _aledger()
    await ledger.rpush(ledger_key(tag, "order"), f"{i}:{job.parent_results}")
    await asyncio.sleep(float(job.payload.get("ms", 0)) / 1000)
    await ledger.hincrby(ledger_key(tag, "runs"), job.id, 1)
    return i
