"""The simulated fleet: build it, measure it, report it (see the package docstring)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from bananas import AsyncClient
from bananas.operator.cronschedule import schedule_id
from bananas.operator.testing import apply_crds
from tests.e2e.controlplane import ControlPlane, find_binaries
from tests.e2e.podtier import PodTier
from tests.support.ports import free_port
from tests.support.servers import RedisServer, available_binaries

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "bananas.dev", "v1alpha1"
#: An image nobody runs: kwok parks the pods in ErrImagePull.
IMAGE = "bench.invalid/none:1"
HOME = "bench-system"
LEASE = "bananas-operator"
#: Redis databases a server offers by default.
DATABASES = 16
WORKER_SELECTOR = "app.kubernetes.io/component=worker"
MANAGED = "app.kubernetes.io/managed-by=bananas-operator"
COMPONENT = "app.kubernetes.io/component"


@dataclass(frozen=True)
class FleetConfig:
    """The size of the fleet and of each phase."""

    pools: int = 1000
    namespaces: int = 50
    urls: int = 100
    #: Redis servers; each serves urls / servers databases.
    servers: int = 8
    poll_interval: int = 15
    #: Seconds of the baseline and of the steady-state window.
    window: float = 120.0
    #: Share of the pools that get a burst of jobs.
    burst_share: float = 0.1
    #: Jobs per burst pool (at one job per replica: the new replica count).
    jobs: int = 3
    #: Operator processes; more than one runs them with leader election.
    replicas: int = 2
    #: Redis URLs whose scheduler runs as a real ``bananas scheduler`` process (the
    #: rest are Deployments nobody runs); one CronSchedule of each fires every minute.
    schedulers: int = 10
    #: Minute boundaries (cron slots) the scheduler window spans.
    cron_slots: int = 2
    #: Checkout whose ``bananas`` package the operator runs.
    code: Path = REPO_ROOT
    label: str = "this tree"

    def url_of(self, pool: int) -> int:
        return pool % self.urls

    def namespace_of(self, pool: int) -> str:
        return f"fleet-{pool % self.namespaces:03d}"


SMOKE = FleetConfig(
    pools=20,
    namespaces=5,
    urls=4,
    servers=2,
    poll_interval=5,
    window=15,
    schedulers=2,
    cron_slots=1,
)


@dataclass
class Report:
    """What one run measured."""

    config: dict[str, Any]
    baseline_requests_per_s: float = 0.0
    requests_per_s: float = 0.0
    requests_by_kind: dict[str, float] = field(default_factory=dict)
    etcd_writes_per_s: float = 0.0
    baseline_etcd_writes_per_s: float = 0.0
    redis_commands_per_s: float = 0.0
    redis_by_command: dict[str, float] = field(default_factory=dict)
    operator_cpu_percent: float = 0.0
    operator_rss_mb: float = 0.0
    standby_cpu_percent: float | None = None
    settle_seconds: float = 0.0
    burst_p50: float | None = None
    burst_p99: float | None = None
    burst_max: float | None = None
    burst_missed: int = 0
    failover_seconds: float | None = None
    #: API requests by "VERB resource" from the leader's kill to the end of the failover.
    failover_requests: dict[str, float] = field(default_factory=dict)
    #: Redis commands/s of the real scheduler processes (``cfg.schedulers`` of them).
    scheduler_commands_per_s: float | None = None
    scheduler_by_command: dict[str, float] = field(default_factory=dict)
    #: CronSchedules the sampled Redis URLs hold (what those schedulers served).
    scheduler_schedules: int = 0
    #: Seconds from a cron slot to its job being queued, over the minutely schedules.
    cron_lateness: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- the apiserver's own metrics ------------------------------------------------------


class ApiMetrics:
    """Scrapes ``/metrics`` of the apiserver with the admin token."""

    def __init__(self, plane: ControlPlane) -> None:
        kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
        self.token = kubeconfig["users"][0]["user"]["token"]
        self.url = f"{plane.server}/metrics"
        self.context = ssl.create_default_context(cafile=str(plane.ca_cert))

    def scrape(self) -> tuple[Counter[str], Counter[str]]:
        """Requests by "VERB resource" and etcd requests by operation, as counters."""
        request = urllib.request.Request(
            self.url, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
            text = response.read().decode()
        requests: Counter[str] = Counter()
        etcd: Counter[str] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "apiserver_request_total":
                    labels = sample.labels
                    resource = labels.get("resource") or "-"
                    if labels.get("subresource"):
                        resource += "/" + labels["subresource"]
                    requests[f"{labels.get('verb')} {resource}"] += sample.value
                elif sample.name == "etcd_requests_total":
                    etcd[sample.labels.get("operation", "?")] += sample.value
        return requests, etcd


#: etcd operations that write.
ETCD_WRITES = ("create", "update", "delete", "GuaranteedUpdate")


def per_second(before: Counter[str], after: Counter[str], seconds: float) -> dict[str, float]:
    return {k: (after[k] - before[k]) / seconds for k in after if after[k] > before[k]}


# -- Redis --------------------------------------------------------------------------------


def command_calls(servers: list[RedisServer]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for server in servers:
        with server.client() as c:
            for name, stats in c.info("commandstats").items():
                calls[name.removeprefix("cmdstat_")] += int(stats["calls"])
    # The bench's own INFO calls are not the operator's.
    calls.pop("info", None)
    return calls


def commands_of(servers: list[RedisServer], pids: set[int], seconds: float) -> Counter[str]:
    """The commands the processes ``pids`` send to ``servers`` over ``seconds``.

    Each server's ``MONITOR`` names the client address of every command; ``ss`` names
    the process of each local socket. A connection opened after the last look at
    ``ss`` is looked up again when its first command arrives.
    """
    counted: Counter[str] = Counter()
    lock = threading.Lock()
    done = threading.Event()
    others: set[str] = set()  # addresses known not to be the processes'

    def watch(server: RedisServer) -> None:
        ours = sockets_of(pids)
        with server.client() as conn, conn.monitor() as monitor:
            while not done.is_set():
                command = monitor.next_command()
                address = (
                    str(command.get("client_address", ""))
                    + ":"
                    + str(command.get("client_port", ""))
                )
                if address not in ours and address not in others:
                    ours = sockets_of(pids)
                    if address not in ours:
                        others.add(address)
                if address in ours:
                    name = str(command.get("command", "")).split(" ", 1)[0].lower()
                    with lock:
                        counted[name] += 1

    threads = [threading.Thread(target=watch, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    done.set()
    for server in servers:  # a command each, so no MONITOR waits for one for ever
        with server.client() as conn:
            conn.ping()
    for thread in threads:
        thread.join()
    return counted


def sockets_of(pids: set[int]) -> set[str]:
    """The local ``address:port`` of every TCP socket the processes ``pids`` hold."""
    listing = subprocess.run(
        ["ss", "-Htnp"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found: set[str] = set()
    for line in listing:
        fields = line.split()
        if len(fields) >= 6 and any(f"pid={pid}," in fields[5] for pid in pids):
            found.add(fields[3])
    return found


# -- the operator processes ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Operator:
    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int


class Operators:
    """Start and stop the operator processes of a run."""

    def __init__(self, cfg: FleetConfig, plane: ControlPlane, workdir: Path) -> None:
        self.cfg, self.plane, self.workdir = cfg, plane, workdir
        self.started: list[Operator] = []

    def start(self, name: str) -> Operator:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(self.cfg.code),
            "KUBECONFIG": str(self.plane.kubeconfig),
            "METRICS_PORT": str(port),
            "LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
            "SCHEDULER_IMAGE": IMAGE,
            "RETRY_DELAY": "5",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "POD_NAMESPACE": HOME,
            "POD_NAME": name,
            "LEADER_ELECTION": "true" if self.cfg.replicas > 1 else "false",
        }
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bananas.operator"],
            env=env,
            cwd=self.cfg.code,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        op = Operator(name, process, port)
        self.started.append(op)
        return op

    def stop_all(self) -> None:
        for op in self.started:
            if op.process.poll() is None:
                op.process.send_signal(signal.SIGTERM)
        for op in self.started:
            try:
                op.process.wait(30)
            except subprocess.TimeoutExpired:
                op.process.kill()
                op.process.wait()


# -- building the fleet ----------------------------------------------------------------


async def bounded(calls: list[Callable[[], Awaitable[Any]]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            try:
                await call()
            except ApiException as exc:
                if exc.status != 409:
                    raise

    await asyncio.gather(*(run(c) for c in calls))


def pool_body(cfg: FleetConfig, i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": f"pool-{i:04d}"},
        "spec": {
            "image": IMAGE,
            "app": "app.tasks",
            "routingKeys": [f"fleet-{i:04d}"],
            "redis": {"secretName": f"redis-{cfg.url_of(i):03d}"},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 10,
                "targetJobsPerReplica": 1,
                "cooldownSeconds": 3600,
                "pollInterval": cfg.poll_interval,
                "scaleUp": {"stabilizationWindowSeconds": 0},
            },
        },
    }


def cron_body(cfg: FleetConfig, i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CronSchedule",
        "metadata": {"name": f"cron-{i:04d}"},
        "spec": {
            "schedule": "0 3 * * *",
            "job": "nightly",
            "routingKey": f"fleet-{i:04d}",
            "redis": {"secretName": f"redis-{cfg.url_of(i):03d}"},
        },
    }


async def build(cfg: FleetConfig, api: client.ApiClient, urls: list[str]) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespaces = sorted({cfg.namespace_of(i) for i in range(cfg.pools)} | {HOME})
    await bounded(
        [
            lambda ns=ns: core.create_namespace(client.V1Namespace(metadata={"name": ns}))
            for ns in namespaces
        ]
    )
    secrets = sorted({(cfg.namespace_of(i), cfg.url_of(i)) for i in range(cfg.pools)})
    await bounded(
        [
            lambda ns=ns, u=u: core.create_namespaced_secret(
                ns,
                client.V1Secret(metadata={"name": f"redis-{u:03d}"}, string_data={"url": urls[u]}),
            )
            for ns, u in secrets
        ]
    )
    calls: list[Callable[[], Awaitable[Any]]] = []
    for i in range(cfg.pools):
        ns = cfg.namespace_of(i)
        calls.append(
            lambda ns=ns, i=i: custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "workerpools", pool_body(cfg, i)
            )
        )
        calls.append(
            lambda ns=ns, i=i: custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "cronschedules", cron_body(cfg, i)
            )
        )
    await bounded(calls)


def _observed(dep: client.V1Deployment) -> bool:
    """The Deployment controller has caught up with the Deployment's spec."""
    observed = dep.status.observed_generation if dep.status else None
    return observed is not None and observed >= (dep.metadata.generation or 0)


