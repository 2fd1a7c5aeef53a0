"""Logging set-up: text for people, one JSON object per line for machines (LOG_FORMAT=json).

Records may carry the fields of :data:`FIELDS` (pass them in ``extra=``); the JSON
formatter puts them at the top level, so a log pipeline filters on ``job_id`` or
``attempt`` without parsing the message.

While a job runs, the executor sets :data:`current_job` (a ``ContextVar``: it follows
the handler into the tasks it starts and, copied, into the thread a ``def`` handler
runs in). :class:`JobContextFilter`, on the handler :func:`configure_logging`
installs, copies it onto every record logged meanwhile, so a handler's own
``logging.getLogger(__name__).info(...)`` lines carry ``job_id``, ``job_name``,
``routing_key``, ``attempt`` and ``worker_id`` with no code of its own. An
application that sets up logging itself adds the filter to its handler.

Per-job lines (started, completed with its duration, failed with its attempt) go to
the logger ``bananas.jobs`` at INFO. It is held at WARNING unless ``LOG_JOBS`` is on
(or an application lowers it), because a line per job is a cost on the hot path.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

#: The structured fields a record may carry, in the order the JSON formatter writes them.
FIELDS = (
    "job_id",
    "job_name",
    "routing_key",
    "attempt",
    "worker_id",
    "duration_s",
    "error",
)


class JobContext(NamedTuple):
    """The job a slot is running, as its log lines name it (a tuple: one is built per
    job, and a frozen dataclass costs several times as much to build)."""

    job_id: str
    job_name: str
    routing_key: str
    attempt: int
    worker_id: str


#: The job running in this context (None outside a job).
current_job: ContextVar[JobContext | None] = ContextVar("bananas_current_job", default=None)


class JobContextFilter(logging.Filter):
    """Adds the running job's fields (:data:`current_job`) to a record that lacks them.

    Put it on a *handler* (a logger's filters see only that logger's own records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        if job is not None:
            fields = record.__dict__
            fields.setdefault("job_id", job.job_id)
            fields.setdefault("job_name", job.job_name)
            fields.setdefault("routing_key", job.routing_key)
            fields.setdefault("attempt", job.attempt)
            fields.setdefault("worker_id", job.worker_id)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


#: The logger of the per-job lines.
JOBS_LOGGER = "bananas.jobs"


def configure_logging(level: str = "INFO", fmt: str = "text", *, log_jobs: bool = False) -> None:
    """Send the root logger to stderr in ``fmt`` (``text`` or ``json``) at ``level``, with
    the running job's fields on every record (:class:`JobContextFilter`); the per-job
    lines of ``bananas.jobs`` only with ``log_jobs``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger(JOBS_LOGGER).setLevel(logging.INFO if log_jobs else logging.WARNING)
