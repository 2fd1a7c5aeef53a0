"""Logging set-up: text for people, one JSON object per line for machines (LOG_FORMAT=json).

Records may carry ``job_id``, ``job_name`` and ``routing_key`` (pass them in
``extra=``); the JSON formatter puts them at the top level.

Per-job lines (started, completed with its duration, failed with its attempt) go to
the logger ``bananas.jobs`` at INFO. It is held at WARNING unless ``LOG_JOBS`` is on
(or an application lowers it), because a line per job is a cost on the hot path.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

_EXTRA = ("job_id", "job_name", "routing_key", "worker_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


#: The logger of the per-job lines.
JOBS_LOGGER = "bananas.jobs"


def configure_logging(level: str = "INFO", fmt: str = "text", *, log_jobs: bool = False) -> None:
    """Send the root logger to stderr in ``fmt`` (``text`` or ``json``) at ``level``; the
    per-job lines of ``bananas.jobs`` only with ``log_jobs``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger(JOBS_LOGGER).setLevel(logging.INFO if log_jobs else logging.WARNING)
