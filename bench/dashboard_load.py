"""Load check of the dashboard: page times and Redis commands per open live page.

Fills a private Redis with ``--jobs`` ready jobs spread over ``--routes`` routing keys,
serves the dashboard on it (uvicorn, in this process), then:

1. times every page (median of ``--repeat`` GETs, server-side render included), with
   the CPU Redis spent per GET (``INFO cpu``: what would grow with a scan, and what
   the machine's other load inflates least) and the commands the page sent;
2. opens one live page per view (a Server-Sent Events stream) for ``--seconds`` and
   counts, meanwhile, the commands the dashboard *sent* (it talks to Redis through a
   counting TCP proxy, ``tests.support.proxy.CommandCountingProxy``) and the commands
   Redis *executed* (``INFO commandstats``: the calls made inside Lua scripts too;
   ``total_commands_processed`` counts those as well, so it is no round-trip count):
   commands/s per open page;
3. opens ten streams of the overview at once, to show that streams of one view share
   one read per interval.

    python -m bench.dashboard_load --jobs 1000000 --routes 100

The ready pages and the search read r2, which nothing drains. ``--completed`` jobs
of r0 are first fetched and acked (the workers' own ack, with
timings) so that the results page and the percentile charts have data, and
``--in-flight`` jobs of r1 are leased and report progress (``set_progress``) so that
the in-flight page and a running job's page have some. The load average is printed
before and after: the figures are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from tests.support.proxy import CommandCountingProxy

PAGES = (
    "/",
    "/queues",
    "/jobs?routing_key=r2&state=ready",
    "/jobs?routing_key=r2&state=ready&page=40",
    "/workers",
    "/schedules",
    "/audit",
    "/search?q=needle&routing_key=r2&state=ready",
    "/results?routing_key=r0",
    "/results?routing_key=r0&page=100",
    "/jobs?routing_key=r1&state=in_flight",
    "/jobs/{running}?routing_key=r1",
    "/jobs/{running}",
    "/kubernetes",
)
VIEWS = (
    "overview",
    "queues",
    "jobs&routing_key=r2&state=ready",
    "jobs&routing_key=r1&state=in_flight",
    "job&job_id={running}&routing_key=r1",
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


def lease(url: str, count: int) -> list[str]:
    """Lease ``count`` jobs of r1 for an hour (as a worker's fetch does) and report a
    progress for each (as ``job.set_progress`` does); returns their ids."""
    with Client(url, prefix="load") as client:
        broker = client.broker
        leased = client.run(broker.fetch("r1", count, 3_600_000))
        for n, job in enumerate(leased):
            client.run(
                broker.set_progress("r1", job.id, job.attempt, n % 100, f"step {n} of {count}")
            )
    return [job.id for job in leased]


def redis_cpu(redis: PrivateRedis) -> float:
    """Seconds of CPU the Redis process has used (user + system, ``INFO cpu``): what a
    page costs Redis itself, whatever else loads the machine (each INFO adds ~0.05 ms)."""
    cpu = redis.client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


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


def commands(redis: PrivateRedis, proxy: CommandCountingProxy) -> tuple[int, dict[str, int]]:
    """(commands the dashboard sent, calls per command executed, scripts' own included)."""
    return sum(proxy.snapshot().values()), redis.command_calls()


def count_during(
    redis: PrivateRedis,
    proxy: CommandCountingProxy,
    seconds: float,
    streams: list[str],
    base: str,
) -> tuple[float, float, str]:
    """Commands/s while ``streams`` are open: sent by the dashboard, executed by Redis
    (scripts' own calls too), and the 4 most executed."""
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
    top0, calls0 = commands(redis, proxy)
    time.sleep(seconds)
    top1, calls1 = commands(redis, proxy)
    stop.set()
    for t in threads:  # a stream ends at its next event; the server notices the close then
        t.join()
    time.sleep(0.5)
    delta = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v > calls0.get(k, 0)}
    busiest = ", ".join(
        f"{k} {v / seconds:.0f}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])[:4]
    )
    return (top1 - top0) / seconds, sum(delta.values()) / seconds, busiest


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
    parser.add_argument(
        "--in-flight", type=int, default=50, help="jobs of r1 leased, with progress"
    )
    args = parser.parse_args()
    print(f"load average {load_average()} on {os.cpu_count()} cores at the start")
    with tempfile.TemporaryDirectory() as tmp:
        redis = PrivateRedis(Path(tmp))
        redis.start()
        proxy = CommandCountingProxy(redis.port).start()
        try:
            took = fill(redis.url, args.jobs, args.routes)
            print(f"filled {args.jobs} jobs over {args.routes} routing keys in {took:.1f}s")
            took = complete(redis.url, args.completed)
            print(f"acked {args.completed} jobs of r0 in {took:.1f}s")
            running = lease(redis.url, args.in_flight)
            print(f"leased {len(running)} jobs of r1, each with a progress")
            # No Kubernetes credentials here: the page says so and costs Redis nothing.
            settings = DashboardSettings(
                redis_url=proxy.url,
                prefix="load",
                live_interval=args.interval,
                kubeconfig=str(Path(tmp) / "no-kubeconfig"),
            )
            server, port = serve(settings)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as http:
                print("page (median of the GETs; Redis' own CPU per GET; commands sent per GET)")
                for template in PAGES:
                    page = template.format(running=running[0])
                    times = []
                    cpu0, sent0 = redis_cpu(redis), sum(proxy.snapshot().values())
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        assert http.get(page).status_code == 200, page
                        times.append(time.perf_counter() - t0)
                    cpu = (redis_cpu(redis) - cpu0) / args.repeat
                    sent = (sum(proxy.snapshot().values()) - sent0) / args.repeat
                    print(
                        f"  {page[:56]:<56} {statistics.median(times) * 1000:7.1f} ms"
                        f" {cpu * 1000:7.2f} ms {sent:6.0f}"
                    )
            idle = count_during(redis, proxy, args.seconds, [], base)
            print(f"idle baseline: {idle[0]:.1f} sent, {idle[1]:.1f} executed commands/s")
            print("commands/s per open live page: sent by the dashboard, executed by Redis")
            for template in VIEWS:
                view = template.format(running=running[0])
                sent, executed, busiest = count_during(
                    redis, proxy, args.seconds, [f"/api/stream?view={view}"], base
                )
                print(f"  {view[:44]:<44} {sent:6.1f} {executed:7.1f}   ({busiest})")
            sent, executed, _ = count_during(
                redis, proxy, args.seconds, ["/api/stream?view=overview"] * 10, base
            )
            print(f"ten open overview pages: {sent:.1f} sent, {executed:.1f} executed, in all")
            server.should_exit = True
        finally:
            proxy.close()
            redis.stop()
    print(f"load average {load_average()} at the end")


if __name__ == "__main__":
    main()
