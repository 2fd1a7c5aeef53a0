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
