"""LOG_FORMAT=json from a real worker process: the per-job lines carry their fields
separately, and a handler's own logging calls get the running job's context."""

from __future__ import annotations

import json
from typing import Any

from bananas import Client
from tests.integration.conftest import Spawn


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, f"no JSON lines in: {text[:2000]}"
    return lines


def test_json_lines_carry_the_job_fields(spawn: Spawn, qc: Client, tag: str) -> None:
    worker = spawn(LOG_FORMAT="json", LOG_JOBS="true")
    said = qc.submit_and_wait("chatty", {"test": tag}, timeout=10)
    threaded = qc.submit_and_wait("sync_chatty", {"test": tag}, timeout=10)
    dead = qc.submit_and_wait("permanent", {"test": tag}, timeout=10)
    assert worker.stop() == 0
    lines = json_lines(worker.log())
    ids = {said.job_id, threaded.job_id, dead.job_id}
    worker_ids = {
        line["worker_id"]
        for line in lines
        if line.get("job_id") in ids and not line["logger"].endswith("acker")
    }
    assert len(worker_ids) == 1 and all(worker_ids), worker_ids

    own = [line for line in lines if line["logger"] == "tests.apps.handlers"]
    assert [(o["message"], o["job_id"], o["job_name"], o["attempt"]) for o in own] == [
        (f"handler line of {tag}", said.job_id, "chatty", 1),
        (f"thread line of {tag}", threaded.job_id, "sync_chatty", 1),
    ], "a handler's own lines (async and def) carry the job's context"
    assert all(o["routing_key"] == "default" for o in own)

    jobs = {
        (line["job_id"], line["message"].split()[3]): line
        for line in lines
        if line["logger"] == "bananas.jobs"
    }
    completed = jobs[(said.job_id, "completed")]
    assert isinstance(completed["duration_s"], float) and completed["duration_s"] >= 0
    assert (completed["attempt"], completed["job_name"]) == (1, "chatty")
    assert "error" not in completed
    started = jobs[(said.job_id, "started")]
    assert "duration_s" not in started and started["attempt"] == 1
    failed = jobs[(dead.job_id, "failed")]
    assert failed["error"] == "PermanentError: bad input, do not retry"
    assert failed["attempt"] == 1 and isinstance(failed["duration_s"], float)
    dead_lettered = [
        line
        for line in lines
        if line.get("job_id") == dead.job_id and line["logger"].endswith("acker")
    ]
    assert dead_lettered and dead_lettered[0]["error"] == "PermanentError: bad input, do not retry"
    assert dead_lettered[0]["level"] == "WARNING" and "exception" not in dead_lettered[0]
