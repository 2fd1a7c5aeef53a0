"""The stored records, written and read in one place: the job record and the result record.

A job record is written once, at submit, and never rewritten (``bananas.models``
explains why); a result record is written when a job finishes. Both are JSON, built
here by one function each; the Lua scripts that write a result themselves (reap,
dead-letter, cancel) write the same fields (see ``scripts/_prelude.lua``). Decoding
merges a record with the live state kept beside it in Redis.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from bananas.models import SCHEMA_VERSION, Job, JobStatus, Priority

__all__ = [
    "SCHEMA_VERSION",
    "canonical_hash",
    "decode_job",
    "encode",
    "iso",
    "job_record",
    "result_record",
]


def iso(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC text."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def encode(value: Any) -> str:
    """Encode a JSON value (pydantic models and dataclasses allowed); raises TypeError."""
    return orjson.dumps(value, default=_json_default).decode()


def canonical_hash(value: Any) -> str:
    """A SHA-256 of a JSON value's canonical encoding (sorted keys): equal values, equal hash.

    Raises TypeError for a value that is not JSON.
    """
    data = orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


#: A record longer than this is not copied next to its result for the result's TTL: a
#: stand-in without the payload is kept instead (a 50 MB payload kept a 58.7 MB copy
#: for an hour). ``get_job`` of such a finished job shows ``payload`` None.
MAX_KEPT_RECORD_BYTES = 64 * 1024


def kept_record(record: str) -> str:
    """What to keep with a result for ``record``: '' (the record itself) when it is
    small, else the record with its payload replaced by null (or '' when the record
    does not parse: the stored one is then kept, as it is unreadable anyway)."""
    if len(record) <= MAX_KEPT_RECORD_BYTES:
        return ""
    try:
        data = orjson.loads(record)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    data["payload"] = None
    return orjson.dumps(data).decode()


def job_record(
    *,
    job_id: str,
    name: str,
    description: str,
    payload: str,
    priority: Priority,
    routing_key: str,
    created: float,
    due: float | None,
    max_retries: int,
    timeout: float | None,
    success_ttl: float,
    failure_ttl: float,
    group: str | None = None,
) -> str:
    """The stored job record (a :class:`bananas.Job` as JSON, version :data:`SCHEMA_VERSION`).

    ``payload`` is already-encoded JSON (see :func:`encode`); ``created`` and ``due``
    are epoch seconds, ``due`` None for a job that is ready at once.
    """
    created_at = datetime.fromtimestamp(created, UTC)
    record = {
        "id": job_id,
        "name": name,
        "description": description,
        "payload": orjson.Fragment(payload),
        "priority": priority.value,
        "routing_key": routing_key,
        "created_at": created_at,
        "updated_at": created_at,
        "scheduled_for": None if due is None else datetime.fromtimestamp(due, UTC),
        "max_retries": max_retries,
        "timeout": timeout,
        "success_ttl": success_ttl,
        "failure_ttl": failure_ttl,
        "v": SCHEMA_VERSION,
    }
    if group is not None:  # only grouped records carry it (promote and reap look for it)
        record["group"] = group
    return orjson.dumps(record).decode()


def result_record(
    job_id: str,
    status: JobStatus,
    error: str,
    duration: float,
    completed: float,
    result: Any = None,
) -> str:
    """The stored result record (a :class:`bananas.JobResult` as JSON).

    ``completed`` is epoch seconds; ``result`` is a JSON value or an
    ``orjson.Fragment`` of encoded JSON.
    """
    record = {
        "job_id": job_id,
        "status": status.value,
        "result": result,
        "error": error,
        "completed_at": datetime.fromtimestamp(completed, UTC),
        "duration": duration,
    }
    return orjson.dumps(record).decode()


def decode_job(
    record: str, *, attempts: int = 0, error: str = "", status: JobStatus = JobStatus.PENDING
) -> Job:
    """Build a :class:`Job` from a stored record plus its live state.

    Raises pydantic's ``ValidationError`` (a ``ValueError``) when the record is garbage.
    """
    job = Job.model_validate_json(record)
    job.attempts = attempts
    job.error = error
    job.status = status
    return job
