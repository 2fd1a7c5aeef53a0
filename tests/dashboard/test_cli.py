"""``bananas dashboard`` as a real process: it serves, signs people in, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


def test_the_command_serves_until_sigterm(single_redis: RedisServer, prefix: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "BANANAS_PREFIX": prefix,
        "BANANAS_DASHBOARD_AUTH": "basic",
        "BANANAS_DASHBOARD_USERS": "ada:pw:admin",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bananas.cli",
            "dashboard",
            "--redis-url",
            single_redis.url,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the dashboard exited: {proc.stdout.read().decode()}")  # type: ignore[union-attr]
            try:
                return httpx.get(url + "/healthz").status_code == 200
            except httpx.ConnectError:
                return False

        eventually(healthy, 20, what="the dashboard answering /healthz")
        assert httpx.get(url + "/api/queues").status_code == 401
        assert httpx.get(url + "/api/me", auth=("ada", "pw")).json()["role"] == "admin"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert "bananas dashboard on http://127.0.0.1" in proc.stdout.read().decode()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
