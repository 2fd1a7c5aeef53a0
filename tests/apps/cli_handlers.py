"""Handlers for the ``bananas`` command tests: no ledger, just outcomes to look at."""

from __future__ import annotations

import asyncio
from typing import Any

from bananas import Job, PermanentError
from bananas.worker_runtime import Registry

registry = Registry()


@registry.handler("echo")
async def echo(job: Job) -> Any:
    return job.payload


def _explode(payload: Any) -> None:
    raise ValueError(f"kaboom {payload!r}")


@registry.handler("kaboom")
def kaboom(job: Job) -> None:
    _explode(job.payload)


@registry.handler("refuse")
async def refuse(job: Job) -> None:
    raise PermanentError("refused for good")


@registry.handler("nap")
async def nap(job: Job) -> str:
    await asyncio.sleep(float(job.payload["seconds"]))
    return "rested"


@registry.handler("flaky", max_retries=1)  # a per-handler retry budget
def flaky(job: Job) -> None:
    raise RuntimeError("still flaky")


@registry.handler("slow", timeout=0.3)  # a per-handler time limit
async def slow(job: Job) -> str:
    await asyncio.sleep(30)
    return "too late"


registry.cron("0 3 * * *", "echo", id="nightly-echo", timezone="Europe/London")
