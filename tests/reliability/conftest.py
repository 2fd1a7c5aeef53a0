"""Fixtures of the reliability suite: a ledger server, seeded randomness, report output.

The fault scenarios themselves live in ``tests.chaos`` (so ``python -m tests.chaos``
runs the same code at full scale); these tests run them at CI scale and assert on
their reports. Each scenario starts its own Redis for the faults, the ``servers``
fixture adds the ledger server that no fault touches.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos import Servers
from tests.servers import RedisServer

SEED_VAR = "BANANAS_CHAOS_SEED"


@pytest.fixture
def servers(single_redis: RedisServer) -> Servers:
    """The binary the scenarios start Redis from, and the shared server as the ledger."""
    return Servers(single_redis.binary, single_redis)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Randomness for kill choices; the seed is printed, and ``BANANAS_CHAOS_SEED`` replays it."""
    seed = int(os.environ.get(SEED_VAR) or random.SystemRandom().randrange(2**32))
    print(f"{request.node.name}: {SEED_VAR}={seed}")
    return random.Random(seed)
