"""Workflows with real worker processes SIGKILLed under them (``tests.chaos.kill_workflows``
at CI scale: a chord of 1,000 members, a chain of 20 steps, 3 workers)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, chain_crashes, chord_crashes, table

pytestmark = pytest.mark.timeout(240)


def test_a_chord_callback_runs_once_with_every_result_under_kills(
    servers: Servers, rng: random.Random
) -> None:
    report = chord_crashes(servers, CI, rng)
    print(table([report]))
    d = report.details
    assert report.faults >= 2, "too few kills to prove anything: the members drained too fast"
    assert d["workflow status"] == "completed", d
    assert report.lost == 0, d
    assert d["members run (distinct)"] == CI.wf_members
    assert d["callback enqueued"] == 1, "the callback was enqueued twice"
    assert d["callback starts"] == 1 and d["callback completed runs"] == 1, d
    assert d["callback got every result in order"] is True
    assert d["callback result"] == {"count": CI.wf_members, "sum": sum(range(CI.wf_members))}


def test_a_chain_runs_every_step_in_order_under_kills(servers: Servers, rng: random.Random) -> None:
    report = chain_crashes(servers, CI, rng)
    print(table([report]))
    d = report.details
    assert report.faults >= 2, "too few kills to prove anything"
    assert d["workflow status"] == "completed", d
    assert d["workflow result"] == CI.wf_steps - 1
    assert report.lost == 0
    assert d["steps first started in order"] is True
    assert d["starts with a wrong parent result"] == 0