async def settled(cfg: FleetConfig, api: client.ApiClient, timeout: float) -> float:
    """Wait until every pool has a Deployment and a status, every schedule a status,
    and the Deployment controller has caught up with every Deployment the operator
    made (else its backlog of ReplicaSets and pods lands in the steady-state window);
    the seconds it took."""
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    started = time.monotonic()
    with_status = deployments = lagging = 0
    while True:
        try:
            with_status = 0
            for plural in ("workerpools", "cronschedules"):
                listed = await custom.list_cluster_custom_object(GROUP, VERSION, plural)
                items = listed["items"]
                with_status += sum(1 for p in items if (p.get("status") or {}).get("conditions"))
            deps = await apps.list_deployment_for_all_namespaces(label_selector=MANAGED)
            deployments = sum(1 for d in deps.items if d.metadata.labels.get(COMPONENT) == "worker")
            lagging = sum(1 for d in deps.items if not _observed(d))
        except ApiException as exc:
            if exc.status < 500:  # a busy apiserver answers 504: ask again
                raise
        if with_status >= 2 * cfg.pools and deployments >= cfg.pools and not lagging:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(
                f"{with_status}/{2 * cfg.pools} pools and schedules with a status,"
                f" {deployments} Deployments,"
                f" {lagging} not yet observed by their controller"
            )
        # Each check lists every pool and Deployment: at 1,000 pools, every 2 s would
        # load the API server more than the operator does.
        await asyncio.sleep(max(2.0, cfg.pools / 100))


