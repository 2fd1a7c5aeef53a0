"""How the ``bananas`` command shows things to a person, and to a script (``--json``).

Human output: times in the local zone with the zone's name, durations as ``14m18s``,
aligned tables with a header, and a job's status in colour when stdout is a terminal
(never when it is a pipe or a file, nor with ``NO_COLOR`` set). ``--json`` prints the
models as JSON instead, with UTC ISO-8601 times, for scripts.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bananas.models import Job, JobResult, JobStatus

_COLOURS = {
    JobStatus.COMPLETED: "32",  # green
    JobStatus.FAILED: "31",  # red
    JobStatus.CANCELLED: "90",  # grey
    JobStatus.PROCESSING: "33",  # yellow
    JobStatus.SCHEDULED: "36",  # cyan
    JobStatus.PENDING: "36",
}


def colour_enabled(stream: Any = None) -> bool:
    """True when ``stream`` (stdout) is a terminal and colour was not turned off."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def status(value: JobStatus, *, colour: bool | None = None) -> str:
    """The status name, coloured when writing to a terminal."""
    if colour is None:
        colour = colour_enabled()
    if not colour:
        return value.value
    return f"\033[{_COLOURS.get(value, '0')}m{value.value}\033[0m"


def duration(seconds: float | None) -> str:
    """Seconds for a person: ``250ms``, ``12.5s``, ``14m18s`` (858), ``2h01m`` (7260)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 0.001:
        return "<1ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def when(moment: datetime | None) -> str:
    """A time in the local zone with its name: ``2026-12-01 22:14:03 UTC``."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    zone = local.strftime("%Z") or local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


def count(n: int) -> str:
    """``2003`` -> ``2,003``."""
    return f"{n:,}"


def first_line(text: str, width: int = 80) -> str:
    """The first line of ``text``, cut to ``width`` characters (for a table cell)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def showing(shown: int, total: int, offset: int) -> str:
    """The footer of a page: ``showing 1-50 of 2,003 (--offset 50 for more)``."""
    if shown == 0:
        return f"showing 0 of {count(total)}"
    first, last = offset + 1, offset + shown
    more = f" (--offset {last} for more)" if last < total else ""
    return f"showing {count(first)}-{count(last)} of {count(total)}{more}"


def table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> str:
    """Columns aligned to their widest cell; the columns in ``right`` are right-aligned.

    The last column is never padded, so a long error text does not push others out.
    """
    data = [list(header), *[list(r) for r in rows]]
    right = set(right)
    widths = [max(len(_plain(r[i])) for r in data) for i in range(len(header))]
    lines = []
    for row in data:
        cells = []
        for i, cell in enumerate(row):
            pad = widths[i] - len(_plain(cell))
            if i == len(row) - 1 and i not in right:
                cells.append(cell)
            else:
                cells.append(" " * pad + cell if i in right else cell + " " * pad)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _plain(text: str) -> str:
    """``text`` without colour escapes (for measuring its width)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\033":
            i = text.find("m", i) + 1 or len(text)
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def as_json(data: Any) -> str:
    """``data`` as indented JSON (models dumped in JSON mode first)."""
    return json.dumps(data, indent=2, default=str, ensure_ascii=False)


def _value(data: Any) -> str:
    text = json.dumps(data, default=str, ensure_ascii=False)
    return text if len(text) <= 400 else text[:400] + f"... ({len(text):,} characters)"


def _fields(pairs: Iterable[tuple[str, str]]) -> str:
    pairs = [(k, v) for k, v in pairs if v != ""]
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs)


def job_view(job: Job, result: JobResult | None = None) -> str:
    """A job as a person reads it: status, attempts, times, error (with traceback), payload."""
    pairs = [
        ("job", job.id),
        ("name", job.name),
        ("status", status(job.status)),
        ("routing key", f"{job.routing_key} ({job.priority.value} priority)"),
        ("attempts", f"{job.attempts} of {job.max_retries + 1}"),
        ("created", when(job.created_at)),
    ]
    if job.scheduled_for is not None:
        pairs.append(("due", when(job.scheduled_for)))
    if job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        pairs.append(("finished", when(job.updated_at)))
    if result is not None:
        pairs.append(("ran for", duration(result.duration)))
    if job.progress is not None:
        info = "" if job.progress_info is None else f" ({_value(job.progress_info)})"
        pairs.append(("progress", f"{job.progress:g}%{info}"))
    if job.timeout is not None:
        pairs.append(("timeout", duration(job.timeout)))
    if job.description:
        pairs.append(("description", job.description))
    pairs.append(("payload", _value(job.payload)))
    if result is not None and result.is_success():
        pairs.append(("result", _value(result.result)))
    error = job.error or (result.error if result else "")
    if error:
        pairs.append(("error", error.splitlines()[0] if "\n" in error else error))
    for n, earlier in enumerate(job.earlier_errors, start=1):
        attempt = job.attempts - n if job.attempts > n else "?"
        pairs.append((f"attempt {attempt}", first_line(earlier, 100)))
    text = _fields(pairs)
    trace = traceback_of(job, result)
    if trace:
        text += "\n\n" + trace
    return text


def traceback_of(job: Job | None, result: JobResult | None) -> str:
    """The traceback kept with the job's last failed attempt, if any."""
    for source in (job, result):
        trace = getattr(source, "traceback", "") if source is not None else ""
        if trace:
            return str(trace).rstrip()
    return ""


def result_view(result: JobResult) -> str:
    """A result as a person reads it: status, duration, when, result or error."""
    pairs = [
        ("job", result.job_id),
        ("status", status(result.status)),
        ("finished", when(result.completed_at)),
        ("ran for", duration(result.duration)),
    ]
    if result.is_success():
        pairs.append(("result", _value(result.result)))
    elif result.error:
        pairs.append(("error", result.error))
    text = _fields(pairs)
    trace = traceback_of(None, result)
    if trace:
        text += "\n\n" + trace
    return text
