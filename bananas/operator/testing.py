"""Tools for end-to-end tests of the operator against a real API server.

:class:`OperatorThread` (like kopf's ``KopfRunner``) starts
:func:`~bananas.operator.runner.run_operator` in a thread with its own event
loop, waits until kopf reports ready, and on exit sets the stop flag, joins the
thread and re-raises anything the operator raised, so a test fails loudly when
the operator crashed behind its back, or left a socket open when it stopped. The
thread keeps the operator's event loop away from the test's own, so a test can
await the Kubernetes API while the operator reacts to it.

:func:`eventually` polls a condition with a deadline (tests never sleep to
synchronise), :func:`apply_crds` installs the CRDs from ``crds/`` and waits
until they are served, and :func:`event_reasons` lists the Events posted
about an object and :func:`wait_for_event` waits for one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import yaml  # type: ignore[import-untyped]
from kubernetes_asyncio import client as k8s

from bananas.operator.config import OperatorConfig
from bananas.operator.context import OperatorContext
from bananas.operator.kube import APPLY
from bananas.operator.runner import open_transports, run_operator

T = TypeVar("T")
#: Seconds between two checks in :func:`eventually`.
POLL = 0.2


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, what: str, timeout: float = 60.0
) -> T:
    """Await ``check()`` until it returns something other than None or False; return that.

    Raises ``AssertionError`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(POLL)


async def apply_crds(api: k8s.ApiClient, directory: Path, *, timeout: float = 60.0) -> None:
    """Server-side apply every CRD in ``directory`` and wait until each is Established."""
    ext = k8s.ApiextensionsV1Api(api)
    names = []
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        name = crd["metadata"]["name"]
        options: dict[str, Any] = {"_content_type": APPLY}
        await ext.patch_custom_resource_definition(
            name, crd, field_manager="bananas-e2e", force=True, **options
        )
        names.append(name)

    async def established(name: str) -> bool:
        crd = await ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or [] if crd.status else []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for name in names:

        async def check(crd_name: str = name) -> bool:
            return await established(crd_name)

        await eventually(check, what=f"CRD {name}", timeout=timeout)


async def event_reasons(api: k8s.ApiClient, namespace: str, name: str) -> list[str]:
    """Reasons of the Events about the object ``name`` in ``namespace``, oldest first."""
    events = await k8s.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    items = sorted(events.items, key=lambda e: (e.last_timestamp or e.event_time or 0, e.reason))
    return [e.reason for e in items]


async def wait_for_event(
    api: k8s.ApiClient, namespace: str, name: str, reason: str, *, timeout: float = 30.0
) -> str:
    """Wait until an Event with ``reason`` about ``name`` exists; return its message.

    Events are posted in the background (kopf queues them), so they may land a
    moment after the change they describe.
    """
    core = k8s.CoreV1Api(api)
    selector = f"involvedObject.name={name},reason={reason}"

    async def posted() -> str | None:
        events = await core.list_namespaced_event(namespace, field_selector=selector)
        return " | ".join(e.message or "" for e in events.items) if events.items else None

    return await eventually(posted, what=f"a {reason} Event about {name}", timeout=timeout)


async def _abort_open_transports() -> list[str]:
    """Close what the stopped operator left open (so it cannot warn in a later test);
    describe each one."""
    left = open_transports()
    for transport in left:
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        else:
            transport.close()
    return [f"{t!r} to {t.get_extra_info('peername')}" for t in left]


class OperatorThread:
    """The operator running in a thread; use as a context manager."""

    def __init__(self, config: OperatorConfig, *, timeout: float = 60.0) -> None:
        self.config = config
        self.timeout = timeout
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        #: The operator's context, once it runs (its clients, its metrics).
        self.context: OperatorContext | None = None
        self._thread = threading.Thread(target=self._main, name="bananas-operator", daemon=True)

    def _main(self) -> None:
        try:
            with asyncio.Runner() as runner:
                runner.run(self._run())
                left = runner.run(_abort_open_transports())
            if left:
                raise AssertionError(f"the stopped operator left sockets open: {left}")
        except BaseException as exc:  # handed to the test thread in stop()
            self._error = exc
        finally:
            self._ready.set()  # never leave start() waiting on a dead operator

    async def _run(self) -> None:
        self.context = await OperatorContext.create(self.config)
        await run_operator(
            self.config, context=self.context, stop_flag=self._stop, ready_flag=self._ready
        )

    def polls(self, namespace: str, name: str) -> float:
        """How many autoscaler polls of the pool ``namespace/name`` this operator ran."""
        if self.context is None:
            return 0.0
        value = self.context.metrics.registry.get_sample_value(
            "bananas_operator_polls_total", {"namespace": namespace, "pool": name}
        )
        return value or 0.0

    @property
    def alive(self) -> bool:
        """True while the operator thread runs."""
        return self._thread.is_alive()

    def start(self) -> Self:
        """Start the operator; returns once kopf is ready. Raises what the operator raised."""
        self._thread.start()
        if not self._ready.wait(self.timeout):
            self.stop()
            raise TimeoutError(f"the operator was not ready within {self.timeout:g}s")
        if self._error is not None:
            self.stop()
        return self

    def stop(self) -> None:
        """Stop the operator and wait for it; re-raises what it raised."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the operator did not stop within {self.timeout:g}s")
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