# -- bursts ---------------------------------------------------------------------------------


async def burst(
    cfg: FleetConfig,
    api: client.ApiClient,
    urls: list[str],
    pools: list[int],
    timeout: float,
    origin: float | None = None,
) -> tuple[list[float], int]:
    """Submit ``cfg.jobs`` jobs to each pool at once; seconds until each one's Deployment
    asks for ``cfg.jobs`` replicas (from its submit, or from ``origin``), and how many
    never did within ``timeout``."""
    apps = client.AppsV1Api(api)
    listed = await apps.list_deployment_for_all_namespaces(label_selector=WORKER_SELECTOR)
    version = listed.metadata.resource_version
    wanted = {(cfg.namespace_of(i), f"pool-{i:04d}") for i in pools}
    reached: dict[tuple[str, str], float] = {}
    submitted: dict[tuple[str, str], float] = {}

    async def submit(i: int) -> None:
        async with AsyncClient(urls[cfg.url_of(i)]) as c:
            await c.submit_many(
                [{"name": "work", "routing_key": f"fleet-{i:04d}"} for _ in range(cfg.jobs)]
            )
        submitted[(cfg.namespace_of(i), f"pool-{i:04d}")] = time.monotonic()

    async def follow() -> None:
        stream = watch.Watch()
        async for event in stream.stream(
            apps.list_deployment_for_all_namespaces,
            label_selector=WORKER_SELECTOR,
            resource_version=version,
            timeout_seconds=int(timeout),
        ):
            dep = event["object"]
            key = (dep.metadata.namespace, dep.metadata.name)
            if key in wanted and key not in reached and (dep.spec.replicas or 0) >= cfg.jobs:
                reached[key] = time.monotonic()
                if len(reached) == len(wanted):
                    stream.stop()

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(submit(i) for i in pools))
    with suppress(TimeoutError):
        await asyncio.wait_for(follower, timeout)
    delays = sorted(
        reached[k] - (submitted[k] if origin is None else origin) for k in reached if k in submitted
    )
    return delays, len(wanted) - len(reached)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def lease_holder(api: client.ApiClient) -> str | None:
    try:
        lease = await client.CoordinationV1Api(api).read_namespaced_lease(LEASE, HOME)
    except ApiException:
        return None
    holder: str | None = lease.spec.holder_identity
    return holder


