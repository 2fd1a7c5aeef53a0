"""The stored records, written and read in one place: the job record and the result record.

A job record is written once, at submit, and never rewritten (``bananas.models``
explains why); a result record is written when a job finishes. Both are JSON, built
here by one function each; the Lua scripts that write a result themselves (reap,
dead-letter, cancel) write the same fields (see ``scripts/_prelude.lua``). Decoding
merges a record with the live state kept beside it in Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from bananas.job_decoder import fast_job
from bananas.models import (
    ATTEMPT_SEPARATOR,
    ERROR_HISTORY_MAX,
    SCHEMA_VERSION,
    TRACEBACK_HEAD,
    Job,
    JobStatus,
    Priority,
)

__all__ = [
    "SCHEMA_VERSION",
    "canonical_hash",
    "decode_job",
    "earlier_errors",
    "encode",
    "iso",
    "job_record",
    "result_record",
    "split_error",
    "with_history",
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
    max_retries_set: bool = True,
    failure_ttl: float,
    group: str | None = None,
    workflow: Mapping[str, Any] | None = None,
    meta: Mapping[str, str] | None = None,
) -> str:
    """The stored job record (a :class:`bananas.Job` as JSON, version :data:`SCHEMA_VERSION`).

    ``payload`` is already-encoded JSON (see :func:`encode`); ``created`` and ``due``
    are epoch seconds, ``due`` None for a job that is ready at once. ``workflow``
    adds the fields of a workflow step (``workflow_id``, ``node``, ``parent_results``,
    ``parent_errors``; see ``bananas.workflow_store.node_job``). ``meta`` (the trace
    context, ``bananas.tracing``) is written only when not empty, so a record without
    it is what it always was.
    """
    created_at = datetime.fromtimestamp(created, UTC)
    record: dict[str, Any] = {
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
        "max_retries_set": max_retries_set,
        "timeout": timeout,
        "success_ttl": success_ttl,
        "failure_ttl": failure_ttl,
        "v": SCHEMA_VERSION,
    }
    if group is not None:  # only grouped records carry it (promote and reap look for it)
        record["group"] = group
    if workflow:
        record.update(workflow)
    if meta:
        record["meta"] = dict(meta)
    return orjson.dumps(record).decode()


#: Epoch seconds from which :func:`utc_text` formats by hand (below: through datetime).
_TEXT_RANGE = (0.0, 253_402_300_799.0)  # 1970 to the end of year 9999


def utc_text(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC text, exactly as orjson writes
    ``datetime.fromtimestamp(ts, UTC)`` (microseconds rounded half to even, as
    ``fromtimestamp`` rounds them, and left out when 0).

    Every result record carries one; the text up to the seconds is kept from the last
    call (one tuple, swapped whole: safe from any thread), so a worker finishing jobs
    within a second builds no ``datetime`` for it.
    """
    if not _TEXT_RANGE[0] <= ts < _TEXT_RANGE[1]:
        return orjson.dumps(datetime.fromtimestamp(ts, UTC)).decode()[1:-1]
    second = int(ts)
    micro = round((ts - second) * 1_000_000)  # (ts - second is exact for a double)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    global _second_text
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, datetime.fromtimestamp(second, UTC).isoformat()[:19])
    return f"{cached[1]}.{micro:06d}+00:00" if micro else f"{cached[1]}+00:00"


#: The last whole second :func:`utc_text` formatted, and its text.
_second_text: tuple[int, str] = (-1, "")


def result_record(
    job_id: str,
    status: JobStatus,
    error: str,
    duration: float,
    completed: float,
    result: Any = None,
    traceback: str = "",
) -> str:
    """The stored result record (a :class:`bananas.JobResult` as JSON).

    ``completed`` is epoch seconds; ``result`` is a JSON value or an
    ``orjson.Fragment`` of encoded JSON; ``traceback`` the failed handler's (bounded).
    """
    record = {
        "job_id": job_id,
        "status": status,  # (orjson writes an enum as its value)
        "result": result,
        "error": error,
        "completed_at": utc_text(completed),
        "duration": duration,
    }
    if traceback:
        record["traceback"] = traceback
    return orjson.dumps(record).decode()


def decode_job(
    record: str,
    *,
    attempts: int = 0,
    error: str = "",
    status: JobStatus = JobStatus.PENDING,
    job_id: str | None = None,
) -> Job:
    """Build a :class:`Job` from a stored record plus its live state.

    ``job_id``, when given, replaces the record's own ``id`` (the id the job was
    leased under). Raises pydantic's ``ValidationError`` (a ``ValueError``) when the
    record is garbage.
    """
    message, trace = split_error(error) if error else ("", "")
    live: dict[str, object] = {
        "attempts": attempts,
        "error": message,
        "traceback": trace,
        "earlier_errors": earlier_errors(error) if error else [],
        "status": status,
    }
    if job_id is not None:
        live["id"] = job_id
    # A record of the plain current shape is built without pydantic (bananas.job_decoder);
    # anything else is validated by pydantic, which accepts it or says why not.
    job = fast_job(record, live)
    if job is not None:
        return job
    job = Job.model_validate_json(record)
    # The live state is set as pydantic's own assignment would (Job has no
    # validate_assignment): into the instance dict, and marked as set. One update
    # instead of several ``__setattr__`` calls, each a trip through pydantic's handler,
    # is a measurable share of a no-op job's CPU (docs/performance.md).
    job.__dict__.update(live)
    job.__pydantic_fields_set__.update(live)
    return job


def split_error(error: str) -> tuple[str, str]:
    """A stored error text as (message, traceback) of its latest attempt: the worker
    keeps a failed handler's traceback after its message, starting at
    :data:`~bananas.models.TRACEBACK_HEAD`, and earlier attempts after
    :data:`~bananas.models.ATTEMPT_SEPARATOR`."""
    error = error.split(ATTEMPT_SEPARATOR, 1)[0]
    at = error.find("\n" + TRACEBACK_HEAD)
    if at < 0:
        return error, ""
    return error[:at], error[at + 1 :]


def earlier_errors(error: str) -> list[str]:
    """The messages of the attempts before the latest one, newest first."""
    return [split_error(e)[0] for e in error.split(ATTEMPT_SEPARATOR)[1:] if e]


def with_history(error: str, previous: str | None) -> str:
    """``error`` (this attempt's) followed by the history stored so far, cut to
    :data:`~bananas.models.ERROR_HISTORY_MAX` characters by dropping the oldest attempts."""
    if not previous:
        return error
    entries = [error, *previous.split(ATTEMPT_SEPARATOR)]
    while len(entries) > 1 and len(ATTEMPT_SEPARATOR.join(entries)) > ERROR_HISTORY_MAX:
        entries.pop()
    return ATTEMPT_SEPARATOR.join(entries)
