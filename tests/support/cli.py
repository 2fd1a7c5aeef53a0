"""Running the real ``bananas`` command (the installed console script) in tests, and the
fixtures of the CLI tests (a test module imports the ones it uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bananas import Client
from tests.support.processes import ROOT, WorkerProcess
from tests.support.servers import RedisServer


def bananas_command() -> str:
    """The ``bananas`` console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "bananas"
    found = str(beside) if beside.exists() else shutil.which("bananas")
    if not found:
        pytest.fail("the bananas command is not installed: pip install -e .")
    return found


@dataclass
class Cli:
    """``bananas`` against one Redis and one key prefix."""

    redis_url: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
        env.update(REDIS_URL=self.redis_url, BANANAS_PREFIX=self.prefix, PYTHONPATH=str(ROOT))
        env.update(self.env)
        env.update(extra)
        return env

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bananas_command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment(**env),
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [bananas_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(),
            cwd=ROOT,
            **kwargs,  # type: ignore[call-overload]
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run and demand exit 0; returns stdout."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        return done.stdout


def job_ids(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines()[1:-1]]


@pytest.fixture
def cli(single_redis: RedisServer, prefix: str) -> Cli:
    return Cli(single_redis.url, prefix)


@pytest.fixture
def qc(single_redis: RedisServer, prefix: str) -> Iterator[Client]:
    with Client(single_redis.url, prefix=prefix) as c:
        yield c


@pytest.fixture
def worker(single_redis: RedisServer, prefix: str) -> Iterator[WorkerProcess]:
    """A real worker running ``tests.apps.cli_handlers`` on ``default`` and ``gpu``."""
    proc = WorkerProcess(
        single_redis.url,
        prefix,
        app="tests.apps.cli_handlers",
        env={"WORKER_ROUTING_KEYS": "default,gpu", "RETRY_BACKOFF_MAX": "0.2"},
    )
    proc.start()
    yield proc
    proc.cleanup()


def assert_one_line(stderr: str, *needles: str) -> None:
    """One ``bananas: ...`` line naming every needle: no traceback, no pydantic dump."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "pydantic" not in stderr, stderr
    for needle in needles:
        assert needle in lines[0], stderr
