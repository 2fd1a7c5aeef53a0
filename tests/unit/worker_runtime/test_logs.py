"""The JSON log formatter: one object per line with the job's context at the top level."""

from __future__ import annotations

import json
import logging

from bananas.worker_runtime.logs import JsonFormatter


def test_json_lines_carry_job_context() -> None:
    record = logging.LogRecord(
        "bananas.worker",
        logging.WARNING,
        __file__,
        1,
        "job %s dead-lettered: %s",
        ("j1", "boom"),
        None,
    )
    record.job_id, record.job_name, record.routing_key = "j1", "send_email", "email"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "job j1 dead-lettered: boom"
    assert (data["level"], data["job_id"], data["job_name"], data["routing_key"]) == (
        "WARNING",
        "j1",
        "send_email",
        "email",
    )
