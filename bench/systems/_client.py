"""Submission loops shared by every Python adapter's ``client`` role.

An adapter supplies a :class:`Client` (its system's way to submit one job, a
batch, a job due later, or one job and wait for its result); this module owns
the loops and the clocks, so that every system is timed by the same code.

All loops are coroutines. An asyncio system's client awaits its library; a
thread-based system's client calls its blocking library inside ``async def``
without yielding, which costs well under a microsecond per call, so one loop
serves both kinds without penalising either.

Modes (``ClientSpec.mode``):

``sequential``  n calls one after the other; each call timed with
                ``perf_counter``; jobs/s over the whole loop.
``bulk``        n jobs in batches of ``batch`` through the bulk API.
``prefill``     n jobs as fast as the system allows (bulk if it has one, else
                50 calls in flight at a time), then ``tail_n`` of ``tail_group``;
                first, if ``limit_key`` is set, the rate limit ``limit_rate`` on
                it; only the elapsed time matters.
``paced``       n jobs at ``rate`` per second, open loop: job k is due at
                start + k/rate; when behind, submit at once. The payload's ``t``
                is read just before each call.
``delayed``     n jobs, job k due at start + lead + k * spacing; ``t`` is the
                due time.
``roundtrip``   n submit-and-wait calls one after the other, each timed.
``chain``       one warm-up chain of 3 steps, then a chain of n steps submitted
                and waited for; steps/s is n over submit-to-result time.
``chord``       a chord of 3 members to warm up, then one of n members and a
                callback, submitted and waited for; members/s likewise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.protocol import ClientSpec
from bench.stats import summarize_ms

Payload = dict[str, Any]

PREFILL_IN_FLIGHT = 50
"""Concurrent submits in ``prefill`` mode for systems without a bulk API."""


class Unsupported(Exception):
    """The system has no API for what the mode needs."""


class Client:
    """One system's way to submit jobs; override what the system supports."""

    bulk = False

    async def submit(self, payload: Payload) -> None:
        """Submit one job for immediate execution."""
        raise NotImplementedError

    async def submit_many(self, payloads: list[Payload]) -> None:
        """Submit a batch through the system's bulk API."""
        raise Unsupported("no bulk API")

    async def submit_at(self, payload: Payload, due: float) -> None:
        """Submit one job to run at wall time ``due``."""
        raise Unsupported("no delayed jobs")

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        """Submit one job and return once its result is available."""
        raise Unsupported("no result API")

    async def run_chain(self, steps: list[Payload], timeout: float) -> None:
        """Submit a chain of these steps and return once its last step's result is in."""
        raise Unsupported("no chain API")

    async def run_chord(self, members: list[Payload], timeout: float) -> None:
        """Submit a chord of these members and one callback; return once it has run."""
        raise Unsupported("no chord API")

    def in_group(self, group: str) -> None:
        """Submit the next jobs in ``group`` (empty: in none)."""
        if group:
            raise Unsupported("no groups")

    async def set_limit(self, key: str, rate: str) -> None:
        """Store a global rate limit (jobs started per interval) on a group or job name."""
        raise Unsupported("no global rate limit")

    async def close(self) -> None:
        """Release connections."""


async def run_client(client: Client, spec: ClientSpec) -> dict[str, Any]:
    """Run ``spec.mode`` with ``client`` and return the ``result`` fields."""
    modes: dict[str, Callable[[Client, ClientSpec], Awaitable[dict[str, Any]]]] = {
        "sequential": _sequential,
        "bulk": _bulk,
        "prefill": _prefill,
        "paced": _paced,
        "delayed": _delayed,
        "roundtrip": _roundtrip,
        "chain": _workflow,
        "chord": _workflow,
    }
    try:
        return await modes[spec.mode](client, spec)
    finally:
        await client.close()


def _payload(i: int, t: float = 0.0) -> Payload:
    return {"i": i, "t": t}


