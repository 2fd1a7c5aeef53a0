"""``bananas worker --processes N``: one supervisor, N worker processes.

One worker process runs Python on one core (the GIL), so CPU-bound handlers need
several. The supervisor keeps N *slots* filled, each with a normal ``bananas
worker`` process, and serves one ``/metrics``, ``/healthz`` and ``/readyz`` for the
group. It imports no handler code and holds no Redis connection.

**Spawn, not fork.** Each child is a fresh interpreter (``python -m bananas.cli
worker``) with the supervisor's settings written into its environment
(``Settings.to_env``). Forking a process that runs an asyncio loop, threads and
sockets copies locks held by other threads and connections shared with the parent;
a restart later in the supervisor's life would fork exactly such a process. A spawned
child pays its own imports (tens of MB, the figure in docs/worker.md) but is
byte-for-byte the worker a single-process deployment runs, and CPython's reference
counting would soon un-share fork's copy-on-write pages anyway.

Each child gets a private end of a Unix socket (``child.ChildLink``): it reports its
private metrics port, and after its drain its last metrics and whether it was
recycled; when the supervisor dies, the socket closes and every child drains. The
children run in their own session, so a terminal's Ctrl-C reaches the supervisor
only, which forwards it once.

**Restarts.** A child that exits without being asked is started again after a backoff
(:data:`RESTART_BACKOFF_FIRST` doubling to :data:`RESTART_BACKOFF_MAX`; reset once a
child has lived :data:`STABLE_SECONDS`), with a log line giving the exit code or
signal. A recycled child (``--max-jobs-per-child``, ``--max-memory-per-child``) is
replaced as soon as it reports the recycle, and drains beside its replacement, so
a slot never stops fetching for the length of a drain. Exit code 2 (bad
configuration) stops the group with code 2: a restart cannot fix it.

**Signals.** SIGTERM or SIGINT is forwarded to every child, which drains as a lone
worker does; a second one is forwarded again and ends the children's grace period.
The supervisor exits 0 after the last child.

**Probes.** ``/readyz`` is 200 only when every slot has a child and each answers its
own ``/readyz`` with 200 (a recycled child that is draining no longer counts; its
replacement does). ``/healthz`` fails while a slot is crash-looping
(:data:`CRASH_LOOP_AFTER` failed starts in a row) or a running child answers its own
``/healthz`` with an error or not at all. ``/metrics`` sums the children
(``group_metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import signal
import socket
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from bananas.config import Settings, WorkerMode
from bananas.worker_runtime.child import LINK_FD_VAR, LINK_LINE_LIMIT
from bananas.worker_runtime.group_metrics import GroupMetrics
from bananas.worker_runtime.health import HealthServer

logger = logging.getLogger(__name__)

#: First restart delay of a slot whose child died; doubles per failure in a row.
RESTART_BACKOFF_FIRST = 0.5
#: Longest restart delay.
RESTART_BACKOFF_MAX = 30.0
#: A child that lived this long before it died resets its slot's backoff.
STABLE_SECONDS = 10.0
#: Failed starts in a row after which /healthz reports the group unhealthy.
CRASH_LOOP_AFTER = 5
#: How long the supervisor waits for a child's probe or metrics answer.
PROBE_TIMEOUT = 2.0
#: How long a child that exited gets to deliver its last message.
FINAL_MESSAGE_TIMEOUT = 5.0
#: The command a child runs (this interpreter; the settings travel in its environment).
CHILD_COMMAND = (sys.executable, "-m", "bananas.cli", "worker")
#: Exit code of a child (and the group) whose configuration is bad (``cli.EXIT_USAGE``).
EXIT_CONFIG = 2


def wants_supervisor(settings: Settings) -> bool:
    """True when ``bananas worker`` should supervise children rather than be the worker.

    That is with more than one process, or with a recycling limit (recycling needs a
    parent to start the replacement). A scheduler always runs as one process.
    """
    if settings.mode is WorkerMode.SCHEDULER_ONLY:
        return False
    limits = settings.max_jobs_per_child or settings.max_memory_per_child
    return settings.processes > 1 or bool(limits)


def run_supervisor(settings: Settings) -> int:
    """Run the group until SIGTERM/SIGINT; returns the process exit code."""
    return asyncio.run(Supervisor(settings).run())


class ExitKind(enum.Enum):
    """Why a child process ended."""

    STOPPED = "stopped"  # the supervisor asked (a forwarded signal)
    RECYCLED = "recycled"  # it reached a recycling limit and drained
    CRASHED = "crashed"  # anything else: a signal, an exit code, an exit nobody asked for
    CONFIG_ERROR = "config_error"  # exit code 2: restarting cannot help


class ChildProcess:
    """One spawned worker process and the supervisor's end of its link."""

    def __init__(self, slot: int, process: asyncio.subprocess.Process, sock: socket.socket):
        self.slot = slot
        self.process = process
        self.started = time.monotonic()
        self.port: int | None = None
        self.final_metrics: str | None = None
        self.recycled: str | None = None
        #: Set when the child reports it reached a recycling limit and is draining.
        self.recycling = asyncio.Event()
        self._sock = sock
        self._reader_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._exit: asyncio.Task[int] | None = None

    @classmethod
    async def spawn(cls, slot: int, env: dict[str, str]) -> ChildProcess:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *CHILD_COMMAND,
                env={**env, LINK_FD_VAR: str(theirs.fileno())},
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = cls(slot, process, ours)
        reader, child._writer = await asyncio.open_connection(sock=ours, limit=LINK_LINE_LIMIT)
        child._reader_task = asyncio.get_running_loop().create_task(child._read(reader))
        return child

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def signal(self, signum: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event = message.get("event")
            if event == "ready":
                self.port = int(message["port"])
            elif event == "recycling":
                self.recycled = message.get("reason") or "recycled"
                self.recycling.set()
            elif event == "final":
                self.final_metrics = message.get("metrics")
                self.recycled = message.get("recycled") or self.recycled

    def exited(self) -> asyncio.Task[int]:
        """The task that waits for the exit (see :meth:`_wait`); one per child."""
        if self._exit is None:
            self._exit = asyncio.get_running_loop().create_task(self._wait())
        return self._exit

    async def _wait(self) -> int:
        """Wait for the exit and its last message; returns the exit code (-N: signal N)."""
        code = await self.process.wait()
        if self._reader_task is not None:
            with contextlib.suppress(TimeoutError, ConnectionError, ValueError):
                await asyncio.wait_for(self._reader_task, FINAL_MESSAGE_TIMEOUT)
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()
        self._sock.close()
        return code

    def outcome(self, code: int, stopping: bool) -> ExitKind:
        if code == EXIT_CONFIG:
            return ExitKind.CONFIG_ERROR
        if code == 0 and self.recycled:
            return ExitKind.RECYCLED
        return ExitKind.STOPPED if stopping else ExitKind.CRASHED


def describe_exit(code: int) -> str:
    """``exited with code 1`` / ``was killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class Slot:
    """Keeps one child running: restarts it with backoff, replaces it when recycled."""

    def __init__(self, index: int, group: Supervisor) -> None:
        self.index = index
        self.group = group
        self.child: ChildProcess | None = None
        #: Recycled children still draining, their replacement already started.
        self.retiring: list[ChildProcess] = []
        self._retirements: set[asyncio.Task[None]] = set()
        self.failures = 0

    @property
    def crash_looping(self) -> bool:
        return self.failures >= CRASH_LOOP_AFTER

    async def run(self) -> None:
        """Keep the slot filled until the group stops; returns after its last child."""
        try:
            await self._keep()
        finally:
            await asyncio.gather(*self._retirements, return_exceptions=True)

    async def _keep(self) -> None:
        group = self.group
        while not group.stopping.is_set():
            try:
                child = await ChildProcess.spawn(self.index, group.child_env(self.index))
            except OSError as exc:  # out of processes or descriptors: try again later
                self.failures += 1
                delay = self._backoff()
                logger.error(
                    "worker process %d could not be started (%s); retrying in %.1fs",
                    self.index,
                    exc,
                    delay,
                )
                await self._pause(delay)
                continue
            self.child = child
            logger.info("worker process %d started (pid %d)", self.index, child.pid)
            for signum in group.forwarded:  # a signal that came during the spawn
                child.signal(signum)
            code = await self._watch(child)
            self.child = None
            if code is None:  # it is draining after a recycle: replace it now
                self.failures = 0
                self.retiring.append(child)
                retirement = asyncio.create_task(self._retire(child))
                self._retirements.add(retirement)
                retirement.add_done_callback(self._retirements.discard)
                logger.info(
                    "worker process %d (pid %d) is recycling (%s); starting its replacement",
                    self.index,
                    child.pid,
                    child.recycled,
                )
                continue
            kind = child.outcome(code, group.stopping.is_set())
            group.metrics.retire(child.pid, child.final_metrics)
            group.exits.labels(kind.value).inc()
            if kind is ExitKind.STOPPED:
                logger.info(
                    "worker process %d (pid %d) %s", self.index, child.pid, describe_exit(code)
                )
                return
            if kind is ExitKind.CONFIG_ERROR:
                logger.error(
                    "worker process %d (pid %d) exited with code 2 (bad configuration): "
                    "stopping the group",
                    self.index,
                    child.pid,
                )
                group.fail(EXIT_CONFIG)
                return
            delay = self._delay(kind, child)
            self._log_restart(kind, child, code, delay)
            await self._pause(delay)

    async def _watch(self, child: ChildProcess) -> int | None:
        """The child's exit code, or None as soon as it reports that it is recycling."""
        recycling = asyncio.ensure_future(child.recycling.wait())
        try:
            await asyncio.wait({child.exited(), recycling}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            recycling.cancel()
        if child.exited().done():
            return child.exited().result()
        return None

    async def _retire(self, child: ChildProcess) -> None:
        """Wait for a recycled child's drain to end, and count it."""
        code = await child.exited()
        self.retiring.remove(child)
        self.group.metrics.retire(child.pid, child.final_metrics)
        kind = ExitKind.RECYCLED if code == 0 else ExitKind.CRASHED
        self.group.exits.labels(kind.value).inc()
        level = logging.INFO if code == 0 else logging.WARNING
        logger.log(
            level,
            "recycled worker process %d (pid %d) %s after its drain",
            self.index,
            child.pid,
            describe_exit(code),
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the group is told to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.group.stopping.wait(), seconds)

    def _delay(self, kind: ExitKind, child: ChildProcess) -> float:
        if kind is ExitKind.RECYCLED:
            self.failures = 0
            return 0.0
        lived = time.monotonic() - child.started
        self.failures = 1 if lived >= STABLE_SECONDS else self.failures + 1
        return self._backoff()

    def _backoff(self) -> float:
        """The restart delay after ``failures`` failures in a row."""
        steps = max(self.failures - 1, 0)
        return float(min(RESTART_BACKOFF_FIRST * 2**steps, RESTART_BACKOFF_MAX))

    def _log_restart(self, kind: ExitKind, child: ChildProcess, code: int, delay: float) -> None:
        if kind is ExitKind.RECYCLED:  # it exited before its "recycling" message was read
            logger.info(
                "worker process %d (pid %d) recycled (%s); starting its replacement",
                self.index,
                child.pid,
                child.recycled,
            )
            return
        why = describe_exit(code)
        if code == 0:
            why += " without being asked"
        logger.warning(
            "worker process %d (pid %d) %s after %.1fs; restarting in %.1fs (failure %d in a row)",
            self.index,
            child.pid,
            why,
            time.monotonic() - child.started,
            delay,
            self.failures,
        )


class Supervisor:
    """N slots, the forwarded signals, and the group's probes and metrics."""

    def __init__(self, settings: Settings, *, host: str = "0.0.0.0") -> None:
        self.settings = settings
        self.host = host
        self.slots = [Slot(i, self) for i in range(settings.processes)]
        self.stopping = asyncio.Event()
        #: Signals forwarded so far, replayed to a child spawned while they arrived.
        self.forwarded: list[int] = []
        self.exit_code = 0
        self.metrics = GroupMetrics()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.metrics)
        self.exits = Counter(
            "bananas_worker_process_exits_total",
            "Worker processes of this supervisor that ended, by why.",
            ["reason"],
            registry=self.registry,
        )
        self.running = Gauge(
            "bananas_worker_processes",
            "Worker processes running under this supervisor.",
            registry=self.registry,
        )
        self.running.set_function(lambda: len(self.children()) + len(self.retiring()))

    def children(self) -> list[ChildProcess]:
        """The slots' current children that are running."""
        return [s.child for s in self.slots if s.child is not None and s.child.running]

    def retiring(self) -> list[ChildProcess]:
        """Recycled children still draining."""
        return [c for s in self.slots for c in s.retiring if c.running]

    def child_env(self, slot: int) -> dict[str, str]:
        """The environment of a child: ours, with our settings written over it."""
        env = {**os.environ, **self.settings.to_env(), "WORKER_PROCESSES": "1"}
        if pod := os.environ.get("POD_NAME"):
            env["POD_NAME"] = f"{pod}-{slot}"  # a leader-election identity of its own
        return env

    def fail(self, code: int) -> None:
        """Stop the group and exit with ``code``."""
        self.exit_code = code
        self._forward(signal.SIGTERM)

    def _forward(self, signum: int) -> None:
        self.forwarded.append(signum)
        self.stopping.set()
        for child in self.children():
            child.signal(signum)
        if len(self.forwarded) > 1:
            # A recycled child is draining already: the first signal would only cut its
            # grace short (to a child, a signal while it drains means hurry); a second
            # one means exactly that.
            for child in self.retiring():
                child.signal(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stopping.is_set():
            logger.warning("second %s: telling the worker processes to hurry", name)
        else:
            logger.info("%s: draining %d worker process(es)", name, len(self.children()))
        self._forward(signum)

    async def run(self) -> int:
        """Start the slots (and the probe server), wait for them all; returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        server = self._health_server()
        serving: asyncio.Task[None] | None = None
        try:
            if server is not None:
                await server.start(self)
                serving = loop.create_task(server.serve(self))
            logger.info("supervising %d worker process(es)", len(self.slots))
            await asyncio.gather(*(slot.run() for slot in self.slots))
        finally:
            if serving is not None:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        logger.info("all worker processes stopped")
        return self.exit_code

    def _health_server(self) -> HealthServer | None:
        if not self.settings.metrics_port:
            return None
        return HealthServer(self, host=self.host, port=self.settings.metrics_port)

    # -- the group's probes -------------------------------------------------------------

    async def is_ready(self) -> bool:
        """Every slot has a child and every child is ready."""
        if self.stopping.is_set():
            return False
        children = [s.child for s in self.slots]
        if any(c is None or c.port is None or not c.running for c in children):
            return False
        answers = await asyncio.gather(*(_probe(c, "/readyz") for c in children if c))
        return all(status == 200 for status in answers)

    async def is_alive(self) -> bool:
        """No slot is crash-looping and no running child reports itself unhealthy."""
        if any(s.crash_looping for s in self.slots):
            return False
        probed = [c for c in [*self.children(), *self.retiring()] if c.port is not None]
        answers = await asyncio.gather(*(_probe(c, "/healthz") for c in probed))
        # A refused connection is a child between its drain and its exit, not a failure.
        return all(status in (200, None) for status in answers)

    async def refresh_metrics(self) -> None:
        """Fetch every child's metrics into the group's sums."""
        children = [c for c in [*self.children(), *self.retiring()] if c.port is not None]
        bodies = await asyncio.gather(*(_get_metrics(c) for c in children))
        for child, body in zip(children, bodies, strict=True):
            if body is not None and child.running:
                self.metrics.update(child.pid, body)


async def _probe(child: ChildProcess, path: str) -> int | None:
    """The child's HTTP status for ``path``; None if it refused; 0 if it did not answer."""
    assert child.port is not None
    try:
        status, _ = await asyncio.wait_for(_http_get(child.port, path), PROBE_TIMEOUT)
    except ConnectionRefusedError:
        return None
    except (TimeoutError, OSError, ValueError):
        return 0
    return status


async def _get_metrics(child: ChildProcess) -> str | None:
    assert child.port is not None
    try:
        status, body = await asyncio.wait_for(_http_get(child.port, "/metrics"), PROBE_TIMEOUT)
    except (TimeoutError, OSError, ValueError):
        return None
    return body.decode() if status == 200 else None


async def _http_get(port: int, path: str) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET on loopback (the children's servers close after a reply)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
