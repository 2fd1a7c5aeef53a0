"""The README's walk-through runs as written: its handler module is quoted verbatim from
``docs/examples/app.py``, its worker command is started as written, and its client and
shell snippets run against that worker (``docs/examples/run_snippets.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT
from tests.support.servers import RedisServer, available_binaries


@pytest.fixture
def throwaway_redis() -> Iterator[RedisServer]:
    binaries = available_binaries()
    if not binaries:
        pytest.fail("no redis-server or valkey-server found")
    server = RedisServer(binaries.get("redis") or binaries["valkey"]).start()
    yield server
    server.cleanup()


@pytest.mark.timeout(240)
def test_the_readme_walk_through_runs_as_written(throwaway_redis: RedisServer) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "<!-- snippet: quote file=app.py -->\n```python\n# app.py\nfrom bananas" in readme
    env = {**os.environ, "REDIS_URL": throwaway_redis.url}
    env.pop("BANANAS_PREFIX", None)
    done = subprocess.run(
        [sys.executable, "docs/examples/run_snippets.py", "--flush", "-v", "README.md"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "0 failure(s)" in out
    assert out.count("ok   README.md") >= 3, out  # the quote, the client and the shell
    # submit_and_wait shows a real result, and every submitted job found its handler.
    assert "completed {'period': 'monthly', 'rows': 42}" in out
    assert "result:   42" in out
