"""Load check of the dashboard: page times and Redis commands per open live page.

Fills a private Redis with ``--jobs`` ready jobs spread over ``--routes`` routing keys,
serves the dashboard on it (uvicorn, in this process), then:

1. times every page (median of ``--repeat`` GETs, server-side render included);
2. opens one live page per view (a Server-Sent Events stream) for ``--seconds`` and
   counts the commands Redis processed meanwhile (``INFO commandstats``), minus an idle
   baseline of the same length: commands/s per open page;
3. opens ten streams of the overview at once, to show that streams of one view share
   one read per interval.

    python -m bench.dashboard_load --jobs 200000 --routes 100

``--completed`` jobs of r0 are first fetched and acked (the workers' own ack, with
timings) so that the results page and the percentile charts have data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from bananas import Client, JobResult, JobStatus
from bananas.broker import Outcome
from bananas.dashboard import DashboardSettings, create_app
from bananas.timings import tally
from bench.redis_server import PrivateRedis, free_port

PAGES = (
    "/",
    "/queues",
    "/jobs?routing_key=r0&state=ready",
    "/jobs?routing_key=r0&state=ready&page=40",
    "/workers",
    "/schedules",
    "/audit",
    "/search?q=needle&routing_key=r0&state=ready",
    "/results?routing_key=r0",
    "/results?routing_key=r0&page=100",
    "/kubernetes",
)
VIEWS = (
    "overview",
    "queues",
    "jobs&routing_key=r0&state=ready",
    "results&routing_key=r0",
    "workers",
    "schedules",
    "audit",
)


def fill(url: str, jobs: int, routes: int) -> float:
    t0 = time.perf_counter()
    with Client(url, prefix="load") as client:
        per = jobs // routes
        for r in range(routes):
            specs = [
                {
                    "name": "noop",
                    "payload": {"i": i},
                    "routing_key": f"r{r}",
                    "priority": ("high", "normal", "low")[i % 3],
                }
                for i in range(per)
            ]
            client.submit_many(specs)
    return time.perf_counter() - t0


def complete(url: str, count: int, batch: int = 500) -> float:
    """Fetch and ack ``count`` jobs of r0 through the workers' own ack (results, the
    completed index, the timing histograms), so the results page and the percentile
    charts have something to read."""
    t0 = time.perf_counter()
    with Client(url, prefix="load") as client:
        broker = client.broker
        done = 0
        while done < count:
            leased = client.run(broker.fetch("r0", min(batch, count - done), 600_000))
            if not leased:
                break
            outcomes = [
                Outcome(j.id, j.attempt, JobResult(job_id=j.id, status=JobStatus.COMPLETED,
                                                   result={"i": n}).model_dump_json(), 3_600_000)
                for n, j in enumerate(leased)
            ]  # fmt: skip
            spec = tally((0.001 * (1 + n % 50), 0.5 * (1 + n % 7)) for n in range(len(leased)))
            client.run(broker.ack("r0", outcomes, spec))
            done += len(leased)
    return time.perf_counter() - t0


def serve(settings: DashboardSettings) -> tuple[uvicorn.Server, int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def commands(redis: PrivateRedis) -> tuple[int, dict[str, int]]:
    """(top-level commands processed, calls per command including those made by scripts)."""
    processed = int(redis.client.info("stats")["total_commands_processed"])
    return processed, redis.command_calls()


def count_during(
    redis: PrivateRedis, seconds: float, streams: list[str], base: str
) -> tuple[float, float, str]:
    """Commands/s while ``streams`` are open: top level, all (scripts' own calls too), top 4."""
    stop = threading.Event()

    def listen(path: str) -> None:
        with httpx.Client(base_url=base, timeout=None) as http, http.stream("GET", path) as r:
            for _ in r.iter_lines():
                if stop.is_set():
                    return

    threads = [threading.Thread(target=listen, args=(p,), daemon=True) for p in streams]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let every stream send its first update before counting
    top0, calls0 = commands(redis)
    time.sleep(seconds)
    top1, calls1 = commands(redis)
    stop.set()
    for t in threads:  # a stream ends at its next event; the server notices the close then
        t.join()
    time.sleep(0.5)
    delta = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v > calls0.get(k, 0)}
    busiest = ", ".join(
        f"{k} {v / seconds:.0f}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])[:4]
    )
    # 2 INFO calls of ours per measurement are in ``top``; none in ``delta``.
    return (top1 - top0 - 2) / seconds, sum(delta.values()) / seconds, busiest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument(
        "--completed", type=int, default=10_000, help="jobs of r0 acked first (results page)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = PrivateRedis(Path(tmp))
        redis.start()
        try:
            took = fill(redis.url, args.jobs, args.routes)
            print(f"filled {args.jobs} jobs over {args.routes} routing keys in {took:.1f}s")
            took = complete(redis.url, args.completed)
            print(f"acked {args.completed} jobs of r0 in {took:.1f}s")
            # No Kubernetes credentials here: the page says so and costs Redis nothing.
            settings = DashboardSettings(
                redis_url=redis.url,
                prefix="load",
                live_interval=args.interval,
                kubeconfig=str(Path(tmp) / "no-kubeconfig"),
            )
            server, port = serve(settings)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as http:
                for page in PAGES:
                    times = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        assert http.get(page).status_code == 200, page
                        times.append(time.perf_counter() - t0)
                    print(f"page {page:<58} median {statistics.median(times) * 1000:7.1f} ms")
            idle = count_during(redis, args.seconds, [], base)
            print(f"idle baseline: {idle[0]:.1f} commands/s")
            print("commands/s per open live page: top level (round trips), all (with scripts' own)")
            for view in VIEWS:
                top, everything, busiest = count_during(
                    redis, args.seconds, [f"/api/stream?view={view}"], base
                )
                print(f"  {view:<36} {top:6.1f} {everything:7.1f}   ({busiest})")
            top, everything, _ = count_during(
                redis, args.seconds, ["/api/stream?view=overview"] * 10, base
            )
            print(f"ten open overview pages: {top:.1f} top-level, {everything:.1f} all, in all")
            server.should_exit = True
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
