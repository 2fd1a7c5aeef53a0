"""The routing-key rule."""

from __future__ import annotations

import pytest

from bananas import InvalidRoutingKeyError, validate_routing_key


@pytest.mark.parametrize("key", ["gpu", "us-east-1", "high_memory", "a" * 64, "A9_-"])
def test_valid_routing_keys(key: str) -> None:
    assert validate_routing_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 65, "gpu pool", "gpu{1}", "é", "a:b", None, 5])
def test_invalid_routing_keys(key: object) -> None:
    with pytest.raises(InvalidRoutingKeyError, match="1-64 characters"):
        validate_routing_key(key)