# -- one run -------------------------------------------------------------------------------


@contextmanager
def redis_servers(cfg: FleetConfig) -> Iterator[tuple[list[RedisServer], list[str]]]:
    binaries = available_binaries()
    binary = binaries.get("redis") or binaries.get("valkey")
    if binary is None:
        raise RuntimeError("no redis-server or valkey-server")
    per_server = -(-cfg.urls // cfg.servers)
    if per_server > DATABASES:
        raise ValueError(f"{cfg.urls} URLs need at least {-(-cfg.urls // DATABASES)} servers")
    servers = [RedisServer(binary).start() for _ in range(cfg.servers)]
    try:
        urls = [f"{servers[u % cfg.servers].url}/{u // cfg.servers}" for u in range(cfg.urls)]
        yield servers, urls
    finally:
        for server in servers:
            server.cleanup()


async def measure(cfg: FleetConfig, plane: ControlPlane, workdir: Path) -> Report:
    report = Report(config={k: str(v) for k, v in asdict(cfg).items()})
    api = await config.new_client_from_config(config_file=str(plane.kubeconfig))
    operators = Operators(cfg, plane, workdir)
    metrics = ApiMetrics(plane)
    try:
        with redis_servers(cfg) as (servers, urls):
            await apply_crds(api, cfg.code / "crds")
            await build(cfg, api, urls)
            await _baseline(cfg, metrics, report)
            first = operators.start("op-0")
            standby = operators.start("op-1") if cfg.replicas > 1 else None
            report.settle_seconds = await settled(cfg, api, timeout=120 + cfg.pools * 2.0)
            await asyncio.sleep(2 * cfg.poll_interval)  # every pool past its first polls
            leader = await _leader(api, operators, first)
            other = standby if leader is first else first
            await _steady(cfg, metrics, servers, leader, other, report)
            await _burst(cfg, api, urls, report)
            await _schedulers(cfg, api, urls, servers, workdir, report)
            if standby is not None:
                # The one leading now: a term may have changed hands since the steady state.
                leader = await _leader(api, operators, first)
                await _failover(cfg, api, metrics, urls, leader, report)
    finally:
        operators.stop_all()
        await api.close()
    return report


async def _leader(api: client.ApiClient, operators: Operators, first: Operator) -> Operator:
    if len(operators.started) == 1:
        return first
    holder = await lease_holder(api)
    return next((op for op in operators.started if op.name == holder), first)


async def _baseline(cfg: FleetConfig, metrics: ApiMetrics, report: Report) -> None:
    before, etcd_before = metrics.scrape()
    await asyncio.sleep(cfg.window)
    after, etcd_after = metrics.scrape()
    report.baseline_requests_per_s = sum(per_second(before, after, cfg.window).values())
    writes = per_second(etcd_before, etcd_after, cfg.window)
    report.baseline_etcd_writes_per_s = sum(writes.get(op, 0.0) for op in ETCD_WRITES)


async def _steady(
    cfg: FleetConfig,
    metrics: ApiMetrics,
    servers: list[RedisServer],
    leader: Operator,
    other: Operator | None,
    report: Report,
) -> None:
    before, etcd_before = metrics.scrape()
    calls_before = command_calls(servers)
    cpu_before = cpu_seconds(leader.process.pid)
    standby_before = cpu_seconds(other.process.pid) if other else 0.0
    started = time.monotonic()
    await asyncio.sleep(cfg.window)
    seconds = time.monotonic() - started
    after, etcd_after = metrics.scrape()
    calls_after = command_calls(servers)
    rates = per_second(before, after, seconds)
    report.requests_per_s = sum(rates.values()) - report.baseline_requests_per_s
    report.requests_by_kind = dict(sorted(rates.items(), key=lambda kv: -kv[1])[:12])
    writes = per_second(etcd_before, etcd_after, seconds)
    total_writes = sum(writes.get(op, 0.0) for op in ETCD_WRITES)
    report.etcd_writes_per_s = total_writes - report.baseline_etcd_writes_per_s
    commands = per_second(calls_before, calls_after, seconds)
    report.redis_commands_per_s = sum(commands.values())
    report.redis_by_command = dict(sorted(commands.items(), key=lambda kv: -kv[1])[:8])
    report.operator_cpu_percent = 100 * (cpu_seconds(leader.process.pid) - cpu_before) / seconds
    report.operator_rss_mb = rss_mb(leader.process.pid)
    if other is not None:
        used = cpu_seconds(other.process.pid) - standby_before
        report.standby_cpu_percent = 100 * used / seconds


async def _burst(cfg: FleetConfig, api: client.ApiClient, urls: list[str], report: Report) -> None:
    step = max(1, round(1 / cfg.burst_share))
    chosen = list(range(0, cfg.pools, step))
    delays, missed = await burst(cfg, api, urls, chosen, timeout=cfg.poll_interval * 4 + 30)
    report.burst_missed = missed
    if delays:
        report.burst_p50 = statistics.median(delays)
        report.burst_p99 = percentile(delays, 0.99)
        report.burst_max = max(delays)


async def _schedulers(
    cfg: FleetConfig,
    api: client.ApiClient,
    urls: list[str],
    servers: list[RedisServer],
    workdir: Path,
    report: Report,
) -> None:
    """Real ``bananas scheduler`` processes for the first ``cfg.schedulers`` Redis URLs;
    the Redis commands they add, and how late a minutely CronSchedule's job is queued.

    One CronSchedule per sampled URL is edited to ``* * * * *`` (the edit applies at
    once: issue 12), the schedulers start, and the window runs past ``cfg.cron_slots``
    minute boundaries. Their commands are told from the operator's by the client
    address Redis' ``MONITOR`` shows for each, matched to the scheduler processes'
    sockets (:func:`commands_of`).
    """
    sampled = list(range(min(cfg.schedulers, cfg.urls)))
    if not sampled:
        return
    custom = client.CustomObjectsApi(api)
    for u in sampled:  # CronSchedule u names Redis URL u (url_of(u) == u)
        await custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            cfg.namespace_of(u),
            "cronschedules",
            f"cron-{u:04d}",
            {"spec": {"schedule": "* * * * *"}},
            _content_type="application/merge-patch+json",
        )
    report.scheduler_schedules = sum(1 for i in range(cfg.pools) if cfg.url_of(i) in sampled)
    processes = []
    for u in sampled:
        env = {
            **os.environ,
            "PYTHONPATH": str(cfg.code),
            "REDIS_URL": urls[u],
            "METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
        }
        log = (workdir / f"scheduler-{u:03d}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "bananas.cli", "scheduler"],
                env=env,
                cwd=cfg.code,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    try:
        await asyncio.sleep(10)  # started, elected, schedules loaded
        now = time.time()
        # cfg.cron_slots minute boundaries inside the window, whatever second it starts at.
        window = 60 * cfg.cron_slots - now % 60 + 5
        pids = {p.pid for p in processes}
        counted = await asyncio.to_thread(commands_of, servers, pids, window)
        report.scheduler_commands_per_s = sum(counted.values()) / window
        top = sorted(counted.items(), key=lambda kv: -kv[1])[:8]
        report.scheduler_by_command = {name: n / window for name, n in top}
        report.cron_lateness = await _cron_lateness(cfg, urls, sampled)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if len(report.cron_lateness) < len(sampled):
        report.notes.append(
            f"cron: {len(sampled) - len(report.cron_lateness)} of {len(sampled)} minutely"
            " schedules queued no job in the window"
        )


async def _cron_lateness(cfg: FleetConfig, urls: list[str], sampled: list[int]) -> list[float]:
    """Seconds from each minutely schedule's last slot to its job's creation."""
    late: list[float] = []
    for u in sampled:
        async with AsyncClient(urls[u]) as c:
            state = await c.schedule_status(schedule_id(cfg.namespace_of(u), f"cron-{u:04d}"))
            if state is None or not state.last_job_id or state.last_schedule_time is None:
                continue
            job = await c.get_job(state.last_job_id, f"fleet-{u:04d}")
            if job is not None:
                late.append((job.created_at - state.last_schedule_time).total_seconds())
    return sorted(late)


async def _failover(
    cfg: FleetConfig,
    api: client.ApiClient,
    metrics: ApiMetrics,
    urls: list[str],
    leader: Operator,
    report: Report,
) -> None:
    before, _ = metrics.scrape()
    leader.process.kill()
    leader.process.wait()
    killed = time.monotonic()
    step = max(1, round(1 / cfg.burst_share))
    chosen = list(range(step // 2, cfg.pools, step))[:5]
    delays, missed = await burst(
        cfg, api, urls, chosen, timeout=60 + cfg.poll_interval * 2, origin=killed
    )
    after, _ = metrics.scrape()
    counts = {kind: after[kind] - before[kind] for kind in after if after[kind] > before[kind]}
    report.failover_requests = dict(sorted(counts.items(), key=lambda kv: -kv[1]))  # all kinds
    if delays and not missed:
        report.failover_seconds = max(delays)
    else:
        report.notes.append(f"failover: {missed} of {len(chosen)} pools not scaled within 60 s")


def run(cfg: FleetConfig, workdir: Path) -> Report:
    """Start the control plane, run the fleet, stop everything."""
    plane = ControlPlane(find_binaries(require_pod_tier=True)).start()
    try:
        PodTier(plane).start()
        return asyncio.run(measure(cfg, plane, workdir))
    finally:
        plane.stop()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def table(reports: list[Report]) -> str:
    """The reports side by side, as a Markdown table."""

    def fmt(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    rows = [
        ("operator", [r.config["label"] for r in reports]),
        ("API requests/s (steady, minus baseline)", [fmt(r.requests_per_s) for r in reports]),
        ("etcd writes/s (steady, minus baseline)", [fmt(r.etcd_writes_per_s, 2) for r in reports]),
        ("Redis commands/s (operator)", [fmt(r.redis_commands_per_s) for r in reports]),
        ("operator CPU % (leader)", [fmt(r.operator_cpu_percent) for r in reports]),
        ("operator RSS MB (leader)", [fmt(r.operator_rss_mb, 0) for r in reports]),
        ("standby CPU %", [fmt(r.standby_cpu_percent) for r in reports]),
        ("burst -> new replicas p50 s", [fmt(r.burst_p50, 2) for r in reports]),
        ("burst -> new replicas p99 s", [fmt(r.burst_p99, 2) for r in reports]),
        ("burst pools not scaled", [str(r.burst_missed) for r in reports]),
        ("leader SIGKILL -> pools scaled s", [fmt(r.failover_seconds, 2) for r in reports]),
        (
            "API requests during the failover",
            [f"{sum(r.failover_requests.values()):.0f}" for r in reports],
        ),
        (
            "Redis commands/s (schedulers, sampled)",
            [
                f"{fmt(r.scheduler_commands_per_s)} for {r.config['schedulers']} of"
                f" {r.config['urls']} ({r.scheduler_schedules} schedules)"
                for r in reports
            ],
        ),
        ("cron slot -> job queued p50 s", [fmt(_median(r.cron_lateness), 3) for r in reports]),
        ("cron slot -> job queued max s", [fmt(_max(r.cron_lateness), 3) for r in reports]),
        ("all pools reconciled after s", [fmt(r.settle_seconds, 0) for r in reports]),
    ]
    lines = ["| | " + " | ".join(rows[0][1]) + " |", "|---" * (len(reports) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows[1:]]
    return "\n".join(lines)


def with_code(cfg: FleetConfig, code: Path | None, label: str | None) -> FleetConfig:
    if code is None:
        return cfg
    return replace(cfg, code=code.resolve(), label=label or code.name)


def dump(reports: list[Report], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in reports], indent=2) + "\n")


__all__ = ["SMOKE", "FleetConfig", "Report", "dump", "run", "table", "with_code"]
