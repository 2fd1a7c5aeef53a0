"""Real ``bananas worker`` / ``bananas scheduler`` subprocesses for the tests.

Each process gets its own metrics port and the test's key prefix; ``stop`` sends
SIGTERM and waits for the exit code, ``kill`` sends SIGKILL. Every process is
reaped by the fixture that made it, whatever the test did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.servers import RedisServer

from tests.support.ports import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; returns (status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class WorkerProcess:
    """One worker process of the test handler app."""

    redis_url: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    command: str = "worker"
    app: str = "tests.apps.handlers"
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_path: str = ""

    def start(self, wait_ready: bool = True) -> WorkerProcess:
        self.port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "LEDGER_URL": self.redis_url,
            "BANANAS_PREFIX": self.prefix,
            "BANANAS_APP": self.app,
            "METRICS_PORT": str(self.port),
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "INFO",
            **self.env,
        }
        fd, self.log_path = tempfile.mkstemp(prefix="bananas-worker-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bananas.cli", self.command],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_ready:
            eventually(self.ready, 60, what=lambda: f"worker ready (log: {self.log()})")
        return self

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"worker exited early: {self.log()}")
        try:
            return http_get(self.port, "/readyz")[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text()[-4000:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)


def ledger(single_redis: RedisServer, tag: str) -> list[list[str]]:
    """Rows ``what|job id|name|routing key|pid|attempt`` of the handlers' run ledger."""
    with single_redis.client() as r:
        return [row.split("|") for row in r.lrange(f"ledger:{tag}", 0, -1)]
