"""What every scenario shares: the run context and the scenario record.

:class:`Context` starts adapter processes for a system (client roles run to
completion, workers run until stopped), and holds what one scenario learns
for another (the drain rate that sets the loaded-latency rate). Each scenario
module builds one :class:`Scenario`; :mod:`bench.scenarios` lists them in
run order.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.config import REPO_DIR, Sizes
from bench.envs import Environment, adapter_env
from bench.procs import AdapterError, Child, ProcessGroup
from bench.protocol import ClientSpec, WorkerSpec, encode_spec
from bench.redis_server import PrivateRedis
from bench.systems import System

READY_TIMEOUT_S = 60.0
Result = dict[str, Any]


@dataclasses.dataclass
class Context:
    """Everything a scenario needs to run one system."""

    sizes: Sizes
    redis: PrivateRedis
    group: ProcessGroup
    envs: dict[str, Environment]
    drain_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    """Drain jobs/s with the no-op handler, per system, once measured."""
    enqueue_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    """One-by-one submit jobs/s of one client process, per system, once measured."""

    def worker_spec(self, system: System, **fields: Any) -> WorkerSpec:
        """A worker spec for ``system`` on the private Redis."""
        return WorkerSpec(url=self.redis.url, concurrency=system.concurrency, **fields)

    def client_spec(self, mode: str, n: int, **fields: Any) -> ClientSpec:
        """A client spec on the private Redis."""
        return ClientSpec(url=self.redis.url, mode=mode, n=n, **fields)

    def _spawn(self, system: System, role: str, spec: WorkerSpec | ClientSpec) -> Child:
        env = self.envs[system.env]
        argv = env.argv(system.name, role, encode_spec(spec))
        name = f"{system.name}-{role}-{getattr(spec, 'mode', getattr(spec, 'work', ''))}"
        return self.group.spawn(name, argv, adapter_env(), REPO_DIR)

    def run_client(self, system: System, spec: ClientSpec, timeout: float) -> Result:
        """Run one client role to completion and return its ``result`` event."""
        return self.run_clients(system, [spec], timeout)[0]

    def run_clients(self, system: System, specs: list[ClientSpec], timeout: float) -> list[Result]:
        """Run client roles side by side; return their ``result`` events in order."""
        children = [self._spawn(system, "client", spec) for spec in specs]
        deadline = time.monotonic() + timeout
        try:
            results = []
            for child in children:
                results.append(child.wait_for(["result"], max(1.0, deadline - time.monotonic())))
                child.wait_exit(timeout=30)
            return results
        finally:
            for child in children:
                child.stop()

    def prefill(self, system: System, n: int, **fields: Any) -> Result:
        """Submit ``n`` jobs as fast as the system allows (no worker running).

        ``fields`` are more :class:`ClientSpec` fields: ``group``, a tail of jobs of
        another group (``tail_n``, ``tail_group``, ``tail_first_index``), a rate limit
        stored first (``limit_key``, ``limit_rate``).
        """
        spec = self.client_spec("prefill", n, batch=self.sizes.bulk_batch, **fields)
        return self.run_client(system, spec, timeout=120 + (n + spec.tail_n) / 200)

    def start_worker(self, system: System, spec: WorkerSpec) -> Child:
        """Start a worker and return once it reported ready; raises AdapterError."""
        child = self._spawn(system, "worker", spec)
        try:
            child.wait_for(["ready"], READY_TIMEOUT_S)
        except BaseException:
            child.stop()
            raise
        return child

    def settle(self) -> None:
        """Give a worker that just reported ready time to reach its steady state."""
        time.sleep(self.sizes.settle_s)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One scenario: how to describe it, when to skip it, how to run it."""

    name: str
    title: str
    describe: Callable[[Sizes], str]
    """One line with N and the other sizes, printed before the scenario runs."""
    skip_reason: Callable[[System, Sizes], str | None]
    run: Callable[[Context, System], Result]
    headline: Callable[[Result], str]
    """A short summary of one system's result for the progress line."""


def always(system: System, sizes: Sizes) -> str | None:
    """Skip reason for scenarios every system supports: none."""
    return None


__all__ = ["AdapterError", "Context", "Result", "Scenario", "always"]
