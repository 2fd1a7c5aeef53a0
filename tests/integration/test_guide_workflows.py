"""The guide's Workflows chapter runs as written: its handler quotes are verbatim from
``docs/examples/tasks.py`` and its client snippets run against a real worker serving
that module (the same checks ``docs/examples/run_snippets.py`` makes for the whole guide,
here for this chapter only, so it runs with the integration tests)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.processes import ROOT, WorkerProcess
from tests.support.servers import RedisServer, available_binaries

pytestmark = pytest.mark.timeout(180)

GUIDE = ROOT / "docs" / "guide.md"
EXAMPLES = ROOT / "docs" / "examples"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_snippets", EXAMPLES / "run_snippets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("run_snippets", module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _chapter_lines(path: Path, title: str) -> tuple[int, int]:
    lines = path.read_text().splitlines()
    start = lines.index(title) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("## ")) + 1
    return start, end


@pytest.fixture
def guide_redis() -> Iterator[RedisServer]:
    binaries = available_binaries()
    if not binaries:
        pytest.fail("no redis-server or valkey-server found")
    server = RedisServer(binaries.get("redis") or binaries["valkey"]).start()
    yield server
    server.cleanup()


def test_the_workflows_chapter_runs_as_written(guide_redis: RedisServer) -> None:
    runner = _runner()
    path = f"{EXAMPLES}{os.pathsep}{ROOT}"
    worker = WorkerProcess(
        guide_redis.url,
        "bananas",  # the snippets' Client() uses the default prefix
        env={"PYTHONPATH": path, "WORKER_ROUTING_KEYS": runner.ROUTES},
        app="tasks",
    ).start()
    try:
        start, end = _chapter_lines(GUIDE, "## Workflows")
        found = [s for s in runner.snippets(GUIDE) if start <= s.line < end]
        env = {**os.environ, "REDIS_URL": guide_redis.url, "PYTHONPATH": path}
        env.pop("BANANAS_PREFIX", None)
        ran = []
        for snippet in found:
            ok, output = runner.run_one(snippet, env)
            assert ok, f"guide.md:{snippet.line} [{snippet.mode}]\n{output}"
            ran.append((snippet.mode, output))
    finally:
        worker.cleanup()
    modes = [mode for mode, _ in ran]
    assert modes.count("fragment") >= 6 and modes.count("quote") >= 3, modes
    outputs = "\n".join(out for _, out in ran)
    # the printed results match what the snippets' comments promise
    assert "completed {'stored': 8}" in outputs
    assert "{'total': 33, 'failed': 0}" in outputs
    assert "completed {'total': 13, 'failed': 1}" in outputs
    assert "{'profit': 120}" in outputs
