"""Child processes: start, read their events, stop them, and never leak one.

Every adapter process is started by :meth:`ProcessGroup.spawn`:

* in its own session (``start_new_session``), so that stopping it also stops
  what it forked (RQ's scheduler), by signalling the whole process group;
* with ``PR_SET_PDEATHSIG`` = SIGKILL, so that it dies if the driver is killed
  before its ``finally`` blocks run;
* with standard output read by a thread that parses one JSON event per line
  into a queue, and standard error appended to a log file.

The driver stops children with SIGTERM, then SIGKILL after a grace period; on
exit (normal, error or Ctrl-C) :meth:`ProcessGroup.kill_all` kills every child
still running. Every wait has a deadline and raises :class:`AdapterError`
(with the tail of the child's log) when it is not met.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Event = dict[str, Any]

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 3.0


class AdapterError(Exception):
    """An adapter failed, exited early, or missed a deadline."""


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask the kernel to SIGKILL this (child) process when its parent dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One running adapter process and its event queue."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path):
        self.name = name
        self.log = log
        self._log_file = log.open("ab")
        self._events: queue.Queue[Event] = queue.Queue()
        self._reaped = False
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "_text", "line": line}
            self._events.put(event if isinstance(event, dict) else {"event": "_text", "line": line})
        self._events.put({"event": "_eof"})

    def next_event(self, deadline: float) -> Event | None:
        """Return the next event, or ``None`` if none came before ``deadline``.

        Raises :class:`AdapterError` on an ``error`` event or when the process
        has exited and said everything it will say.
        """
        timeout = deadline - time.monotonic()
        try:
            event = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        kind = event.get("event")
        if kind == "error":
            raise AdapterError(f"{self.name}: {event.get('message')}{self.log_tail()}")
        if kind == "_eof":
            try:
                status = f"exited with status {self.proc.wait(timeout=STOP_GRACE_S)}"
            except subprocess.TimeoutExpired:
                status = "closed its event stream"
            raise AdapterError(f"{self.name}: {status}{self.log_tail()}")
        return event

    def wait_for(self, kinds: Iterable[str], timeout: float) -> Event:
        """Return the first event of one of ``kinds``; others are dropped."""
        wanted = set(kinds)
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(deadline)
            if event is None:
                raise AdapterError(
                    f"{self.name}: no {'/'.join(sorted(wanted))} within {timeout:.0f} s"
                    f"{self.log_tail()}"
                )
            if event.get("event") in wanted:
                return event

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; kill it and raise if it does not."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AdapterError(f"{self.name}: still running after {timeout:.0f} s") from None

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process group and reap the child.

        Only once: after that the group's id may belong to someone else.
        """
        if self._reaped:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_GRACE_S)
            self._reaped = True
        self._close()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL if the process is still there after ``grace``."""
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # Also reaps anything the child forked that outlived it.
        self.kill()

    def _close(self) -> None:
        if not self._log_file.closed:
            self._log_file.close()

    def log_tail(self, lines: int = 8) -> str:
        """Return the last lines of the child's log, indented, for error messages."""
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
            if text:
                return "\n    " + "\n    ".join(text)
        return ""


class ProcessGroup:
    """Every child the driver started; kills the survivors on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []
        self._serial = 0

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path) -> Child:
        """Start a child whose stderr goes to ``<log_dir>/<serial>-<name>.log``."""
        self._serial += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{self._serial:04d}-{name}.log"
        child = Child(name, argv, env, cwd, log)
        self._children = [c for c in self._children if c.proc.poll() is None]
        self._children.append(child)
        return child

    def kill_all(self) -> None:
        """SIGKILL every child (and its process group) that is still running."""
        for child in self._children:
            child.kill()
        self._children = []