async def _sequential(client: Client, spec: ClientSpec) -> dict[str, Any]:
    for i in range(spec.warmup):
        await client.submit(_payload(-1 - i))
    durations: list[float] = []
    clock = time.perf_counter
    begin = clock()
    for i in range(spec.n):
        t0 = clock()
        await client.submit(_payload(i))
        durations.append(clock() - t0)
    elapsed = clock() - begin
    return {
        "n": spec.n,
        "seconds": elapsed,
        "rate": spec.n / elapsed,
        "call": summarize_ms(durations),
    }


async def _bulk(client: Client, spec: ClientSpec) -> dict[str, Any]:
    if not client.bulk:
        raise Unsupported("no bulk API")
    clock = time.perf_counter
    begin = clock()
    for start in range(0, spec.n, spec.batch):
        stop = min(spec.n, start + spec.batch)
        await client.submit_many([_payload(i) for i in range(start, stop)])
    elapsed = clock() - begin
    return {"n": spec.n, "batch": spec.batch, "seconds": elapsed, "rate": spec.n / elapsed}


async def _prefill(client: Client, spec: ClientSpec) -> dict[str, Any]:
    if spec.limit_key:
        await client.set_limit(spec.limit_key, spec.limit_rate)
    clock = time.perf_counter
    begin = clock()
    await _fill(client, spec, range(spec.n), spec.group)
    first = spec.tail_first_index
    await _fill(client, spec, range(first, first + spec.tail_n), spec.tail_group)
    elapsed = clock() - begin
    return {"n": spec.n + spec.tail_n, "seconds": elapsed, "bulk": client.bulk}


async def _fill(client: Client, spec: ClientSpec, indexes: range, group: str) -> None:
    """Submit the jobs ``indexes`` of ``group`` (empty: none), in batches (bulk API) or
    :data:`PREFILL_IN_FLIGHT` calls in flight at a time."""
    client.in_group(group)
    step = spec.batch if client.bulk else PREFILL_IN_FLIGHT
    for start in range(0, len(indexes), step):
        payloads = [_payload(i) for i in indexes[start : start + step]]
        if client.bulk:
            await client.submit_many(payloads)
        else:
            await asyncio.gather(*(client.submit(p) for p in payloads))


async def _paced(client: Client, spec: ClientSpec) -> dict[str, Any]:
    clock = time.perf_counter
    begin = clock()
    behind = 0.0
    for i in range(spec.n):
        delay = begin + i / spec.rate - clock()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        else:
            behind = max(behind, -delay)
        await client.submit(_payload(i, time.time()))
    elapsed = clock() - begin
    achieved = (spec.n - 1) / elapsed if spec.n > 1 and elapsed > 0 else 0.0
    return {"n": spec.n, "rate": spec.rate, "achieved": achieved, "max_behind_ms": behind * 1e3}


async def _delayed(client: Client, spec: ClientSpec) -> dict[str, Any]:
    start = time.time()
    for i in range(spec.n):
        due = start + spec.lead_s + i * spec.spacing_s
        await client.submit_at(_payload(i, due), due)
    took = time.time() - start
    return {"n": spec.n, "submit_seconds": took, "first_due": start + spec.lead_s}


async def _roundtrip(client: Client, spec: ClientSpec) -> dict[str, Any]:
    for i in range(spec.warmup):
        await asyncio.wait_for(
            client.submit_and_wait(_payload(-1 - i), spec.timeout_s), spec.timeout_s + 1
        )
    durations: list[float] = []
    clock = time.perf_counter
    for i in range(spec.n):
        t0 = clock()
        await asyncio.wait_for(
            client.submit_and_wait(_payload(i), spec.timeout_s), spec.timeout_s + 1
        )
        durations.append(clock() - t0)
    return {"n": spec.n, "rtt": summarize_ms(durations)}


async def _workflow(client: Client, spec: ClientSpec) -> dict[str, Any]:
    run = client.run_chain if spec.mode == "chain" else client.run_chord
    await run([_payload(-1 - i) for i in range(3)], spec.timeout_s)
    clock = time.perf_counter
    begin = clock()
    await run([_payload(i) for i in range(spec.n)], spec.timeout_s)
    elapsed = clock() - begin
    return {"n": spec.n, "seconds": elapsed, "rate": spec.n / elapsed}
