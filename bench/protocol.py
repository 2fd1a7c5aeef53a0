"""Wire format between the driver and the adapters (standard library only).

The driver starts an adapter as ``<system> <role> <spec-json>``; the spec is a
:class:`WorkerSpec` for the ``worker`` role and a :class:`ClientSpec` for the
``client`` role (``info`` takes none). The adapter answers with one JSON object
per line on its event stream, which is the process's original standard output:
the adapter runner points file descriptor 1 at standard error before any
library is imported, so banners and stray prints land in the log, never among
the events. Every event carries an ``event`` field:

``info``      {system, versions}: what is installed (role ``info``)
``ready``     {pid, versions}: the worker is about to consume
``started``   {i, t}: a handler began job ``i`` at wall time ``t`` (report ``each``)
``completed`` {i, t}: a handler finished job ``i`` (report ``each``)
``progress``  {count}: every ``progress_every`` completions
``done``      {count, first, last, latencies}: ``expect`` jobs have completed
``result``    {...}: a client role finished; fields depend on the mode
``error``     {message}: the adapter failed; it exits non-zero after this

Wall times are ``time.time()`` seconds (Go: ``UnixNano / 1e9``): every process
runs on the same host, so they share one clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any, TextIO

QUEUE = "bench"
"""Queue (or routing key) name every system uses."""

COUNTER_KEY = "bench:counter"
"""Key the ``incr`` handler increments."""

WORK_KINDS = ("noop", "incr", "hold", "cpu")
"""``noop`` returns at once; ``incr`` increments :data:`COUNTER_KEY` once;
``hold`` sleeps ``hold_s`` (the crash scenario's victim worker); ``cpu`` runs
``cpu_loops`` iterations of pure-Python arithmetic, then counts the job in Redis
(the cpu scenario, whose workers may be several processes)."""

REPORT_KINDS = ("span", "latency", "each")
"""What the probe reports: ``span`` only first/last completion times,
``latency`` also handler start minus the payload's ``t`` per job, ``each`` one
event per start and per completion."""

CLIENT_MODES = (
    "sequential",
    "bulk",
    "prefill",
    "paced",
    "delayed",
    "roundtrip",
    "chain",
    "chord",
)


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """How a worker process is configured and what its probe reports."""

    url: str
    concurrency: int = 10
    work: str = "noop"
    report: str = "span"
    expect: int = 0
    """Emit ``done`` when this many jobs have completed (0: never)."""
    progress_every: int = 0
    """Emit ``progress`` every this many completions (0: never)."""
    hold_s: float = 0.0
    results: bool = False
    """Keep results so that a client can wait for them (off otherwise)."""
    scheduler: bool = False
    """Also run the system's scheduler for delayed jobs, where it is separate."""
    queue: str = QUEUE
    counter_key: str = COUNTER_KEY
    processes: int = 1
    """Worker processes, run the way the system runs several (1: this process only)."""
    cpu_loops: int = 0
    """Iterations of the ``cpu`` work per job."""
    limit_rate: int = 0
    """Jobs per second a rate limit declared on the handler allows, for systems whose
    limit lives in the worker's code (Huey's ``rate_limit``); 0: none. Systems that
    store limits in Redis get theirs from a ``limit`` client instead."""


@dataclasses.dataclass(frozen=True)
class ClientSpec:
    """What a client process submits, and how."""

    url: str
    mode: str
    n: int
    batch: int = 1000
    """Jobs per bulk call (``bulk``, ``prefill``)."""
    rate: float = 0.0
    """Jobs per second (``paced``)."""
    lead_s: float = 0.0
    """First due time after the start of submission (``delayed``)."""
    spacing_s: float = 0.0
    """Due-time spacing between consecutive jobs (``delayed``)."""
    timeout_s: float = 10.0
    """Per-call wait limit (``roundtrip``)."""
    warmup: int = 0
    """Calls made before measuring (``sequential``, ``roundtrip``)."""
    results: bool = False
    queue: str = QUEUE
    group: str = ""
    """The jobs' group (fair share, group limits); empty: none (``prefill``)."""
    tail_n: int = 0
    """``prefill``: after the ``n`` jobs, this many more of ``tail_group``, with payload
    indexes from ``tail_first_index`` (so the probe's events tell the two apart)."""
    tail_group: str = ""
    tail_first_index: int = 0
    limit_key: str = ""
    """``prefill``: before submitting, store a rate limit on this group or
    ``name:<job name>`` (systems whose limits live in Redis); empty: none."""
    limit_rate: str = ""
    """The rate of that limit, e.g. ``"500/s"``."""


def encode_spec(spec: WorkerSpec | ClientSpec) -> str:
    """Return the spec as the JSON argument an adapter receives."""
    return json.dumps(dataclasses.asdict(spec), separators=(",", ":"))


def decode_worker_spec(text: str) -> WorkerSpec:
    """Parse a worker spec; raises ``TypeError``/``ValueError`` on a bad one."""
    spec = WorkerSpec(**json.loads(text))
    if spec.work not in WORK_KINDS or spec.report not in REPORT_KINDS:
        raise ValueError(f"bad worker spec: {text}")
    return spec


def decode_client_spec(text: str) -> ClientSpec:
    """Parse a client spec; raises ``TypeError``/``ValueError`` on a bad one."""
    spec = ClientSpec(**json.loads(text))
    if spec.mode not in CLIENT_MODES:
        raise ValueError(f"bad client mode: {spec.mode}")
    return spec


class EventStream:
    """Thread-safe writer of one JSON event per line, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def take_stdout(cls) -> EventStream:
        """Keep the real standard output for events; send fd 1 to stderr.

        Must run before libraries that print to stdout are imported.
        """
        events_fd = os.dup(1)
        os.dup2(2, 1)
        return cls(os.fdopen(events_fd, "w", buffering=1, encoding="utf-8"))

    def emit(self, event: str, **fields: Any) -> None:
        """Write ``{"event": event, **fields}`` as one line."""
        line = json.dumps({"event": event, **fields}, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
