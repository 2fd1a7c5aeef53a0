"""Hypothesis strategies and settings shared by the property tests of the unit tree.

No Redis is involved; ``database=None`` keeps hypothesis from writing a local example
database into the checkout.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

RULE = re.compile(r"[A-Za-z0-9_-]{1,64}")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
#: Anything at all, including what JSON cannot hold.
anything = st.recursive(
    json_scalars
    | st.binary()
    | st.integers()
    | st.floats()
    | st.datetimes()
    | st.sets(st.integers(), max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)

#: Field values a job record may carry, well-typed or not.
FIELDS = (
    "id",
    "name",
    "payload",
    "priority",
    "routing_key",
    "created_at",
    "scheduled_for",
    "max_retries",
    "timeout",
    "success_ttl",
    "failure_ttl",
    "v",
)
record_dicts = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    json_values | st.sampled_from(["high", "low", "2026-01-01T00:00:00Z", "", "9" * 40]),
    max_size=10,
)
