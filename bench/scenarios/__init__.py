"""The scenarios of issue 7, in run order.

Each module documents how it measures; :mod:`bench.scenarios.base` holds the
shared context. ``drain`` runs before ``latency`` because the loaded-latency
rate is 80 % of the drain rate it measured. Redis commands per job (scenario
8) are measured by ``drain``; ``commands`` is accepted as an alias for it.
``limited`` and ``fairshare`` are issue 16's flow-control scenarios.
"""

from __future__ import annotations

from bench.scenarios import (
    cpu,
    cpu_per_job,
    crash,
    delayed,
    drain,
    enqueue,
    fairshare,
    latency,
    limited,
    memory,
    queued,
    roundtrip,
    workflow,
)
from bench.scenarios.base import Context, Scenario

SCENARIOS: dict[str, Scenario] = {
    module.SCENARIO.name: module.SCENARIO
    for module in (
        enqueue,
        drain,
        latency,
        roundtrip,
        delayed,
        crash,
        memory,
        queued,
        cpu,
        cpu_per_job,
        workflow,
        limited,
        fairshare,
    )
}

ALIASES = {"commands": "drain"}

__all__ = ["ALIASES", "SCENARIOS", "Context", "Scenario"]
