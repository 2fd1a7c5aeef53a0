"""A lost fetch reply (``tests.chaos.drop_replies``): the worker's next fetch must not
strand the first one's jobs; nor may a lost hand-off pop strand the job a submit leased
to an idle worker (single hop)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, table
from tests.chaos.drop_replies import dropped_fetch_replies, dropped_handoff_replies

pytestmark = pytest.mark.timeout(150)


def test_a_lost_fetch_reply_strands_no_job(servers: Servers, rng: random.Random) -> None:
    report = dropped_fetch_replies(servers, CI, rng)
    print(table([report]))
    assert report.faults >= 5, "too few replies dropped to prove anything"
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details


def test_a_lost_hand_off_reply_strands_no_job(servers: Servers, rng: random.Random) -> None:
    report = dropped_handoff_replies(servers, CI, rng)
    print(table([report]))
    assert report.faults >= 5, "too few replies dropped to prove anything"
    assert report.details["jobs handed by their submit"] >= report.jobs // 2, report.details
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details
