"""Scale shapes: one worker on 500 routing keys keeps close to its one-key
throughput and its idle Redis traffic does not grow with the number of keys; an orphan
on any one of the 500 keys is reaped as soon as on one key; 5,000 concurrent
``submit_and_wait`` calls share a bounded number of connections and all get their
result."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from bananas import AsyncClient, Client, JobSpec
from bananas.keys import KeySpace
from bananas.worker_runtime.fetcher import IDLE_BLOCK_SECONDS, SWEEP_EVERY
from bananas.worker_runtime.leases import REAP_IDLE_MIN, REAP_INTERVAL
from tests.apps.chaos_handlers import ledger_key
from tests.chaos.common import Fleet, new_tag, outcome, raw
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

KEYS = 500
JOBS = 3000
#: The window right after the drain (the wake tokens the backlog left are still popped).
IDLE_SECONDS = 3.0
#: The window once the worker is quiet (its wake lists empty): one quiet period of its
#: fetcher, which ends in a paced look at some of its keys (a safety net), so the window
#: holds one such look whichever keys it picks.
QUIET_SECONDS = SWEEP_EVERY * IDLE_BLOCK_SECONDS
#: Idle commands/s on 500 keys may exceed one key's by this factor and a few commands.
IDLE_RATIO = 1.5
IDLE_SLACK = 3.0
#: submit_and_wait round trips timed on the quiet worker, and the slack on their median.
WAKES = 15
WAKE_SLACK = 0.005
#: The key an orphan is left on, and whose wake-up is timed, of the 500.
ORPHAN_KEY = 437
LEASE_S = 2.0
WAITERS = 5000
#: Connections 5,000 waiters may hold at once (the client's pool bound, plus slack for
#: the worker and this test's own connections).
MAX_CONNECTIONS = 200


@pytest.fixture
def queue(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(single_redis.binary).start()
    yield server
    server.cleanup()


def commands_processed(r: redis.Redis) -> int:
    return int(r.info("stats")["total_commands_processed"])


def _quiet(q: redis.Redis, space: KeySpace, keys: list[str]) -> bool:
    """The wake tokens the backlog left are popped, and every key's entry in the due
    index of leases is settled (a lease after its last job)."""
    pipe = q.pipeline(transaction=False)
    for key in keys:
        pipe.llen(space.route(key).wake)
    pipe.zcard(space.due_leases)
    return not any(pipe.execute())


def _commands_per_second(q: redis.Redis, seconds: float) -> float:
    """Commands Redis ran per second over a window (script commands included; the
    test's own INFO is taken out)."""
    before = commands_processed(q)
    time.sleep(seconds)  # the measurement window
    return (commands_processed(q) - before - 1) / seconds


def _wake_latency(client: Client, routing_key: str) -> float:
    """Median seconds of a ``submit_and_wait`` on a quiet worker (the wake-up, the run,
    the ack and the waiter's wake-up)."""
    took = []
    for i in range(WAKES):
        start = time.perf_counter()
        client.submit_and_wait("echo", {"i": i}, routing_key=routing_key, timeout=10)
        took.append(time.perf_counter() - start)
    return sorted(took)[WAKES // 2]


def _drain_rate(
    queue: RedisServer, ledger: RedisServer, keys: list[str]
) -> tuple[float, float, float, float]:
    """Jobs/s one worker drains over ``keys``, idle commands/s right after the drain and
    once the worker is quiet, and the quiet worker's wake-up latency on key #437 (or
    its only key)."""
    tag, prefix = new_tag(), f"keys{new_tag()}"
    space = KeySpace(prefix)
    q = raw(queue)
    env = {"WORKER_ROUTING_KEYS": ",".join(keys), "WORKER_CONCURRENCY": "20"}
    with (
        Fleet(queue.url, ledger.url, prefix, **env) as fleet,
        Client(queue.url, prefix=prefix) as client,
    ):
        specs = [
            JobSpec("work", {"tag": tag, "n": i}, routing_key=keys[i % len(keys)])
            for i in range(JOBS)
        ]
        ids: dict[str, list[str]] = {}
        for spec, job_id in zip(specs, client.submit_many(specs), strict=True):
            ids.setdefault(spec.routing_key, []).append(job_id)
        fleet.spawn()  # after the backlog is stored: the drain alone is timed

        def ran() -> bool:  # (asked of the ledger: the queue's Redis is left to the drain)
            return raw(ledger).hlen(ledger_key(tag, "runs")) >= JOBS

        def done() -> bool:
            pipe = q.pipeline(transaction=False)
            for k in ids:
                pipe.hget(space.route(k).stats, "completed")
            return sum(int(n or 0) for n in pipe.execute()) >= JOBS

        eventually(ran, 120, interval=0.05, what=fleet.logs)
        eventually(done, 30, interval=0.2, what=fleet.logs)
        # From the first job's start to the last's, by the ledger (worker start-up and
        # this test's polling are not counted).
        starts = [float(t) for t in raw(ledger).hvals(ledger_key(tag, "first"))]
        rate = JOBS / (max(starts) - min(starts))
        for key, key_ids in ids.items():
            result = outcome(q, raw(ledger), tag, space.route(key), key_ids)
            assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result
        idle = _commands_per_second(q, IDLE_SECONDS)  # right after the drain
        eventually(lambda: _quiet(q, space, keys), 60, interval=0.5, what=fleet.logs)
        quiet = _commands_per_second(q, QUIET_SECONDS)
        latency = _wake_latency(client, keys[min(ORPHAN_KEY, len(keys) - 1)])
    return rate, idle, quiet, latency


def test_five_hundred_routing_keys_cost_about_what_one_does(
    queue: RedisServer, single_redis: RedisServer
) -> None:
    one_rate, one_idle, one_quiet, one_wake = _drain_rate(queue, single_redis, ["default"])
    many_rate, many_idle, many_quiet, many_wake = _drain_rate(
        queue, single_redis, [f"k{i}" for i in range(KEYS)]
    )
    print(
        f"1 key: {one_rate:.0f} jobs/s, idle {one_idle:.1f} / quiet {one_quiet:.1f} cmd/s, "
        f"wake {one_wake * 1000:.1f} ms | {KEYS} keys: {many_rate:.0f} jobs/s, idle "
        f"{many_idle:.1f} / quiet {many_quiet:.1f} cmd/s, wake {many_wake * 1000:.1f} ms"
    )
    # The bar is half the one-key rate; measured 0.63-1.70x of it on a shared
    # 2-core VM (0.43-1.06x before the due indexes; the drain lasts 2-5 s, so the
    # one-key rate swings with the load), against 0.12x before the woken fetch and the
    # dry-key skip. A third catches a regression to per-key sweeps without failing on
    # noise (docs/reliability.md, "Many routing keys").
    assert many_rate >= one_rate / 3, (one_rate, many_rate)
    # Quiet: the fetcher blocks once for all keys, the reaper and the promoter each ask
    # their due index once a pass and their slow sweeps take a bounded number of looks
    # a second: the traffic of one key, give or take (measured 14.8 against 18.8 cmd/s
    # over 40 s, a quiet fetcher look included; 17.8 against 439 before the indexes).
    assert many_quiet <= IDLE_RATIO * one_quiet + IDLE_SLACK, (one_quiet, many_quiet)
    # Right after the drain each of the 500 wake tokens the backlog left wakes the
    # fetcher for a fetch from its key (6 commands on an empty key), once.
    assert many_idle <= 2 * one_idle + 8 * KEYS / IDLE_SECONDS, (one_idle, many_idle)
    # The bar: a wake-up within twice one key's (a few ms of slack for timer noise).
    assert many_wake <= 2 * one_wake + WAKE_SLACK, (one_wake, many_wake)


def test_an_orphan_on_key_437_of_500_is_reaped_within_a_pass(
    queue: RedisServer, single_redis: RedisServer
) -> None:
    """A worker on 500 keys dies holding a job of key #437; another worker's reaper
    returns it within a reaper pass of its lease's expiry, as it would on one key (it
    does not look at the keys in turn: it asks the due index of leases)."""
    tag, prefix = new_tag(), f"orphan{new_tag()}"
    route = KeySpace(prefix).route(f"k{ORPHAN_KEY}")
    q = raw(queue)
    keys = ",".join(f"k{i}" for i in range(KEYS))
    env = {"WORKER_ROUTING_KEYS": keys, "LEASE_DURATION": f"{LEASE_S}s"}
    with (
        Fleet(queue.url, single_redis.url, prefix, **env) as fleet,
        Client(queue.url, prefix=prefix) as client,
    ):
        doomed = fleet.spawn()
        job_id = client.submit("work", {"tag": tag, "ms": 60_000}, routing_key=route.routing_key)
        first = ledger_key(tag, "first")
        eventually(lambda: raw(single_redis).hexists(first, job_id), 30, what=fleet.logs)
        fleet.spawn()  # the survivor, whose reaper must find the orphan
        doomed.kill()
        deadline = q.zscore(route.leases, job_id)  # renewals stopped with the worker
        assert deadline is not None
        eventually(lambda: q.hget(route.attempts, job_id) == "2", 30, what=fleet.logs)
        seconds, micros = q.time()
        late = (seconds * 1000 + micros // 1000 - deadline) / 1000
    print(f"orphan on key #{ORPHAN_KEY} of {KEYS} delivered again {late:.2f}s after expiry")
    # A pass at the entry's time, at least REAP_INTERVAL after the last: before the due
    # index a reaper looked at 500 keys in turn, each every 5 s.
    assert late <= REAP_INTERVAL + REAP_IDLE_MIN / 2, late


def _peak_connections(r: redis.Redis, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], int(r.info("clients")["connected_clients"]))
        stop.wait(0.05)


def test_five_thousand_waiters_share_connections(
    queue: RedisServer, single_redis: RedisServer
) -> None:
    prefix = f"wait{new_tag()}"
    q = raw(queue)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_connections, args=(q, stop, peak), daemon=True)

    async def wait_all() -> list[object]:
        async with AsyncClient(queue.url, prefix=prefix) as client:
            calls = [client.submit_and_wait("echo", {"n": i}, timeout=90) for i in range(WAITERS)]
            return await asyncio.gather(*calls, return_exceptions=True)

    with Fleet(queue.url, single_redis.url, prefix, WORKER_CONCURRENCY="50") as fleet:
        fleet.spawn()
        sampler.start()
        try:
            results = asyncio.run(wait_all())
        finally:
            stop.set()
            sampler.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    print(f"{WAITERS} waiters: {len(failures)} failed, peak {peak[0]} connections")
    assert not failures, failures[:3]
    assert peak[0] <= MAX_CONNECTIONS, peak[0]
